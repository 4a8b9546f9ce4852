// What one upstream attempt of a streamed call has produced, and where each of its outgoing events
// goes: to the agent at once, held back with the tool calls until they are judged, or held with the
// terminal event until the call's record commits. A retry starts a fresh attempt.
import { emptyResponse, type Response, type ToolCall } from '../canonical.ts';
import type { EndpointAdapter, HeldEvent, StreamTracker } from '../providers/types.ts';
import { SseSplitter } from './sse.ts';
import type { Numbering } from './stream-events.ts';

// An SSE event bigger than this is passed through unparsed rather than held in memory.
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;
// A stream held back for its tool calls to be judged keeps at most this much; past it, the calls
// cannot be checked, so they are refused rather than let through unseen.
export const MAX_HELD_TOOL_BYTES = 8 * 1024 * 1024;
// The terminal event waits for the record's commit, and so does anything an upstream sends after it:
// no model sends much after it, so past this much the stream is ended rather than held without bound.
const MAX_HELD_AFTER_END_BYTES = MAX_EVENT_BYTES;

/** Where an event went: out to the agent now, held, or refused because too much came after the end (with the bytes held before it). */
export type Placement = 'send' | 'held' | { overflow: number };

export class StreamAttempt {
  splitter = new SseSplitter(MAX_EVENT_BYTES);
  acc: Response = emptyResponse();
  readonly tracker: StreamTracker | undefined;
  /** The terminal event (and anything after it) waits for the record's commit. */
  readonly held: Buffer[] = [];
  /** Bytes held after the terminal event. */
  #heldBytes = 0;
  readonly toolTail: HeldEvent[] = [];
  #toolTailBytes = 0;
  /** A tool call came: everything from it on waits for the calls to be judged. */
  holding = false;
  sawTerminal = false;
  /** Warden ended the stream for a stalled upstream: the closing events are its own, not the model's. */
  cut = false;
  /** The upstream's last event came without its blank line (and goes on as it came). */
  openTail = false;
  readonly numbering: Numbering = { added: 0 };

  constructor(adapter: EndpointAdapter) {
    this.tracker = adapter.streamTracker?.();
  }

  /** Places one outgoing event; `gate`: the pipeline holds tool calls back; `toolCall`: this event carries one. */
  place(event: HeldEvent, gate: boolean, toolCall: boolean, terminal: boolean): Placement {
    if (gate && (this.holding || toolCall)) {
      this.holding = true;
      this.#toolTailBytes += event.raw.length;
      if (this.#toolTailBytes <= MAX_HELD_TOOL_BYTES) this.toolTail.push(event);
      return 'held';
    }
    if (this.held.length === 0 && !terminal) return 'send';
    // The terminal event itself is always kept (it may be large: the Responses API repeats the whole
    // output in it); what comes after it is what is bounded.
    if (this.held.length > 0) {
      if (this.#heldBytes + event.raw.length > MAX_HELD_AFTER_END_BYTES) return { overflow: this.#heldBytes };
      this.#heldBytes += event.raw.length;
    }
    this.held.push(event.raw);
    return 'held';
  }

  /** More tool-call bytes came than are held to check them. */
  get toolTailOverflowed(): boolean {
    return this.#toolTailBytes > MAX_HELD_TOOL_BYTES;
  }

  /** The held tool calls by their canonical index, which the gate's verdict and the adapter's rewrite speak of. */
  heldToolCalls(): Map<number, ToolCall> | undefined {
    return this.holding ? new Map(this.acc.toolCalls.flatMap((tc, i): [number, ToolCall][] => (tc ? [[i, tc]] : []))) : undefined;
  }

  /** Lets the held tool calls go to the agent, the blocked ones rewritten as refusals. */
  releaseToolCalls(adapter: EndpointAdapter, calls: Map<number, ToolCall>, blocked: ReadonlyMap<number, string>): void {
    if (blocked.size === 0) {
      this.held.push(...this.toolTail.map((e) => e.raw));
      return;
    }
    this.held.push(...adapter.rewriteToolCalls!(this.toolTail, blocked));
    // The record keeps what the agent receives: the refusals, not the calls they replaced.
    this.acc.toolCalls = [...calls].filter(([i]) => !blocked.has(i)).map(([, tc]) => tc);
    this.acc.text = [this.acc.text, ...blocked.values()].filter(Boolean).join('\n\n');
  }

  /** Characters of output so far, which decides whether the record keeps it whole. */
  size(): number {
    return this.acc.text.length + this.acc.toolCalls.reduce((n, c) => n + (c?.arguments.length ?? 0), 0);
  }
}
