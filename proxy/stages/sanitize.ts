// Output sanitization. Model responses (text and tool-call arguments, whole or streamed) and, on the
// way up, tool results (and prompts, when asked) go through the policy's detectors; a match is
// masked, hashed, let through for a recipient allowed to see it, or refused (403
// WARDEN_ERR_SENSITIVE_OUTPUT, or in band when streaming). Streams are sanitized per channel with a
// bounded hold-back (proxy/sanitize/stream.ts), released before each channel closes. The call's
// record gets the counts per class, never the data; the record's bodies are the redacted ones.
// Recipients (x-warden-recipient) apply to responses only: the header is the agent's word on who reads
// the answer, while whoever reads a request is the provider, so requests always get the defaults.
import type { Policy } from '../../policies/types.ts';
import type { Request, Response, StreamEvent } from '../canonical.ts';
import { captureBytes, captureValue } from '../audit/call-record.ts';
import { InvalidRequestError, SensitiveInputError, SensitiveOutputError } from '../errors.ts';
import { headerValue } from '../http/headers.ts';
import type { TextMap } from '../providers/types.ts';
import { StreamChannels } from '../sanitize/channels.ts';
import { compileSanitizer } from '../sanitize/compile.ts';
import type { Engine, Finding } from '../sanitize/engine.ts';
import { SanitizeMemo } from '../sanitize/memo.ts';
import { sanitizeText } from '../sanitize/sanitizer.ts';
import { CONTINUE, reply, rewrite, type CallContext, type Continue, type Reply, type Rewrite, type Stage } from '../stage.ts';
import { decide, noteViolation } from '../tools/violations.ts';

const NAME = 'sanitize';
const RECIPIENT = 'x-warden-recipient';

type Counts = Record<string, number>;

/** What a call's findings came to, by what was done. */
interface Tally {
  redacted: Counts;
  allowed: Counts;
  logged: Set<string>;
  blocked: Set<string>;
}

interface StreamState {
  channels: StreamChannels;
  /** Tool-call ids by canonical index, to find a call's arguments in the accumulated response. */
  ids: Map<number, string>;
  tally: Tally;
}

function newTally(): Tally {
  return { redacted: {}, allowed: {}, logged: new Set(), blocked: new Set() };
}

function add(t: Tally, findings: readonly Finding[]): void {
  for (const f of findings) {
    if (f.treatment === 'mask' || f.treatment === 'hash') t.redacted[f.detector] = (t.redacted[f.detector] ?? 0) + 1;
    else if (f.treatment === 'allow') t.allowed[f.detector] = (t.allowed[f.detector] ?? 0) + 1;
    else if (f.treatment === 'log') t.logged.add(f.detector);
    else t.blocked.add(f.detector);
  }
}

const total = (c: Counts) => Object.values(c).reduce((n, x) => n + x, 0);

