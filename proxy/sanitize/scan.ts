// The one definition of what matches, shared by whole texts and streams: from a position, the
// earliest validated match of any detector (ties: the longest, then the detector listed first), and
// for a stream, the earliest start whose verdict still waits on text not seen yet.
import type { Detector } from './detector.ts';

export interface Match {
  detector: Detector;
  start: number;
  end: number;
}

/** The earliest validated match of one detector starting at or after `from` (the rest of the text). */
function firstOf(d: Detector, text: string, from: number): Match | undefined {
  const re = d.pattern;
  for (let at = from; at < text.length;) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return undefined;
    const length = m[0].length > 0 ? d.accept(m[0]) : 0;
    if (length > 0) return { detector: d, start: m.index, end: m.index + length };
    at = m.index + 1;
  }
  return undefined;
}

/**
 * Scans one text left to right. Each detector's next match is remembered until the scan passes its
 * start, so a text is searched about once per detector however many matches it holds (searching
 * afresh from every match would make a long text with many matches quadratic).
 */
export class Scanner {
  readonly #text: string;
  readonly #detectors: readonly Detector[];
  /** Per detector: the first validated match at or after `from` (none: undefined). */
  readonly #next: ({ from: number; match: Match | undefined } | undefined)[];

  constructor(text: string, detectors: readonly Detector[]) {
    this.#text = text;
    this.#detectors = detectors;
    this.#next = detectors.map(() => undefined);
  }

  /** The match a left-to-right scan takes next: earliest start in [from, limit), then longest, then first listed. */
  next(from: number, limit: number): Match | undefined {
    let best: Match | undefined;
    this.#detectors.forEach((d, i) => {
      let cached = this.#next[i];
      if (!cached || from < cached.from || (cached.match && cached.match.start < from)) {
        cached = this.#next[i] = { from, match: firstOf(d, this.#text, from) };
      }
      const m = cached.match;
      if (!m || m.start >= limit) return;
      if (!best || m.start < best.start || (m.start === best.start && m.end > best.end)) best = m;
    });
    return best;
  }
}

/** The next match of a text from `from` (a one-off scan; see Scanner for many). */
export function nextMatch(text: string, from: number, limit: number, detectors: readonly Detector[]): Match | undefined {
  return new Scanner(text, detectors).next(from, limit);
}

/**
 * The earliest start at or after `from` where some detector could still match once more text comes;
 * `text.length` when every start is decided. Each detector looks back only as far as it can reach.
 */
export function frontier(text: string, from: number, detectors: readonly Detector[]): number {
  const end = text.length;
  let first = end;
  for (const d of detectors) {
    const re = d.partial;
    re.lastIndex = Math.max(from, end - d.reach);
    const m = re.exec(text);
    if (m && m.index < first) first = m.index;
  }
  return first;
}
