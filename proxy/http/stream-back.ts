// A streamed model response on its way back to the agent: event by event through the stream stages,
// tool calls held back until judged, the terminal event held until the record commits, and a stall
// (the upstream going silent past idleMs, or the call's total time running out) handled as the policy
// says: end the stream as a truncated answer, ask again while the agent has nothing yet, or continue
// from the partial answer. The partial output of every stalled attempt goes into the record.
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { errors as undiciErrors } from 'undici';
import { accumulate, finishAccumulation, type ToolCall } from '../canonical.ts';
import { captureValue } from '../audit/call-record.ts';
import { ClientStalledError, ToolBlockedError, UpstreamTimeoutError, WardenError } from '../errors.ts';
import { holdsToolCalls, recordable, runStreamEnd, runStreamEvent, runStreamRestart, runStreamToolCalls, type Pipeline } from '../pipeline.ts';
import type { Continuation, EndpointAdapter, HeldEvent, Json } from '../providers/types.ts';
import type { CallContext } from '../stage.ts';
import type { Metrics } from '../metrics.ts';
import type { CallTiming } from './call-timing.ts';
import { clientResponseHeaders } from './headers.ts';
import { drained, wardenHeaders } from './respond.ts';
import { parseFields, SseSplitter, type SseEvent } from './sse.ts';
import { MAX_EVENT_BYTES, MAX_HELD_TOOL_BYTES, StreamAttempt } from './stream-attempt.ts';
import { spliced, wireEvents } from './stream-events.ts';
import { isEventStream, isOk, toWardenError, type UpstreamClient, type UpstreamResponse } from './upstream-client.ts';

const STAGE = 'retry';
const BLANK_LINE = Buffer.from('\n\n');
const EMPTY = Buffer.alloc(0);

export interface StreamBackInput {
  res: ServerResponse;
  call: CallContext;
  client: UpstreamClient;
  adapter: EndpointAdapter;
  pipeline: Pipeline;
  timing: CallTiming;
  metrics: Metrics;
  signal: AbortSignal;
  /** The body that went upstream, for a continuation to extend. */
  sentBody(): Json;
  /** Asks again from scratch (a budgeted retry); undefined when no retry may be made. */
  retry(): Promise<UpstreamResponse | undefined>;
  /** Sends a continuation request to the same upstream. */
  send(body: Json): Promise<UpstreamResponse>;
  release(): Promise<void>;
}

/** One event after the stream stages: the wire events in its place (none when dropped), whether it carries a tool call; or the error a stage ended the stream with. */
type Transformed = { events: HeldEvent[]; toolCall: boolean } | { reply: WardenError };

/** Streams an upstream SSE response back to the agent. */
export async function streamBack(input: StreamBackInput, first: UpstreamResponse): Promise<void> {
  await new StreamRelay(input).run(first);
}

class StreamRelay {
  readonly #in: StreamBackInput;
  readonly #gate: boolean;
  /** What one upstream attempt has produced; a retry starts a fresh one. */
  #state: StreamAttempt;
  #failure: WardenError | undefined;
  /** A stage ended the stream (a reply from a stream hook), or the upstream sent too much after its end: nothing more is read or sent. */
  #stopped = false;
  #headers: Record<string, string | string[] | undefined> = {};
  #status = 200;
  #attempt = 1;

  constructor(input: StreamBackInput) {
    this.#in = input;
    // With a tool gate in the pipeline, everything from the first tool-call event on is held back
    // until the calls are whole and judged (text before them still flows as it arrives).
    this.#gate = holdsToolCalls(input.pipeline) && input.adapter.rewriteToolCalls !== undefined;
    this.#state = new StreamAttempt(input.adapter);
  }

