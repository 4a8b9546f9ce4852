// Output sanitization. Model responses (text and tool-call arguments, whole or streamed) and, on the
// way up, tool results (and prompts, when asked) go through the policy's detectors; a match is
// masked, hashed, let through for a recipient allowed to see it, or refused (403
// WARDEN_ERR_SENSITIVE_OUTPUT, or in band when streaming). Streams are sanitized per channel with a
// bounded hold-back (proxy/sanitize/stream.ts), released before each channel closes. The call's
// record gets the counts per class, never the data; the record's bodies are the redacted ones.
import type { Policy } from '../../policies/types.ts';
import type { Request, Response, StreamEvent } from '../canonical.ts';
import { captureBytes, captureValue } from '../audit/call-record.ts';
import { InvalidRequestError, SensitiveInputError, SensitiveOutputError } from '../errors.ts';
import { headerValue } from '../http/headers.ts';
import type { TextMap } from '../providers/types.ts';
import { compileSanitizer } from '../sanitize/compile.ts';
import type { Engine, Finding } from '../sanitize/engine.ts';
import { sanitizeText } from '../sanitize/sanitizer.ts';
import { StreamSanitizer } from '../sanitize/stream.ts';
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
  engine: Engine;
  /** One sanitizer per open channel: `text:0`, `tool-call:1`. */
  channels: Map<string, StreamSanitizer>;
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

  /** The tally into the record: counts per class (never the data), and the violations a block rule makes. */
  function record(call: CallContext, where: 'request' | 'response' | 'stream', t: Tally): void {
    const recipient = headerValue(call.headers, RECIPIENT);
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
      const engine = engineOf(call);
      const findings: Finding[] = [];
      const map: TextMap = (text, kind) => {
        if (kind === 'tool-result' ? !config.toolResults : !config.prompts) return text;
        const out = sanitizeText(engine, text, 'auto');
        findings.push(...out.findings);
        return out.text;
      };
      // The model's own turns came back through Warden and were sanitized then.
      const messages = req.messages.map((m) => (m.role === 'assistant' ? m : adapter.mapMessageText!(m, map)));
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
    if (!s) call.state.set(NAME, (s = { engine: engineOf(call), channels: new Map(), ids: new Map(), tally: newTally() }));
    return s;
  }

  function channel(s: StreamState, key: string): StreamSanitizer {
    let ch = s.channels.get(key);
    if (!ch) s.channels.set(key, (ch = new StreamSanitizer(s.engine, 'auto')));
    return ch;
  }

  /** Takes a channel's new findings; a block ends the stream. */
  function absorb(call: CallContext, s: StreamState, ch: StreamSanitizer): Reply | undefined {
    const findings = ch.take();
    if (findings.length === 0) return undefined;
    add(s.tally, findings);
    if (s.tally.blocked.size === 0) return undefined;
    return reply(new SensitiveOutputError([...s.tally.blocked]));
  }

  /** Ends a channel: the text it still held, sanitized. */
  function close(call: CallContext, s: StreamState, key: string): { text: string; stop?: Reply } {
    const ch = s.channels.get(key);
    if (!ch) return { text: '' };
    s.channels.delete(key);
    const text = ch.end();
    return { text, stop: absorb(call, s, ch) };
  }

  function onStreamEvent(call: CallContext, ev: StreamEvent): Continue | Rewrite<StreamEvent | readonly StreamEvent[]> | Reply {
    switch (ev.type) {
      case 'text':
      case 'tool-call': {
        const s = streamOf(call);
        if (ev.type === 'tool-call' && ev.id) s.ids.set(ev.index, ev.id);
        const ch = channel(s, `${ev.type}:${ev.index}`);
        const input = ev.type === 'text' ? ev.text : ev.argumentsDelta;
        const out = ch.push(input);
        const stop = absorb(call, s, ch);
        if (stop) return stop;
        if (out === input) return CONTINUE;
        return rewrite(ev.type === 'text' ? { ...ev, text: out } : { ...ev, argumentsDelta: out });
      }
      case 'text-end':
      case 'tool-call-end': {
        const s = streamOf(call);
        const text = ev.type === 'text-end';
        const released = close(call, s, `${text ? 'text' : 'tool-call'}:${ev.index}`);
        if (released.stop) return released.stop;
        // The closing event repeats the channel's content (Responses): the same text, sanitized whole.
        const whole = text ? ev.text : ev.arguments;
        const clean = whole === undefined ? undefined : sanitizeText(s.engine, whole, 'auto').text;
        const end: StreamEvent = clean === whole ? ev : text ? { ...ev, text: clean } : { ...ev, arguments: clean };
        if (released.text === '') return end === ev ? CONTINUE : rewrite(end);
        const content: StreamEvent = text ? { type: 'text', index: ev.index, text: released.text } : { type: 'tool-call', index: ev.index, argumentsDelta: released.text };
        return rewrite([content, end]);
      }
      case 'finish': {
        const s = call.state.get(NAME) as StreamState | undefined;
        if (!s || s.channels.size === 0) return CONTINUE;
        const out: StreamEvent[] = [];
        for (const key of [...s.channels.keys()]) {
          const released = close(call, s, key);
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
   * A streamed response as the record keeps it: what the agent received. Text a channel still held
   * when the stream was cut never left; the rest is sanitized whole, which is what the stream wrote.
   */
  function forRecord(call: CallContext, res: Response): Response {
    const s = call.state.get(NAME) as StreamState | undefined;
    let held = res;
    if (s && s.channels.size > 0) {
      let text = res.text;
      const toolCalls = [...res.toolCalls];
      for (const [key, ch] of s.channels) {
        const [type, index] = key.split(':');
        if (type === 'text') text = text.slice(0, Math.max(0, text.length - ch.held));
        const k = type === 'tool-call' ? toolCalls.findIndex((tc) => tc?.id === s.ids.get(Number(index))) : -1;
        if (k >= 0) toolCalls[k] = { ...toolCalls[k], arguments: toolCalls[k].arguments.slice(0, Math.max(0, toolCalls[k].arguments.length - ch.held)) };
      }
      held = { ...res, text, toolCalls };
    }
    const out = sanitizeResponse(s?.engine ?? engineOf(call), held, []);
    return out;
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
