// Context windowing. When a conversation nears the model's window, it is trimmed to a lower target
// (hysteresis: the cut then stays put for many turns, which also keeps the provider's prompt cache
// warm). What is always kept: the system prompt, the first user task, pinned instructions (the
// policy's preserve rules, under their own cap), and the newest messages. What goes first: old tool
// results (a placeholder stays), then whole turns from the front, a tool call never without its
// results. Everything dropped goes to the session's memory, and the memories most relevant to the
// latest user turn come back as a marked note. A history that cannot be made valid goes unchanged.
import { createHash } from 'node:crypto';
import type { ContextConfig, Policy } from '../../policies/types.ts';
import type { Message, Request, Response } from '../canonical.ts';
import type { MemoryStore } from '../context/memory.ts';
import { defaultContextTokens } from '../context/model-windows.ts';
import type { TokenCounter, TokenizerFamily } from '../context/tokens.ts';
import { apply, pinnedUnits, reduce, type Plan, type SessionCut } from '../context/cut.ts';
import { orphansOf, unitsOf } from '../context/units.ts';
import { CONTINUE, rewrite, type CallContext, type Outcome, type Stage } from '../stage.ts';
import { extractiveSummary, summarize } from '../context/summarizer.ts';
import type { UpstreamClient } from '../http/upstream-client.ts';
import type { AuditEntry } from '../audit/audit-log.ts';

const NAME = 'context-window';
// Per-session cut points; a restart loses them, and the first trimmed request recomputes them.
const MAX_SESSIONS = 10_000;

export interface ContextServices {
  tokens: TokenCounter;
  memory?: MemoryStore;
  /** The client of a model upstream, by name, for the summarizer. */
  upstream?: (name: string) => UpstreamClient | undefined;
  /** Puts the summarizer's own calls in the audit log. */
  record?: (entry: AuditEntry) => void;
}

/** The latest summary of a session: of the units before `dropped`. */
interface SessionSummary {
  dropped: number;
  text: string;
}

