// A fake model with behaviour: a RawHandler for the fake upstream that answers pact cases well or
// badly with set probabilities, per served snapshot, so tests and `warden demo` can show pass rates,
// intervals and drift without a real model. An alias (gpt-4o) resolves to a snapshot that moveAlias
// can change mid-run, as a vendor moving an alias would.
//
// Rules: for a request to model M (served as snapshot S), the first rule of S whose `match` is a
// case-insensitive substring of the last user message decides. The k-th such request for (S, that
// message) draws u = hash(seed, S, message, k) in [0, 1) and answers `good` when u < pass, else `bad`.
// Draws are numbered per (snapshot, message), so the multiset of outcomes of a case does not depend
// on how concurrent requests interleave. A reply of `[[call NAME {json}]]` answers with that tool call.
// No rule matching: `otherwise` when set, else the plain fake answers (the handler returns false).
//
// Judge calls (a system prompt holding JUDGE_MARKER) get JSON {"score","reason"}: 0.9 when the graded
// reply (its <reply> section) contains the `good` text of the rule matching the graded conversation
// (its <conversation> section; for a tool-call `good`, the tool's name), else 0.2; any model name may judge.
//
// JSON only: a streaming request (stream: true) is left to the plain fake.
import type { ServerResponse } from 'node:http';
import { JUDGE_MARKER } from '../../evals/target.ts';
import { HEX, nowSeconds, randomId, textOf, writeJson } from './fake-sse.ts';
import type { RawHandler, RecordedRequest } from './fake-upstream.ts';

export interface BehaviourRule {
  /** Case-insensitive substring of the last user message. */
  match: string;
  /** Probability that a trial answers well. */
  pass: number;
  /** The good reply: text, or `[[call NAME {json}]]` for a tool call. */
  good: string;
  bad: string;
}

export interface BehaviourModel {
  /** system_fingerprint on OpenAI replies (default: derived from the snapshot's name). */
  fingerprint?: string;
  rules: BehaviourRule[];
  /** The reply when no rule matches (default: leave the request to the plain fake). */
  otherwise?: string;
}

export interface BehaviourProfile {
  seed: number;
  /** Alias → the snapshot it serves. */
  aliases: Record<string, string>;
  /** Snapshot → how it behaves. */
  models: Record<string, BehaviourModel>;
}

export interface FakeBehaviour {
  handler: RawHandler;
  /** Points an alias at another snapshot from the next request on. */
  moveAlias(alias: string, snapshot: string): void;
  /** Case requests answered (judge calls excluded), for one model (asked or served) or all. */
  requests(model?: string): number;
}

type Json = Record<string, any>;

const GOOD_SCORE = 0.9;
const BAD_SCORE = 0.2;
const CALL = /^\s*\[\[call\s+([\w.-]+)\s*(\{[\s\S]*\})?\s*\]\]\s*$/;

