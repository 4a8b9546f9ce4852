// A model call end to end: parse to canonical, run the request stages, forward (the agent's own bytes
// when nothing changed), then run the response or stream stages on the way back.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { accumulate, emptyResponse, finishAccumulation, type ToolCall } from '../canonical.ts';
import { captureBytes, captureValue } from '../audit/call-record.ts';
import { ToolBlockedError, UpstreamUnreachableError, WardenError } from '../errors.ts';
import { holdsToolCalls, runRequest, runResponse, runStreamEnd, runStreamEvent, runStreamToolCalls, type Pipeline } from '../pipeline.ts';
import type { EndpointAdapter, HeldEvent, Json } from '../providers/types.ts';
import { obj } from '../providers/wire.ts';
import type { CallContext } from '../stage.ts';
import { parseJsonObject, readBody } from './body.ts';
import type { CallTiming } from './call-timing.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import { drained, sendError, wardenHeaders } from './respond.ts';
import { relay } from './relay.ts';
import { SseSplitter, type SseEvent } from './sse.ts';
import { toWardenError, type UpstreamClient, type UpstreamResponse } from './upstream-client.ts';

// An SSE event bigger than this is passed through unparsed rather than held in memory.
const MAX_EVENT_BYTES = 4 * 1024 * 1024;
// A whole (non-streamed) model response is read into memory to run stages on it; past this it is an error.
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
// A stream held back for its tool calls to be judged keeps at most this much; past it, the calls
// cannot be checked, so they are refused rather than let through unseen.
const MAX_HELD_TOOL_BYTES = 8 * 1024 * 1024;

export interface ModelCallInput {
  req: IncomingMessage;
  res: ServerResponse;
  call: CallContext;
  client: UpstreamClient;
  adapter: EndpointAdapter;
  pipeline: Pipeline;
  rest: string;
  timing: CallTiming;
  maxBodyBytes: number;
  signal: AbortSignal;
  /** Commits the call's audit record; awaited before the last bytes go out (rejects under strict durability when it fails). */
  release(): Promise<void>;
}

function isEventStream(headers: UpstreamResponse['headers']): boolean {
  return String(headers['content-type'] ?? '').startsWith('text/event-stream');
}

function isJson(headers: UpstreamResponse['headers']): boolean {
  return String(headers['content-type'] ?? '').includes('json');
}

/** Handles one model call; throws WardenErrors for the caller to render. */
export async function handleModelCall(input: ModelCallInput): Promise<void> {
  const { req, res, call, client, adapter, pipeline, timing } = input;
  const body = await readBody(req, input.maxBodyBytes);
  const wire = parseJsonObject(body);
  call.bodies.request = captureBytes(call.policy, body);
  const outcome = await runRequest(pipeline, call, adapter.parseRequest(wire));
  if ('reply' in outcome) {
    await replyWith(input, outcome.reply);
    return;
  }
  const request = outcome.value;
  // Fidelity: with no stage changing the call, the agent's exact bytes go upstream.
  const outBody = outcome.changed ? Buffer.from(JSON.stringify(adapter.writeRequest(wire, request))) : body;
  const headers = upstreamRequestHeaders(req.headers, { strip: client.stripHeaders, set: client.setHeaders, identity: true });
  headers['content-length'] = String(outBody.length);

  timing.upstreamStart = performance.now();
  const up = await client.send({ method: 'POST', path: client.path(input.rest), headers, body: outBody, signal: input.signal });
  timing.status = up.status;
  if (up.status >= 200 && up.status < 300 && request.stream && isEventStream(up.headers)) {
    await streamBack(input, up);
  } else if (up.status >= 200 && up.status < 300 && isJson(up.headers)) {
    await wholeBack(input, up);
  } else {
    // Errors and anything unexpected pass through untouched: the agent's SDK knows the upstream's shapes.
    await relay(res, up, wardenHeaders(call.id, call.actions), timing, input.release);
  }
}

