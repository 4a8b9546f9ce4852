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
  private tail: Buffer = Buffer.alloc(0);
  private readonly maxEventBytes: number;
  /** True while an oversized event's remaining bytes are being passed through unparsed. */
  private overflowing = false;

  constructor(maxEventBytes: number) {
    this.maxEventBytes = maxEventBytes;
  }

  /** Feeds a chunk; returns complete events, and raw bytes to pass through as they are (oversized events). */
  push(chunk: Buffer): (SseEvent | Buffer)[] {
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const out: (SseEvent | Buffer)[] = [];
    let start = 0;
    // Resume the search a few bytes back so a blank line split across chunks is still found.
    let from = Math.max(0, this.tail.length - 3);
    for (;;) {
      const end = eventEnd(buf, from);
      if (end === -1) break;
      const raw = buf.subarray(start, end);
      if (this.overflowing) {
        out.push(raw);
        this.overflowing = false;
      } else {
        out.push({ raw, ...parseFields(raw.toString('utf8')) });
      }
      start = from = end;
    }
    const rest = buf.subarray(start);
    if (rest.length > this.maxEventBytes) {
      out.push(rest);
      this.overflowing = true;
      this.tail = Buffer.alloc(0);
    } else {
      // Copy so the held-back bytes do not pin the whole upstream chunk in memory.
      this.tail = rest.length ? Buffer.from(rest) : Buffer.alloc(0);
    }
    return out;
  }

  /** What is left when the upstream ends: an unterminated last event, passed through as it is. */
  end(): Buffer | undefined {
    const rest = this.tail;
    this.tail = Buffer.alloc(0);
    return rest.length ? rest : undefined;
  }
}