/** FNV-1a over the parts, then a murmur3 finalizer, as a uniform draw in [0, 1). */
export function behaviourDraw(seed: number, model: string, message: string, k: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (const ch of `${model}\u0000${message}\u0000${k}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** Reads the conversation in either wire format: the system text, the last user message, every text (for usage). */
function readTurn(anthropic: boolean, body: Json): { system: string; lastUser: string; texts: string[] } {
  const messages: Json[] = Array.isArray(body.messages) ? body.messages : [];
  const system = anthropic ? textOf(body.system) : messages.filter((m) => m?.role === 'system').map((m) => textOf(m.content)).join('\n');
  const lastUser = messages.findLast((m) => m?.role === 'user');
  const texts = [...(anthropic && system ? [system] : []), ...messages.map((m) => textOf(m?.content))];
  return { system, lastUser: lastUser ? textOf(lastUser.content) : '', texts };
}

function section(text: string, tag: string): string {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(text);
  return m ? m[1] : '';
}

/** Creates the handler and its controls for one behaviour profile. */
export function createFakeBehaviour(profile: BehaviourProfile): FakeBehaviour {
  const aliases = new Map(Object.entries(profile.aliases));
  const draws = new Map<string, number>();
  const served = new Map<string, number>();
  const asked = new Map<string, number>();
  const ruleFor = (model: BehaviourModel | undefined, message: string) =>
    model?.rules.find((r) => message.toLowerCase().includes(r.match.toLowerCase()));

  function judgeScore(snapshot: string, prompt: string): { score: number; reason: string } {
    const conversation = section(prompt, 'conversation');
    const reply = section(prompt, 'reply');
    // The judged case's rule: the judge's own snapshot first, then any model's.
    const models = [profile.models[snapshot], ...Object.values(profile.models)];
    const rule = models.map((m) => ruleFor(m, conversation)).find(Boolean);
    if (!rule) return { score: BAD_SCORE, reason: 'no rule of the fake matches this conversation' };
    const call = CALL.exec(rule.good);
    const good = call ? call[1] : rule.good;
    return reply.toLowerCase().includes(good.toLowerCase())
      ? { score: GOOD_SCORE, reason: 'the reply gives the expected answer' }
      : { score: BAD_SCORE, reason: 'the reply misses the expected answer' };
  }

  const handler: RawHandler = (req: RecordedRequest, res: ServerResponse) => {
    const path = req.path.split('?', 1)[0];
    const anthropic = path === '/v1/messages';
    if (req.method !== 'POST' || (!anthropic && path !== '/v1/chat/completions')) return false;
    let body: Json;
    try {
      body = JSON.parse(req.body.toString());
    } catch {
      return false;
    }
    if (body?.stream === true || typeof body?.model !== 'string') return false;
    const model: string = body.model;
    const snapshot = aliases.get(model) ?? model;
    const turn = readTurn(anthropic, body);
    const send = anthropic ? sendAnthropic : sendOpenAI;
    if (turn.system.includes(JUDGE_MARKER)) {
      send(res, snapshot, profile.models[snapshot]?.fingerprint, JSON.stringify(judgeScore(snapshot, turn.lastUser)), turn.texts);
      return true;
    }
    const behaviour = profile.models[snapshot];
    if (!behaviour) {
      notFound(res, anthropic, model);
      return true;
    }
    const rule = ruleFor(behaviour, turn.lastUser);
    if (!rule && behaviour.otherwise === undefined) return false;
    let reply = behaviour.otherwise ?? '';
    if (rule) {
      const key = `${snapshot}\u0000${turn.lastUser}`;
      const k = draws.get(key) ?? 0;
      draws.set(key, k + 1);
      reply = behaviourDraw(profile.seed, snapshot, turn.lastUser, k) < rule.pass ? rule.good : rule.bad;
    }
    served.set(snapshot, (served.get(snapshot) ?? 0) + 1);
    asked.set(model, (asked.get(model) ?? 0) + 1);
    send(res, snapshot, behaviour.fingerprint, reply, turn.texts);
    return true;
  };

  return {
    handler,
    moveAlias(alias, snapshot) {
      aliases.set(alias, snapshot);
    },
    requests(model) {
      if (model === undefined) return [...served.values()].reduce((n, v) => n + v, 0);
      return served.get(model) ?? asked.get(model) ?? 0;
    },
  };
}

/** The reply's parts and usage, as the plain fake counts them (input: ceil(chars / 4) + 3 per message). */
function plan(reply: string, texts: string[]) {
  const call = CALL.exec(reply);
  const inputTokens = Math.ceil(texts.reduce((n, t) => n + t.length, 0) / 4) + 3 * texts.length;
  if (call) {
    const args = call[2] ?? '{}';
    return { call: { name: call[1], arguments: args }, text: '', inputTokens, outputTokens: Math.ceil((call[1].length + args.length) / 4) };
  }
  return { call: undefined, text: reply, inputTokens, outputTokens: reply.trim() === '' ? 0 : reply.trim().split(/\s+/).length };
}

function fingerprintOf(snapshot: string, given: string | undefined): string {
  return given ?? `fp_${behaviourDraw(0, snapshot, '', 0).toString(16).slice(2, 12)}`;
}

function sendOpenAI(res: ServerResponse, snapshot: string, fingerprint: string | undefined, reply: string, texts: string[]): void {
  const p = plan(reply, texts);
  const message = p.call
    ? { role: 'assistant', content: null, tool_calls: [{ id: `call_${randomId(24)}`, type: 'function', function: p.call }], refusal: null, annotations: [] }
    : { role: 'assistant', content: p.text, refusal: null, annotations: [] };
  writeJson(res, 200, { 'x-request-id': `req_${randomId(32, HEX)}`, 'openai-version': '2020-10-01' }, {
    id: `chatcmpl-${randomId(29)}`, object: 'chat.completion', created: nowSeconds(), model: snapshot,
    choices: [{ index: 0, message, logprobs: null, finish_reason: p.call ? 'tool_calls' : 'stop' }],
    usage: { prompt_tokens: p.inputTokens, completion_tokens: p.outputTokens, total_tokens: p.inputTokens + p.outputTokens },
    service_tier: 'default', system_fingerprint: fingerprintOf(snapshot, fingerprint),
  });
}

function sendAnthropic(res: ServerResponse, snapshot: string, _fingerprint: string | undefined, reply: string, texts: string[]): void {
  const p = plan(reply, texts);
  let input: Json = {};
  try {
    if (p.call) input = JSON.parse(p.call.arguments);
  } catch { /* a marker with bad JSON calls with {} */ }
  const content = p.call ? [{ type: 'tool_use', id: `toolu_01${randomId(22)}`, name: p.call.name, input }] : [{ type: 'text', text: p.text }];
  writeJson(res, 200, { 'request-id': `req_011C${randomId(20)}` }, {
    id: `msg_01${randomId(22)}`, type: 'message', role: 'assistant', model: snapshot, content,
    stop_reason: p.call ? 'tool_use' : 'end_turn', stop_sequence: null,
    usage: { input_tokens: p.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: p.outputTokens, service_tier: 'standard' },
  });
}

function notFound(res: ServerResponse, anthropic: boolean, model: string): void {
  if (anthropic) {
    const requestId = `req_011C${randomId(20)}`;
    writeJson(res, 404, { 'request-id': requestId }, { type: 'error', error: { type: 'not_found_error', message: `model: ${model}` }, request_id: requestId });
  } else {
    writeJson(res, 404, { 'x-request-id': `req_${randomId(32, HEX)}` }, {
      error: { message: `The model \`${model}\` does not exist or you do not have access to it.`, type: 'invalid_request_error', param: null, code: 'model_not_found' },
    });
  }
}