/** Answers with a stage's short-circuit, once the call's record is committed. */
async function replyWith(input: ModelCallInput, err: WardenError): Promise<void> {
  input.timing.status = err.status;
  input.timing.error = err.code;
  await input.release();
  sendError(input.res, input.client.provider, err, input.call.id, input.call.actions);
}

async function readAll(up: UpstreamResponse, upstream: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of up.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      up.body.destroy();
      throw new UpstreamUnreachableError(upstream, { cause: new Error(`response over ${MAX_RESPONSE_BYTES} bytes`) });
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
}

async function wholeBack(input: ModelCallInput, up: UpstreamResponse): Promise<void> {
  const { res, call, adapter, pipeline, timing, client } = input;
  const raw = await readAll(up, client.config.name);
  timing.upstreamEnd = performance.now();
  let out: Buffer = raw;
  let wire: Json | undefined;
  try {
    wire = obj(JSON.parse(raw.toString('utf8')));
  } catch {
    call.decisions.push({ stage: 'proxy', decision: 'unparsable-response' });
  }
  if (wire) {
    const outcome = await runResponse(pipeline, call, adapter.parseResponse(wire));
    if ('reply' in outcome) {
      call.bodies.response = captureBytes(call.policy, raw);
      await replyWith(input, outcome.reply);
      return;
    }
    if (outcome.changed) out = Buffer.from(JSON.stringify(adapter.writeResponse(wire, outcome.value)));
  }
  // The record keeps what the agent receives.
  call.bodies.response = captureBytes(call.policy, out);
  await input.release();
  const headers = { ...clientResponseHeaders(up.headers, true), ...wardenHeaders(call.id, call.actions), 'content-length': out.length };
  res.writeHead(up.status, headers);
  timing.firstByte = performance.now();
  res.end(out);
}