  async run(first: UpstreamResponse): Promise<void> {
    const { res, call, timing } = this.#in;
    try {
      await this.#relayAll(first);
    } catch (err) {
      // The agent stopped reading or left (while Warden was closing the stream, say): the stages still
      // close the call (usage is metered), and the record keeps what the agent had received.
      if (err instanceof ClientStalledError || res.destroyed) {
        try {
          this.#endStream();
          this.#recordResponse();
        } catch (stageErr) {
          // The agent's departure stays what the call is recorded for; the record says a stage failed too.
          call.decisions.push({ stage: 'proxy', decision: 'stream-end-failed', detail: { message: (stageErr as Error).message } });
        }
      }
      throw err;
    }
    timing.upstreamEnd = performance.now();
    // An upstream that ended cleanly before its terminal event or any finish reason gave an unfinished
    // answer: passed on as it came (the bytes are the upstream's), but the record says so.
    if (!this.#state.sawTerminal && this.#state.acc.finishReason === undefined && !this.#state.cut && !this.#stopped && !this.#failure) {
      call.decisions.push({ stage: 'proxy', decision: 'ended-without-terminal' });
    }
    this.#endStream();
    this.#recordResponse();
    // The agent left while a stalled stream was being retried or continued: nothing more reaches it.
    if (res.destroyed) timing.status = 499;
    try {
      await this.#in.release();
    } catch (err) {
      if (!(err instanceof WardenError)) throw err;
      // Headers may be gone already, so failures are told in-band, in the provider's own stream error shape.
      this.#failure = err;
      timing.streamError = err.code;
    }
    this.#head();
    if (this.#failure) res.end(Buffer.concat([this.#endOpenEvent(), Buffer.from(this.#in.client.provider.streamErrorEvent(this.#failure))]));
    else res.end(this.#state.held.length > 0 ? Buffer.concat(this.#state.held) : undefined);
  }

  /** Relays the first upstream body, then each retry or continuation a stall calls for. */
  async #relayAll(first: UpstreamResponse): Promise<void> {
    const { res, call } = this.#in;
    let up: UpstreamResponse | undefined = first;
    let splice: Continuation['splice'] | undefined;
    while (up) {
      this.#status = splice ? this.#status : up.status;
      this.#headers = splice ? this.#headers : up.headers;
      // Headers go at once, as the upstream's did, unless a stall may be retried: then they wait for
      // the first event, since once the agent has them a retry could no longer be unseen.
      if (call.policy.retries.onStall !== 'retry') {
        this.#head();
        res.flushHeaders();
      }
      const stall = await this.#pump(up, splice);
      up = undefined;
      if (!stall) break;
      const next = await this.#onStall(stall);
      if (next === 'closed') break;
      if (next.kind === 'retry') this.#reset();
      else splice = next.splice;
      up = next.up;
    }
  }

  /** Relays one upstream body; returns the stall that cut it short, if one did. */
  async #pump(up: UpstreamResponse, splice: Continuation['splice'] | undefined): Promise<'idle' | 'total' | undefined> {
    const { signal, client } = this.#in;
    const outer = splice ? new SseSplitter(MAX_EVENT_BYTES) : undefined;
    try {
      for await (const chunk of up.body as AsyncIterable<Buffer>) {
        await this.#write(outer ? spliced(outer.push(chunk), splice!) : chunk);
        if (this.#stopped) return undefined; // leaving the loop ends the upstream body
      }
      // A continuation's last event may lack its blank line; it is still the continuation's to map.
      const last = outer?.end();
      if (last && !this.#stopped) await this.#write(spliced([{ raw: last, ...parseFields(last.toString('utf8')) }], splice!));
      // So may the upstream's own last event: it is sent (and judged) as it is, not held for a blank line.
      const tail = this.#state.splitter.endPiece();
      if (tail && !this.#stopped) {
        this.#state.openTail = true;
        await this.#send([tail]);
      }
      return undefined;
    } catch (err) {
      if (err instanceof undiciErrors.BodyTimeoutError && !signal.aborted) return 'idle';
      const mapped = toWardenError(client.config, err, signal);
      if (signal.aborted && mapped instanceof WardenError && !this.#in.res.destroyed) return 'total';
      if (!(mapped instanceof WardenError) || this.#in.res.destroyed) {
        // The client went away: nothing to tell it, but the stages still close the call, and the
        // record keeps what the agent had received.
        this.#endStream();
        this.#recordResponse();
        throw err;
      }
      this.#failure = mapped;
      this.#in.call.decisions.push({ stage: 'proxy', decision: 'stream-failed', detail: { code: mapped.code } });
      this.#in.timing.streamError = mapped.code;
      return undefined;
    }
  }

  /**
   * A blank line when the agent may have an event without its end (an oversized one cut short, or the
   * upstream's own unterminated last one), so that what Warden adds is an event of its own; else nothing.
   */
  #endOpenEvent(): Buffer {
    return (this.#state.splitter.passingThrough || this.#state.openTail) && this.#in.res.headersSent ? BLANK_LINE : EMPTY;
  }

  #recordResponse(): void {
    const { call } = this.#in;
    call.bodies.response = captureValue(call.policy, this.#state.size(), () => this.#state.acc);
  }

  /** Splits, transforms and sends (or holds) one chunk of upstream bytes. */
  #write(chunk: Buffer): Promise<void> {
    return this.#stopped ? Promise.resolve() : this.#send(this.#state.splitter.push(chunk));
  }

  /** Transforms and sends (or holds) events and pass-through bytes. */
  async #send(pieces: (SseEvent | Buffer)[]): Promise<void> {
    if (this.#stopped) return;
    const out: Buffer[] = [];
    for (const piece of pieces) {
      const t: Transformed = Buffer.isBuffer(piece) ? { events: [{ raw: piece }], toolCall: false } : this.#transform(piece);
      if ('reply' in t) {
        this.#failure = t.reply;
        this.#in.timing.streamError = t.reply.code;
        this.#stopped = true;
        break;
      }
      const terminal = !Buffer.isBuffer(piece) && piece.data !== undefined && this.#in.adapter.isTerminal(piece.event, piece.data);
      this.#state.sawTerminal ||= terminal;
      for (const event of t.events) {
        const placed = this.#state.place(event, this.#gate, t.toolCall, terminal);
        if (placed === 'send') out.push(event.raw);
        else if (placed !== 'held') {
          this.#in.call.decisions.push({ stage: 'proxy', decision: 'ended-after-terminal', detail: { heldBytes: placed.overflow } });
          this.#stopped = true;
          break;
        }
      }
      if (this.#stopped) break;
    }
    if (out.length === 0) return;
    this.#head();
    this.#in.timing.firstByte ??= performance.now();
    const { res } = this.#in;
    if (!res.write(out.length === 1 ? out[0] : Buffer.concat(out))) await drained(res, this.#in.client.config.timeouts.idleMs);
  }

  /** Writes the response headers, once. */
  #head(): void {
    const { res, call } = this.#in;
    if (res.headersSent) return;
    res.writeHead(this.#status, { ...clientResponseHeaders(this.#headers, true), ...wardenHeaders(call.id, call.actions) });
  }

  #transform(ev: SseEvent): Transformed {
    const { adapter, pipeline, call } = this.#in;
    if (ev.data === undefined) return { events: [ev], toolCall: false };
    let parsed;
    try {
      parsed = adapter.parseStreamEvent(ev.event, ev.data);
    } catch {
      return { events: [ev], toolCall: false }; // not JSON: not ours to judge
    }
    this.#state.tracker?.observe(ev.event, parsed?.data);
    if (!parsed) return { events: [ev], toolCall: false };
    let changed = false;
    let toolCall = false;
    const kept = [];
    for (const e of parsed.events) {
      if (e.type === 'tool-call') toolCall = true;
      accumulate(this.#state.acc, e);
      const next = runStreamEvent(pipeline, call, e);
      if ('reply' in next) return next;
      if (next.length !== 1 || next[0] !== e) changed = true;
      kept.push(...next);
    }
    if (changed && kept.length === 0) return { events: [], toolCall };
    return { events: wireEvents(adapter, ev, parsed, kept, changed, this.#state.numbering), toolCall };
  }

  /** Records the stalled attempt's partial output, then retries, continues, or closes the stream. */
  async #onStall(kind: 'idle' | 'total'): Promise<'closed' | { kind: 'retry' | 'continue'; up: UpstreamResponse; splice?: Continuation['splice'] }> {
    const { call, metrics, res } = this.#in;
    const policy = call.policy.retries.onStall;
    // The stalled attempt's unfinished last event never reached the agent; it goes with the attempt.
    // Unless it was an oversized one already passing through: then it is ended where it stands, so that
    // what follows (Warden's closing events, a continuation) starts an event of its own.
    const open = this.#endOpenEvent();
    if (open.length > 0) res.write(open);
    this.#state.splitter = new SseSplitter(MAX_EVENT_BYTES);
    // Only while nothing has reached the agent can asking again not duplicate a byte it has.
    if (kind === 'idle' && policy === 'retry' && !res.headersSent) {
      this.#noteStall(kind, 'retry');
      const up = await this.#in.retry();
      if (up) {
        metrics.retries.inc({ reason: 'stall' });
        this.#attempt++;
        return { kind: 'retry', up };
      }
      call.decisions.push({ stage: STAGE, decision: 'retry-refused', detail: { why: 'no attempt left in the policy or the budget, or the retry failed' } });
    } else if (kind === 'idle' && policy === 'continue' && this.#state.tracker?.continuation) {
      const continuation = this.#state.tracker.continuation(this.#in.sentBody());
      this.#noteStall(kind, continuation ? 'continue' : 'return_partial');
      const up = continuation && await this.#in.send(continuation.body).catch(() => undefined);
      // Only a stream can continue one: a 200 in JSON would end the agent's with no closing events.
      if (up && isOk(up.status) && isEventStream(up.headers)) {
        metrics.retries.inc({ reason: 'stall' });
        call.actions.push('continued');
        return { kind: 'continue', up, splice: continuation!.splice };
      }
      if (continuation) {
        up?.body.resume();
        call.decisions.push({ stage: STAGE, decision: 'continuation-failed', detail: { status: up?.status, contentType: up?.headers['content-type'] } });
      }
    } else {
      this.#noteStall(kind, 'return_partial');
    }
    await this.#closePartial(kind);
    return 'closed';
  }

  /** The stall and the partial output so far, in the call's record (always, whatever happens next). */
  #noteStall(kind: 'idle' | 'total', action: string): void {
    const { call } = this.#in;
    const partial = recordable(this.#in.pipeline, call, { text: this.#state.acc.text, toolCalls: this.#state.acc.toolCalls.filter(Boolean) });
    call.decisions.push({
      stage: STAGE, decision: 'stalled',
      detail: { attempt: this.#attempt, timeout: kind === 'idle' ? 'idleMs' : 'totalMs', action, partial: captureValue(call.policy, this.#state.size(), () => partial) },
    });
  }

  /** Ends the stream as a truncated answer the agent's SDK reads as finished. */
  async #closePartial(kind: 'idle' | 'total'): Promise<void> {
    const { call, timing } = this.#in;
    call.actions.push('partial');
    timing.streamError = 'WARDEN_PARTIAL';
    this.#state.cut = true;
    const note = { partial: true, reason: kind === 'idle' ? 'upstream stalled' : 'total timeout', request_id: call.id };
    if (!this.#state.tracker) {
      const t = this.#in.client.config.timeouts;
      this.#failure = kind === 'idle' ? new UpstreamTimeoutError(this.#in.client.config.name, 'idle between events', t.idleMs) : new UpstreamTimeoutError(this.#in.client.config.name, 'total', t.totalMs);
      return;
    }
    // Through the same path as upstream bytes, so the stages and the record see the closing events.
    await this.#write(this.#state.tracker.close(note));
  }

  /** Starts over for a retry: nothing was sent, so nothing is kept but the record's notes. */
  #reset(): void {
    this.#state = new StreamAttempt(this.#in.adapter);
    runStreamRestart(this.#in.pipeline, this.#in.call);
  }

  #ended = false;

  /** Ends accumulation, judges held tool calls, then tells the stages: in that order, so they see what the agent gets. */
  #endStream(): void {
    if (this.#ended) return;
    this.#ended = true;
    const calls = this.#state.heldToolCalls();
    finishAccumulation(this.#state.acc);
    if (calls && !this.#failure) this.#judgeToolCalls(calls);
    this.#state.acc = runStreamEnd(this.#in.pipeline, this.#in.call, this.#state.acc);
  }

  #judgeToolCalls(calls: Map<number, ToolCall>): void {
    const { pipeline, call, adapter, timing } = this.#in;
    const verdict = this.#state.toolTailOverflowed
      ? { reply: new ToolBlockedError(`the streamed tool calls exceed the ${MAX_HELD_TOOL_BYTES} bytes Warden holds to check them`) }
      // Complete: the terminal event came, or at least the finish reason (some upstreams omit [DONE]),
      // from the model, not from Warden closing a stalled stream.
      : runStreamToolCalls(pipeline, call, calls, !this.#state.cut && (this.#state.sawTerminal || this.#state.acc.finishReason !== undefined));
    if ('reply' in verdict) {
      this.#failure = verdict.reply;
      timing.streamError = verdict.reply.code;
    } else {
      this.#state.releaseToolCalls(adapter, calls, verdict.blocked);
    }
  }
}
