// Sanitizing a text that arrives in pieces (one per stream event), exactly as if it had come whole:
// text is let out only where every detector has decided, so no piece of a secret is ever emitted
// before its redaction. What is held back is bounded: from the earliest start a match could still
// grow from (a word that may become an email, a -----BEGIN that may become a key) to the end, never
// more than the longest reach of a detector. Costs are per piece: only the held text and the new
// piece are scanned, never the text already let out.
import { CONTEXT, type Detector } from './detector.ts';
import { render, type Engine, type Finding } from './engine.ts';
import { JsonState, type TextMode } from './json-state.ts';
import { frontier, Scanner } from './scan.ts';

export class StreamSanitizer {
  readonly #engine: Engine;
  readonly #json: JsonState;
  /** Already-released text kept for lookbehind (CONTEXT characters at most), then the held text. */
  #buf = '';
  /** Where the held text starts in #buf. */
  #pos = 0;
  /** Findings since the last take(). */
  #findings: Finding[] = [];
  /** The detector whose possible match holds the text back at #pos, if one does. */
  #holder: Detector | undefined;

  constructor(engine: Engine, mode: TextMode = 'text') {
    this.#engine = engine;
    this.#json = new JsonState(mode);
  }

  /** Adds a piece; returns the sanitized text that can go out now. */
  push(piece: string): string {
    if (piece === '') return '';
    this.#buf += piece;
    return this.#drain(false);
  }

  /** The end of the text: returns the rest, sanitized. */
  end(): string {
    const out = this.#drain(true);
    this.#buf = '';
    this.#pos = 0;
    return out;
  }

  /** Characters held back now. */
  get held(): number {
    return this.#buf.length - this.#pos;
  }

  /** The findings since the last call. */
  take(): Finding[] {
    const out = this.#findings;
    this.#findings = [];
    return out;
  }

  #drain(final: boolean): string {
    const { detectors } = this.#engine;
    const buf = this.#buf;
    // While a long match is still arriving (a key block, a JWT), its start stays undecided: one
    // pattern says so, and nothing held is scanned again.
    if (!final && this.#holder && startsAt(this.#holder.partial, buf, this.#pos)) return '';
    this.#holder = undefined;
    const scanner = new Scanner(buf, detectors);
    let pos = this.#pos;
    let out = '';
    for (;;) {
      const limit = final ? buf.length : frontier(buf, pos, detectors);
      const m = limit > pos ? scanner.next(pos, limit) : undefined;
      if (!m) {
        let cut = limit;
        // Never split a surrogate pair between two events.
        if (!final && cut > pos && isHighSurrogate(buf.charCodeAt(cut - 1))) cut--;
        out += this.#plain(buf.slice(pos, cut));
        pos = cut;
        if (!final && cut === limit && limit < buf.length) this.#holder = detectors.find((d) => startsAt(d.partial, buf, limit));
        break;
      }
      out += this.#plain(buf.slice(pos, m.start));
      const treatment = this.#engine.treatment(m.detector.name);
      const original = buf.slice(m.start, m.end);
      out += render(this.#engine, m.detector, original, treatment, this.#json.quote);
      this.#json.feed(original);
      this.#findings.push({ detector: m.detector.name, treatment });
      pos = m.end;
    }
    const keep = Math.max(0, pos - CONTEXT);
    this.#buf = buf.slice(keep);
    this.#pos = pos - keep;
    return out;
  }

  #plain(text: string): string {
    this.#json.feed(text);
    return text;
  }
}

/** Whether a partial pattern matches from exactly `at` to the end. */
function startsAt(partial: RegExp, text: string, at: number): boolean {
  partial.lastIndex = at;
  return partial.exec(text)?.index === at;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