/** Both stages, sharing one compiled sanitizer: the pipeline places them apart (see proxy/pipeline.ts). */
export function createSanitize(policy: Policy): { request?: Stage; response?: Stage } {
  const config = policy.sanitize!;
  const compiled = compileSanitizer(policy);
  const engineOf = (call: CallContext) => compiled.engineFor(headerValue(call.headers, RECIPIENT));
  // Requests are read by the provider, not by the recipient the agent names: always the defaults.
  const memo = new SanitizeMemo(compiled.engineFor(undefined));
  // Only the record keeps a streamed response's text (later stages read its tool calls and usage).
  const keepsText = policy.audit.enabled && policy.audit.bodies !== 'none';

  /** The tally into the record: counts per class (never the data), and the violations a block rule makes. */
  function record(call: CallContext, where: 'request' | 'response' | 'stream', t: Tally): void {
    const recipient = where === 'request' ? undefined : headerValue(call.headers, RECIPIENT);
    const base = { where, ...(recipient !== undefined ? { recipient } : {}) };
    if (total(t.redacted) > 0) call.decisions.push({ stage: NAME, decision: 'redacted', detail: { ...base, counts: t.redacted, ...(total(t.allowed) > 0 ? { allowed: t.allowed } : {}) } });
    else if (total(t.allowed) > 0) call.decisions.push({ stage: NAME, decision: 'allowed', detail: { ...base, counts: t.allowed } });
    for (const cls of [...t.logged, ...t.blocked]) {
      const message = `the ${where === 'request' ? 'request' : 'response'} contains ${cls}`;
      noteViolation(call, NAME, decide(policy, { kind: 'sensitive_output', tool: where === 'request' ? '(model input)' : '(model output)', message }));
    }
  }

  function sanitizeResponse(engine: Engine, res: Response, findings: Finding[]): Response {
    const text = sanitizeText(engine, res.text, 'auto');
    findings.push(...text.findings);
    let changed = text.text !== res.text;
    const toolCalls = res.toolCalls.map((tc) => {
      if (!tc) return tc;
      const args = sanitizeText(engine, tc.arguments, 'auto');
      findings.push(...args.findings);
      if (args.text === tc.arguments) return tc;
      changed = true;
      return { ...tc, arguments: args.text };
    });
    return changed ? { ...res, text: text.text, toolCalls } : res;
  }

  const request: Stage = {
    name: NAME,
    onRequest(call, req) {
      const adapter = call.adapter;
      if (!adapter?.mapMessageText) return CONTINUE;
      const findings: Finding[] = [];
      const map: TextMap = (text, kind) => {
        if (kind === 'tool-result' ? !config.toolResults : !config.prompts) return text;
        // The whole conversation comes again on every call: text seen before is looked up, not rescanned.
        const out = memo.sanitize(text);
        if (out.findings.length > 0) findings.push(...out.findings);
        return out.text;
      };
      // With prompts on, the model's turns too (text and tool-call arguments): the agent sends the
      // history, so what it says the model said is the agent's text like any other.
      const messages = req.messages.map((m) => (m.role === 'assistant' && !config.prompts ? m : adapter.mapMessageText!(m, map)));
      if (findings.length === 0) return CONTINUE;
      const t = newTally();
      add(t, findings);
      record(call, 'request', t);
      const redacted: Request = { ...req, messages };
      const changed = messages.some((m, i) => m !== req.messages[i]);
      // The record keeps the request with the redactions made, not the agent's original.
      const captured = call.bodies.request;
      if (changed && captured?.text !== undefined) {
        try {
          call.bodies.request = captureBytes(policy, Buffer.from(JSON.stringify(adapter.writeRequest(JSON.parse(captured.text), redacted))));
        } catch {
          call.bodies.request = { bytes: captured.bytes };
        }
      }
      if (t.blocked.size > 0) return reply(new SensitiveInputError([...t.blocked]));
      return changed ? rewrite(redacted, `redacted-request:${total(t.redacted)}`) : CONTINUE;
    },
  };

  /** The stream state of a call, made at its first content event. */
  function streamOf(call: CallContext): StreamState {
    let s = call.state.get(NAME) as StreamState | undefined;
    if (!s) call.state.set(NAME, (s = { channels: new StreamChannels(engineOf(call)), ids: new Map(), tally: newTally() }));
    return s;
  }

  /** Counts a channel's new findings; a block ends the stream. */
  function absorb(s: StreamState, findings: readonly Finding[]): Reply | undefined {
    add(s.tally, findings);
    if (s.tally.blocked.size === 0) return undefined;
    return reply(new SensitiveOutputError([...s.tally.blocked]));
  }

  /** Ends a channel: the text it still held, sanitized, noted as sent unless a block stops the stream. */
  function close(s: StreamState, key: string): { text: string; stop?: Reply } {
    const released = s.channels.close(key);
    const stop = absorb(s, released.findings);
    if (!stop) s.channels.sent(key, released.text);
    return { text: released.text, stop };
  }

  function onStreamEvent(call: CallContext, ev: StreamEvent): Continue | Rewrite<StreamEvent | readonly StreamEvent[]> | Reply {
    switch (ev.type) {
      case 'text':
      case 'tool-call': {
        const s = streamOf(call);
        if (ev.type === 'tool-call' && ev.id) s.ids.set(ev.index, ev.id);
        const key = `${ev.type}:${ev.index}`;
        const input = ev.type === 'text' ? ev.text : ev.argumentsDelta;
        const out = s.channels.push(key, input);
        const stop = absorb(s, out.findings);
        if (stop) return stop;
        s.channels.sent(key, out.text);
        if (out.text === input) return CONTINUE;
        return rewrite(ev.type === 'text' ? { ...ev, text: out.text } : { ...ev, argumentsDelta: out.text });
      }
      case 'text-end':
      case 'tool-call-end': {
        const s = streamOf(call);
        const text = ev.type === 'text-end';
        const key = `${text ? 'text' : 'tool-call'}:${ev.index}`;
        const released = close(s, key);
        if (released.stop) return released.stop;
        // The closing event repeats the channel's content (Responses, up to four times): as the channel let it out.
        const whole = text ? ev.text : ev.arguments;
        const clean = whole === undefined ? undefined : s.channels.repeat(key, whole);
        const end: StreamEvent = clean === whole ? ev : text ? { ...ev, text: clean } : { ...ev, arguments: clean };
        if (released.text === '') return end === ev ? CONTINUE : rewrite(end);
        const content: StreamEvent = text ? { type: 'text', index: ev.index, text: released.text } : { type: 'tool-call', index: ev.index, argumentsDelta: released.text };
        return rewrite([content, end]);
      }
      case 'finish': {
        const s = call.state.get(NAME) as StreamState | undefined;
        const keys = s?.channels.openKeys ?? [];
        if (keys.length === 0) return CONTINUE;
        const out: StreamEvent[] = [];
        for (const key of keys) {
          const released = close(s!, key);
          if (released.stop) return released.stop;
          if (released.text === '') continue;
          const [type, index] = key.split(':');
          out.push(type === 'text' ? { type: 'text', index: Number(index), text: released.text } : { type: 'tool-call', index: Number(index), argumentsDelta: released.text });
        }
        return out.length > 0 ? rewrite([...out, ev]) : CONTINUE;
      }
      default:
        return CONTINUE;
    }
  }

  /**
   * A streamed response as the record and later stages get it: what the agent received, taken from
   * what each channel let out rather than sanitized again (text a channel still held when the stream
   * was cut never left). The text only where the record keeps it; tool calls always (the ledger
   * matches the agent's calls to them).
   */
  function forRecord(call: CallContext, res: Response): Response {
    const s = call.state.get(NAME) as StreamState | undefined;
    if (!s) return sanitizeResponse(engineOf(call), res, []);
    const byId = new Map([...s.ids].map(([index, id]) => [id, index]));
    const text = s.channels.recorded('text', res.text, keepsText);
    let changed = text !== res.text;
    const toolCalls = res.toolCalls.map((tc) => {
      if (!tc) return tc;
      const index = tc.id ? byId.get(tc.id) : undefined;
      const args = index === undefined ? sanitizeText(s.channels.engine, tc.arguments, 'auto').text : s.channels.recorded(`tool-call:${index}`, tc.arguments);
      if (args === tc.arguments) return tc;
      changed = true;
      return { ...tc, arguments: args };
    });
    return changed ? { ...res, text, toolCalls } : res;
  }

  const response: Stage = {
    name: NAME,
    onRequest(call, req) {
      // Only the first of several answers is read, so the others would reach the agent unsanitized.
      if ((req.choices ?? 1) <= 1) return CONTINUE;
      call.decisions.push({ stage: NAME, decision: policy.mode === 'enforce' ? 'refused' : 'unsanitized', detail: { choices: req.choices } });
      if (policy.mode !== 'enforce') return CONTINUE;
      return reply(new InvalidRequestError(`[warden] this policy sanitizes responses, and only the first of n answers can be read; ask for one (n: ${req.choices})`));
    },
    onResponse(call, res) {
      const findings: Finding[] = [];
      const out = sanitizeResponse(engineOf(call), res, findings);
      if (findings.length === 0) return CONTINUE;
      const t = newTally();
      add(t, findings);
      record(call, 'response', t);
      if (t.blocked.size > 0) {
        // The record keeps the response with every class masked, not the data that was refused.
        call.bodies.response = captureValue(policy, out.text.length, () => out);
        return reply(new SensitiveOutputError([...t.blocked]));
      }
      return out === res ? CONTINUE : rewrite(out, `redacted:${total(t.redacted)}`);
    },
    onStreamEvent,
    onStreamEnd(call, res) {
      const s = call.state.get(NAME) as StreamState | undefined;
      if (s) {
        record(call, 'stream', s.tally);
        // The headers left with the first byte: the count reaches the record and the log line.
        if (total(s.tally.redacted) > 0) call.actions.push(`redacted:${total(s.tally.redacted)}`);
      }
      const out = forRecord(call, res);
      return out === res ? undefined : out;
    },
    onRecord: forRecord,
    onStreamRestart(call) {
      // The first attempt never reached the agent: nothing it held or found counts.
      call.state.delete(NAME);
    },
  };

  return {
    request: config.toolResults || config.prompts ? request : undefined,
    response: config.responses ? response : undefined,
  };
}
