// An incremental server-sent-events splitter that keeps each event's exact bytes, so an event no stage
// changed is forwarded byte for byte. It holds back only the incomplete event at the end of the input,
// and never more than `maxEventBytes` of it (past that, bytes flow through unparsed).

export interface SseEvent {
  /** The event's bytes, its terminating blank line included. */
  raw: Buffer;
  event?: string;
  /** The `data:` lines joined with \n; undefined when the event had none (comments, keep-alives). */
  data?: string;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Index just past the first blank line (a line terminator — CRLF, LF or CR — right after another) at or
 * after `from`, or -1 when none is complete yet. A CR at the very end may be half of a CRLF, so it waits.
 */
function eventEnd(buf: Buffer, from: number): number {
  const len = buf.length;
  for (let i = from; i < len; i++) {
    const b = buf[i];
    if (b !== LF && b !== CR) continue;
    if (b === CR && i + 1 >= len) return -1;
    const next = b === CR && buf[i + 1] === LF ? i + 2 : i + 1;
    if (next >= len) return -1;
    const c = buf[next];
    if (c === LF) return next + 1;
    if (c === CR) {
      if (next + 1 >= len) return -1;
      return buf[next + 1] === LF ? next + 2 : next + 1;
    }
    i = next - 1;
  }
  return -1;
}

/** The `event:` and `data:` fields of one event's text. */
export function parseFields(text: string): { event?: string; data?: string } {
  let event: string | undefined;
  let data: string | undefined;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '' || line.charCodeAt(0) === 58 /* ':' comment */) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') data = data === undefined ? value : `${data}\n${value}`;
    else if (field === 'event') event = value;
  }
  return { event, data };
}

export class SseSplitter {
  /**
   * The incomplete event at the end of the input, in the pieces it came in: joined once, when it
   * completes. Joining on every chunk instead copies a big event over and over (quadratic in its size).
   */
  private parts: Buffer[] = [];
  private held = 0;
  private readonly maxEventBytes: number;
  /** True while an oversized event's remaining bytes are being passed through unparsed. */
  private overflowing = false;

  constructor(maxEventBytes: number) {
    this.maxEventBytes = maxEventBytes;
  }

  /** Part of an oversized event has been passed through, and its end has not come yet. */
  get passingThrough(): boolean {
    return this.overflowing;
  }

  /** Feeds a chunk; returns complete events, and raw bytes to pass through as they are (oversized events). */
  push(chunk: Buffer): (SseEvent | Buffer)[] {
    const out: (SseEvent | Buffer)[] = [];
    // A blank line may straddle the chunk boundary, so the last few held bytes are scanned again.
    const back = Math.min(3, this.held);
    const buf = back > 0 ? Buffer.concat([this.lastHeld(back), chunk]) : chunk;
    let start = back;
    for (let from = 0; ;) {
      const end = eventEnd(buf, from);
      if (end === -1) break;
      const raw = this.held > 0 ? Buffer.concat([...this.parts, buf.subarray(back, end)]) : buf.subarray(start, end);
      this.parts = [];
      this.held = 0;
      if (this.overflowing) {
        out.push(raw);
        this.overflowing = false;
      } else {
        out.push({ raw, ...parseFields(raw.toString('utf8')) });
      }
      start = from = end;
    }
    // Copied, so the held-back bytes do not pin the whole upstream chunk in memory.
    if (start < buf.length) this.hold(Buffer.from(buf.subarray(start)));
    if (this.held > (this.overflowing ? 3 : this.maxEventBytes)) {
      // Past the cap the event flows through unparsed as it arrives; only the bytes that may begin
      // its closing blank line stay.
      const all = Buffer.concat(this.parts);
      const keep = Math.min(3, all.length);
      if (all.length > keep) out.push(all.subarray(0, all.length - keep));
      this.parts = keep > 0 ? [Buffer.from(all.subarray(all.length - keep))] : [];
      this.held = keep;
      this.overflowing = true;
    }
    return out;
  }

  /** What is left when the upstream ends: an unterminated last event, passed through as it is. */
  end(): Buffer | undefined {
    const rest = this.held > 0 ? Buffer.concat(this.parts) : undefined;
    this.parts = [];
    this.held = 0;
    this.overflowing = false;
    return rest;
  }

  /**
   * `end` as a last piece: an unterminated event parsed like any other (its bytes kept as they came,
   * without the blank line it lacks), or the raw end of an oversized one.
   */
  endPiece(): SseEvent | Buffer | undefined {
    const overflowing = this.overflowing;
    const rest = this.end();
    if (!rest || overflowing) return rest;
    return { raw: rest, ...parseFields(rest.toString('utf8')) };
  }

  private hold(bytes: Buffer): void {
    this.parts.push(bytes);
    this.held += bytes.length;
  }

  /** The last `n` held bytes (n ≤ 3), whichever parts they sit in. */
  private lastHeld(n: number): Buffer {
    const last = this.parts[this.parts.length - 1];
    if (last.length >= n) return last.subarray(last.length - n);
    return Buffer.concat(this.parts).subarray(this.held - n);
  }
}