export function createContextWindow(policy: Policy, services: ContextServices): Stage {
  const cfg = policy.context as ContextConfig;
  const rules = cfg.preserve.map((r) => ({ role: r.role, pattern: r.pattern === undefined ? undefined : new RegExp(r.pattern, 'iu'), marker: r.marker }));
  const cuts = new Map<string, SessionCut>();
  const summaries = new Map<string, SessionSummary>();
  // The cut whose dropped messages are already in memory, per session.
  const stored = new Map<string, SessionCut>();
  const agent = policy.agent.id;

  function windowOf(call: CallContext, model: string): number | undefined {
    return policy.models[call.modelAsked ?? '']?.contextTokens ?? policy.models[model]?.contextTokens ?? defaultContextTokens(model);
  }

  function pinnedByRule(m: Message): boolean {
    return rules.some((r) => (!r.role || r.role === m.role) && (!r.pattern || r.pattern.test(m.text)) && (!r.marker || m.text.includes(r.marker)));
  }

  return {
    name: NAME,

    onRequest(call, req) {
      if (req.kind !== 'chat' || req.messages.length === 0) return CONTINUE;
      const family: TokenizerFamily = call.adapter?.tokenizer ?? 'openai';
      const window = windowOf(call, req.model);
      if (window === undefined) {
        call.decisions.push({ stage: NAME, decision: 'unknown-window', detail: { model: req.model } });
        return CONTINUE;
      }
      const count = (messages: readonly Message[]) => services.tokens.countRequest(req.model, family, { messages, tools: req.tools });
      const budget = window - (req.maxOutputTokens ?? cfg.reserveOutputTokens) - cfg.marginTokens;
      // A derived session is a hash of the conversation's opening: not taken while no session has a cut
      // and the request may not need one.
      let session = call.session ?? (cuts.size > 0 ? derivedSession(agent, req.messages) : undefined);
      let cut = session === undefined ? undefined : cuts.get(session);
      // With no cut standing, a conversation under the trigger by its upper bound goes unchanged, so it
      // is not tokenized at all. (An Anthropic count is a byte estimate, as cheap as a bound, and its
      // calibration needs it.)
      if (cut === undefined && family === 'openai' && services.tokens.boundRequest(req.model, family, req) <= cfg.trigger * budget) return CONTINUE;
      session ??= derivedSession(agent, req.messages);
      const before = count(req.messages);
      call.state.set(NAME, { estimate: before, family });
      // Memory and summaries outlive the request, so they need a session the agent named: two
      // conversations that merely open alike must never share them.
      const keeps = call.session !== undefined;

      const units = unitsOf(req.messages);
      const keep = pinnedUnits(units, req.messages, cfg, (m) => pinnedByRule(m), (ms) => count(ms) - count([]));
      const droppable = units.filter((u) => !keep.has(u));
      // A conversation shorter than the cut (the session restarted) starts over.
      if (cut && cut.dropped > droppable.length) cut = undefined;
      let plan = apply(req.messages, units, droppable, cut ?? { dropped: 0, clearedBefore: 0 }, count);
      if (plan.tokens > cfg.trigger * budget || (cut === undefined && before > cfg.trigger * budget)) {
        cut = reduce(req.messages, units, droppable, cut ?? { dropped: 0, clearedBefore: 0 }, cfg, cfg.target * budget, count);
        plan = apply(req.messages, units, droppable, cut, count);
      }
      if (cut && (cut.dropped > 0 || cut.clearedBefore > 0)) {
        if (cuts.size >= MAX_SESSIONS && !cuts.has(session)) cuts.delete(cuts.keys().next().value!);
        cuts.set(session, cut);
      }
      if (plan.dropped.length === 0 && plan.cleared === 0) return CONTINUE;
      const slide = droppable.slice(0, cut!.dropped);
      const known = !keeps ? undefined : services.memory ? services.memory.summary(agent, session) : summaries.get(session);
      if (!keeps || !cfg.summarize.enabled || slide.length === 0 || known?.dropped === slide.length) {
        return finish(call, req, session, keeps, plan, cut!, before, budget, known?.text, count, family);
      }
      // The window slid: summarize what it dropped since the last summary, once (the next requests reuse it).
      const span = (known && known.dropped < slide.length ? slide.slice(known.dropped) : slide).flatMap((u) => u.messages);
      // What a person had erased is not summarized again when the agent resends it.
      const fresh = services.memory ? span.filter((m) => !services.memory!.isErased(agent, session, m.role, textOf(m))) : span;
      return summarizeSpan(call, req, fresh, known && known.dropped < slide.length ? known.text : undefined).then((text) => {
        if (services.memory) services.memory.saveSummary(agent, session, slide.length, text);
        else {
          if (summaries.size >= MAX_SESSIONS && !summaries.has(session)) summaries.delete(summaries.keys().next().value!);
          summaries.set(session, { dropped: slide.length, text });
        }
        call.actions.push('summary-written');
        return finish(call, req, session, keeps, plan, cut!, before, budget, text, count, family);
      });
    },

    onResponse(call, res) {
      calibrate(call, res);
      return CONTINUE;
    },

    onStreamEnd(call, res) {
      calibrate(call, res);
    },
  };

  /** The dropped span's summary by the summarizer model, or the extractive fallback when it fails. */
  async function summarizeSpan(call: CallContext, req: Request, dropped: Message[], previous: string | undefined): Promise<string> {
    const client = call.upstream && services.upstream?.(call.upstream.name);
    const model = cfg.summarize.model ?? req.model;
    const maxTokens = Math.min(cfg.summarize.maxTokens, Math.max(50, Math.round(services.tokens.countRequest(model, 'openai', { messages: dropped, tools: [] }) * cfg.summarize.ratio)));
    // Warden's own model call is attributed and recorded like the agent's (its text is the summary).
    const recordCall = (status: string, detail: Record<string, unknown>) => services.record?.({
      event: 'model_call', ts: new Date().toISOString(), purpose: 'context-summary', request_id: call.id, agent: { id: policy.agent.id, version: policy.agent.version },
      session: call.session, task: call.task, route: call.route, model: { asked: model }, status, ...detail,
    });
    try {
      if (!client) throw new Error('no upstream client');
      const text = await summarize({ client, model, previous, dropped, maxTokens, timeoutMs: cfg.summarize.timeoutMs });
      call.decisions.push({ stage: NAME, decision: 'summarized', detail: { model, messages: dropped.length } });
      recordCall('ok', { summarized_messages: dropped.length, summary: text });
      return `${SUMMARY_LABEL(model)}\n${text}`;
    } catch (err) {
      recordCall('failed', { error: String((err as Error).message ?? err) });
      call.decisions.push({ stage: NAME, decision: 'summary-fallback', detail: { error: String((err as Error).message ?? err) } });
      return `${SUMMARY_LABEL('an extractive fallback')}\n${extractiveSummary(dropped, previous?.replace(/^\[warden summary[^\n]*\n/, ''), maxTokens * 4)}`;
    }
  }

  /** The trimmed request with its summary and recalled memories, if they fit, validated. */
  function finish(call: CallContext, req: Request, session: string, keeps: boolean, plan: Plan, cut: SessionCut, before: number, budget: number, summary: string | undefined, count: (ms: readonly Message[]) => number, family: TokenizerFamily): Outcome<Request> {
    let messages = plan.messages;
    if (summary && count(withSummary(messages, summary)) <= budget) {
      messages = withSummary(messages, summary);
      call.actions.push('summarized');
    }
    let recalled = 0;
    if (keeps && cfg.memory.enabled && services.memory) {
      // Each request resends what was dropped; it is stored when the cut moves, not every turn.
      const last = stored.get(session);
      if (!last || last.dropped !== cut.dropped || last.clearedBefore !== cut.clearedBefore) {
        services.memory.store(agent, session, plan.dropped.map((m) => ({ role: m.role, text: textOf(m) })));
        if (stored.size >= MAX_SESSIONS && !stored.has(session)) stored.delete(stored.keys().next().value!);
        stored.set(session, { ...cut });
      }
      const note = recall(services, agent, session, messages, cfg, (t) => services.tokens.countText(req.model, family, t));
      if (note && count(withNote(messages, note.text)) <= budget) {
        messages = withNote(messages, note.text);
        recalled = note.count;
      }
    }
    const orphans = orphansOf(messages);
    if (orphans.calls.length > 0 || orphans.results.length > 0) {
      call.decisions.push({ stage: NAME, decision: 'invalid-history', detail: { ...orphans, note: 'forwarded unchanged' } });
      return CONTINUE;
    }
    const after = count(messages);
    if (after > budget) {
      // Everything droppable is gone and it still does not fit (pinned messages, the newest turns, or
      // parts Warden cannot count): the upstream will judge; the record says why.
      call.decisions.push({ stage: NAME, decision: 'over-budget', detail: { budget, after } });
      call.actions.push('context-over-budget');
    }
    // Calibration compares the upstream's count with Warden's for what was actually sent.
    call.state.set(NAME, { estimate: after, family });
    call.decisions.push({ stage: NAME, decision: 'trimmed', detail: { session, budget, before, after, dropped: plan.dropped.length, cleared: plan.cleared, recalled } });
    if (recalled > 0) call.actions.push(`memory-recalled:${recalled}`);
    if (plan.cleared > 0) call.actions.push(`tool-results-cleared:${plan.cleared}`);
    return rewrite<Request>({ ...req, messages }, plan.dropped.length > 0 ? 'context-trimmed' : undefined);
  }

  /** Anthropic's tokenizer is not public: every answer's reported usage tunes the estimate. */
  function calibrate(call: CallContext, res: Response): void {
    const state = call.state.get(NAME) as { estimate: number; family: TokenizerFamily } | undefined;
    if (state?.family === 'anthropic' && res.usage && call.modelSent) services.tokens.calibrate(call.modelSent, state.estimate, res.usage.inputTokens);
  }
}