async function streamBack(input: ModelCallInput, up: UpstreamResponse): Promise<void> {
  const { res, call, adapter, pipeline, timing, client } = input;
  res.writeHead(up.status, { ...clientResponseHeaders(up.headers, true), ...wardenHeaders(call.id, call.actions) });
  res.flushHeaders();
  const splitter = new SseSplitter(MAX_EVENT_BYTES);
  const acc = emptyResponse();
  // The terminal event (and anything after it) waits for the record's commit, so an SDK never
  // sees a finished stream that has no record; every earlier event flows at once.
  const held: Buffer[] = [];
  let failure: WardenError | undefined;
  // With a tool gate in the pipeline, everything from the first tool-call event on is held back
  // until the calls are whole and judged (text before them still flows as it arrives).
  const gate = holdsToolCalls(pipeline) && adapter.rewriteToolCalls !== undefined;
  const toolTail: HeldEvent[] = [];
  let toolTailBytes = 0;
  let holding = false;
  let sawTerminal = false;

  /** One event after the stream stages (null when they dropped it), and whether it carries a tool call. */
  function transform(ev: SseEvent): { event: HeldEvent; toolCall: boolean } | null {
    if (ev.data === undefined) return { event: ev, toolCall: false };
    let parsed;
    try {
      parsed = adapter.parseStreamEvent(ev.event, ev.data);
    } catch {
      return { event: ev, toolCall: false }; // not JSON: not ours to judge
    }
    if (!parsed) return { event: ev, toolCall: false };
    let changed = false;
    let toolCall = false;
    const kept = [];
    for (const e of parsed.events) {
      if (e.type === 'tool-call') toolCall = true;
      accumulate(acc, e);
      const next = runStreamEvent(pipeline, call, e);
      if (next !== e) changed = true;
      if (next !== null) kept.push(next);
    }
    if (!changed) return { event: ev, toolCall };
    if (kept.length === 0) return null;
    const data = JSON.stringify(adapter.writeStreamEvent(parsed, kept));
    return { event: { raw: Buffer.from(ev.event !== undefined ? `event: ${ev.event}\ndata: ${data}\n\n` : `data: ${data}\n\n`), event: ev.event, data }, toolCall };
  }

  try {
    for await (const chunk of up.body as AsyncIterable<Buffer>) {
      const out: Buffer[] = [];
      for (const piece of splitter.push(chunk)) {
        const t = Buffer.isBuffer(piece) ? { event: { raw: piece }, toolCall: false } : transform(piece);
        if (!t) continue;
        const terminal = !Buffer.isBuffer(piece) && piece.data !== undefined && adapter.isTerminal(piece.event, piece.data);
        sawTerminal ||= terminal;
        if (gate && (holding || t.toolCall)) {
          holding = true;
          toolTailBytes += t.event.raw.length;
          if (toolTailBytes <= MAX_HELD_TOOL_BYTES) toolTail.push(t.event);
          continue;
        }
        (held.length > 0 || terminal ? held : out).push(t.event.raw);
      }
      if (out.length === 0) continue;
      timing.firstByte ??= performance.now();
      if (!res.write(out.length === 1 ? out[0] : Buffer.concat(out))) await drained(res);
    }
    const tail = splitter.end();
    if (tail && holding) toolTail.push({ raw: tail });
    else if (tail) held.push(tail);
    timing.upstreamEnd = performance.now();
  } catch (err) {
    timing.upstreamEnd = performance.now();
    const mapped = toWardenError(client.config, err, input.signal);
    if (!(mapped instanceof WardenError) || res.destroyed) {
      endStream(); // the client went away: nothing to tell it, but the stages still close the call
      throw err;
    }
    failure = mapped;
    call.decisions.push({ stage: 'proxy', decision: 'stream-failed', detail: { code: failure.code } });
    timing.streamError = failure.code;
  }
  endStream();

  /** Ends accumulation, judges held tool calls, then tells the stages: in that order, so they see what the agent gets. */
  function endStream(): void {
    // The calls by their canonical index, which the gate's verdict and the adapter's rewrite speak of.
    const calls = holding ? new Map(acc.toolCalls.flatMap((tc, i): [number, ToolCall][] => (tc ? [[i, tc]] : []))) : undefined;
    finishAccumulation(acc);
    if (calls && !failure) judgeToolCalls(calls);
    runStreamEnd(pipeline, call, acc);
  }

  function judgeToolCalls(calls: Map<number, ToolCall>): void {
    const verdict = toolTailBytes > MAX_HELD_TOOL_BYTES
      ? { reply: new ToolBlockedError(`the streamed tool calls exceed the ${MAX_HELD_TOOL_BYTES} bytes Warden holds to check them`) }
      // Complete: the terminal event came, or at least the finish reason (some upstreams omit [DONE]).
      : runStreamToolCalls(pipeline, call, calls, sawTerminal || acc.finishReason !== undefined);
    if ('reply' in verdict) {
      failure = verdict.reply;
      timing.streamError = failure.code;
    } else if (verdict.blocked.size > 0) {
      held.push(...adapter.rewriteToolCalls!(toolTail, verdict.blocked));
      // The record keeps what the agent receives: the refusals, not the calls they replaced.
      acc.toolCalls = [...calls].filter(([i]) => !verdict.blocked.has(i)).map(([, tc]) => tc);
      acc.text = [acc.text, ...verdict.blocked.values()].filter(Boolean).join('\n\n');
    } else {
      held.push(...toolTail.map((e) => e.raw));
    }
  }
  call.bodies.response = captureValue(call.policy, acc.text.length + acc.toolCalls.reduce((n, c) => n + c.arguments.length, 0), () => acc);
  try {
    await input.release();
  } catch (err) {
    if (!(err instanceof WardenError)) throw err;
    // Headers are gone already, so failures are told in-band, in the provider's own stream error shape.
    failure = err;
    timing.streamError = err.code;
  }
  if (failure) res.end(client.provider.streamErrorEvent(failure));
  else res.end(held.length > 0 ? Buffer.concat(held) : undefined);
}
