// A streamed response's channels (`text:0`, `tool-call:1`), each sanitized by a StreamSanitizer of its
// own, and for each channel's life what it took in and what it let out. The Responses API repeats a
// channel's whole content in several closing events (output_text.done, content_part.done,
// output_item.done, response.completed), and the record wants the response as the agent got it: both
// reuse what the channel let out, which is what sanitizing the whole content gives, instead of
// sanitizing it again each time.
import { MAX_ACCUMULATED_CHARS } from '../canonical.ts';
import type { Engine, Finding } from './engine.ts';
import { sanitizeText } from './sanitizer.ts';
import { StreamSanitizer } from './stream.ts';

/** One channel's life, from its first content to its close. */
interface Span {
  readonly key: string;
  /** What came in. */
  raw: string;
  /** What went out to the agent. */
  clean: string;
  /** Both copies are complete: they stop growing, and are not used, past the accumulated response's cap. */
  whole: boolean;
  closed: boolean;
}

export interface Released {
  text: string;
  findings: Finding[];
}

/** Which channels a record speaks of: all text channels (one text in the response), or one tool call's. */
export type ChannelKind = 'text' | `tool-call:${number}`;

export class StreamChannels {
  readonly engine: Engine;
  readonly #open = new Map<string, { sanitizer: StreamSanitizer; span: Span }>();
  /** Every span, in the order the channels opened. */
  readonly #spans: Span[] = [];
  /** The latest span per key, open or closed: where text sent on it is noted. */
  readonly #last = new Map<string, Span>();
  /** Repeated contents that matched no span's input, sanitized once. */
  readonly #repeats = new Map<string, string>();

  constructor(engine: Engine) {
    this.engine = engine;
  }

  /** The open channels' keys. */
  get openKeys(): string[] {
    return [...this.#open.keys()];
  }

  /** Adds a piece to a channel (opening it): the text that can go out now, and the findings. Call sent() with what does go out. */
  push(key: string, piece: string): Released {
    let ch = this.#open.get(key);
    if (!ch) {
      const span: Span = { key, raw: '', clean: '', whole: true, closed: false };
      this.#spans.push(span);
      this.#last.set(key, span);
      this.#open.set(key, (ch = { sanitizer: new StreamSanitizer(this.engine, 'auto'), span }));
    }
    const { span, sanitizer } = ch;
    if (span.whole && span.raw.length >= MAX_ACCUMULATED_CHARS) span.whole = false;
    if (span.whole) span.raw += piece;
    const text = sanitizer.push(piece);
    return { text, findings: sanitizer.take() };
  }

  /** Closes a channel: the text it still held, sanitized (empty for a channel not open). Call sent() with what does go out. */
  close(key: string): Released {
    const ch = this.#open.get(key);
    if (!ch) return { text: '', findings: [] };
    this.#open.delete(key);
    ch.span.closed = true;
    const text = ch.sanitizer.end();
    return { text, findings: ch.sanitizer.take() };
  }

  /** Notes text that went out to the agent on a channel. */
  sent(key: string, text: string): void {
    const span = this.#last.get(key);
    if (span?.whole && text !== '') span.clean += text;
  }

  /**
   * A closing event's copy of a channel's whole content, sanitized: what the channel let out when the
   * copy is what it took in (the usual case), else the copy sanitized, once per distinct copy.
   */
  repeat(key: string, whole: string): string {
    for (let i = this.#spans.length - 1; i >= 0; i--) {
      const span = this.#spans[i];
      if (span.key === key && span.closed && span.whole && span.raw === whole) return span.clean;
    }
    let clean = this.#repeats.get(whole);
    if (clean === undefined) this.#repeats.set(whole, (clean = sanitizeText(this.engine, whole, 'auto').text));
    return clean;
  }

  /**
   * The content of `kind` as the agent got it, given what the upstream sent (`accumulated`). Text a
   * channel still held when the stream ended never left. Text after what the channels took in (a
   * refused tool call's text, added by the relay) is sanitized on its own. With `check` false (nothing
   * keeps the result but the text itself), what the channels let out is taken as it is.
   */
  recorded(kind: ChannelKind, accumulated: string, check = true): string {
    const spans = this.#spans.filter(kind === 'text' ? (s) => s.key.startsWith('text:') : (s) => s.key === kind);
    const clean = () => spans.map((s) => s.clean).join('');
    if (!check) return clean();
    if (spans.every((s) => s.whole)) {
      const raw = spans.map((s) => s.raw).join('');
      if (accumulated.startsWith(raw)) {
        const rest = accumulated.slice(raw.length);
        // Prose of Warden's own, whatever the channels' text looked like.
        return rest === '' ? clean() : clean() + sanitizeText(this.engine, rest, 'text').text;
      }
    }
    // The copies cannot say (too long, or the accumulated text is not what the channels took in).
    let held = 0;
    for (const [key, ch] of this.#open) if (kind === 'text' ? key.startsWith('text:') : key === kind) held += ch.sanitizer.held;
    return sanitizeText(this.engine, accumulated.slice(0, Math.max(0, accumulated.length - held)), 'auto').text;
  }
}