function textOf(m: Message): string {
  const parts = [m.text, ...(m.toolCalls ?? []).map((c) => `${c.name}(${c.arguments})`), ...(m.role === 'tool' ? [] : (m.toolResults ?? []).map((r) => r.content))];
  return parts.filter(Boolean).join('\n');
}

/** The recalled memories as one marked system note, within its token cap. */
function recall(services: ContextServices, agent: string, session: string, kept: readonly Message[], cfg: ContextConfig, tokensOf: (t: string) => number): { text: string; count: number } | undefined {
  const lastUser = [...kept].reverse().find((m) => m.role === 'user' && !m.toolResults?.length);
  if (!lastUser || cfg.memory.topK === 0) return undefined;
  const present = new Set(kept.map(textOf));
  const found = services.memory!.recall(agent, session, lastUser.text, cfg.memory.topK * 2).filter((m) => !present.has(m.text)).slice(0, cfg.memory.topK);
  const header = '[warden memory] Earlier in this conversation (recalled from messages trimmed to fit the context window; verbatim, possibly out of date):';
  const lines: string[] = [];
  let tokens = tokensOf(header);
  for (const m of found) {
    const line = `- ${m.role}: ${m.text}`;
    const t = tokensOf(line);
    if (tokens + t > cfg.memory.maxTokens) continue;
    tokens += t;
    lines.push(line);
  }
  return lines.length > 0 ? { text: [header, ...lines].join('\n'), count: lines.length } : undefined;
}

const SUMMARY_LABEL = (by: string) => `[warden summary] A lossy summary, by ${by}, of earlier messages trimmed to fit the context window (the messages themselves are in the session memory):`;

/** The summary stands where the dropped span stood: after the system prompt and the first task. */
function withSummary(messages: readonly Message[], summary: string): Message[] {
  const first = messages.findIndex((m) => m.role === 'user' && !m.toolResults?.length);
  const at = first === -1 ? 0 : first + 1;
  return [...messages.slice(0, at), { role: 'system', text: summary }, ...messages.slice(at)];
}

/** The note goes just before the latest user turn, where the model reads it with the question. */
function withNote(messages: readonly Message[], note: string): Message[] {
  let at = messages.length;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user' && !messages[i].toolResults?.length) {
      at = i;
      break;
    }
  }
  return [...messages.slice(0, at), { role: 'system', text: note }, ...messages.slice(at)];
}

/** Without x-warden-session: the conversation's identity is its opening (system prompt and first task). */
function derivedSession(agent: string, messages: readonly Message[]): string {
  const h = createHash('sha256').update(agent);
  let users = 0;
  for (const m of messages) {
    h.update('\u0000').update(m.role).update('\u0000').update(m.text);
    if (m.role === 'user' && ++users === 1) break;
  }
  return `derived:${h.digest('hex').slice(0, 24)}`;
}