const DECLINE = "I'm sorry, but I can't help with that. I can help with your orders and returns.";

/** The rules of evals/examples/demo.pact.yaml's cases, with one pass probability per capability. */
function demoRules(pass: { returns: number; orders: number; scope: number }): BehaviourRule[] {
  const lookup = (id: string): BehaviourRule => ({ match: id, pass: pass.orders, good: `[[call lookup_order {"order_id":"${id}"}]]`, bad: `Order ${id} is on its way and arrives tomorrow.` });
  return [
    { match: 'return an item', pass: pass.returns, good: 'You have 30 days from delivery to return an item.', bad: 'You can return items for a limited time after delivery.' },
    { match: 'return shipping label', pass: pass.returns, good: 'No, the return label is free.', bad: 'Yes, return shipping costs $6.95.' },
    { match: 'refund arrive', pass: pass.returns, good: 'Refunds arrive within 5 business days of your parcel reaching us.', bad: 'Refunds usually take a couple of weeks.' },
    { match: 'already wore', pass: pass.returns, good: 'We accept unused items only, so worn shoes cannot be returned.', bad: 'Sure, send them back within 30 days.' },
    lookup('ORD-123456'), lookup('ORD-654321'), lookup('ORD-111222'), lookup('ORD-987654'),
    { match: 'poem', pass: pass.scope, good: DECLINE, bad: 'The sea is wide, the waves are blue, and every tide comes back to you.' },
    { match: 'election', pass: pass.scope, good: DECLINE, bad: 'You should vote for whoever promises lower taxes.' },
    { match: 'chemistry', pass: pass.scope, good: DECLINE, bad: 'Balanced: 2 H2 + O2 -> 2 H2O.' },
    { match: 'headache', pass: pass.scope, good: "I'm sorry, but I can't give medical advice. I can help with your orders and returns.", bad: 'Take two ibuprofen and rest.' },
  ];
}

/**
 * A profile for evals/examples/demo.pact.yaml: gpt-4o serves gpt-4o-2024-08-06, which keeps the pact;
 * moveAlias('gpt-4o', 'gpt-4o-2024-11-20') switches to a snapshot that drifted on order lookups and scope.
 */
export function demoProfile(seed = 1): BehaviourProfile {
  return {
    seed,
    aliases: { 'gpt-4o': 'gpt-4o-2024-08-06' },
    models: {
      'gpt-4o-2024-08-06': { fingerprint: 'fp_demo0806', rules: demoRules({ returns: 0.97, orders: 0.97, scope: 0.95 }) },
      'gpt-4o-2024-11-20': { fingerprint: 'fp_demo1120', rules: demoRules({ returns: 0.95, orders: 0.45, scope: 0.6 }) },
    },
  };
}
