// Custom detectors from the policy: a pattern, bounded so a stream can hold back enough of it (bounded
// quantifiers, or maxLength, which caps * + and {n,} and rejects longer matches), without anchors or
// lookarounds (a stream sees text in pieces, so ^, $ and lookarounds would see the piece's edges).
import type { Detector } from './detector.ts';
import { chain } from './detector.ts';
import { regexBound } from './regex-bound.ts';

export interface CustomPattern {
  name: string;
  pattern: string;
  maxLength?: number;
  ignoreCase?: boolean;
  mask?: string;
}

// A custom class is held back whole while it may still match; past this the wait would be too long.
export const MAX_CUSTOM_REACH = 16_384;
// A pattern whose matches in progress cannot be told from other text (a backreference and no leading
// literal) holds back every character within its reach: the first byte of every answer waits that long.
export const MAX_BLIND_REACH = 256;

/** What is wrong with a custom pattern, in one sentence; undefined when it can be used. */
export function customProblem(c: CustomPattern): string | undefined {
  try {
    new RegExp(c.pattern, c.ignoreCase ? 'gi' : 'g');
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
  const bound = regexBound(c.pattern, c.maxLength);
  const bad = bound.unsupported[0];
  if (bad) return `uses ${bad.what} at offset ${bad.at}, which streamed text cannot honour (it sees text in pieces); match the text itself`;
  if (bound.unboundedAt !== undefined && c.maxLength === undefined) {
    const quantifier = /^(?:\*|\+|\{\d+,\})/.exec(c.pattern.slice(bound.unboundedAt))?.[0];
    return `can match text of unbounded length (the quantifier ${quantifier} at offset ${bound.unboundedAt}); use bounded quantifiers such as {1,12}, or set maxLength`;
  }
  if (bound.min === 0) return 'can match empty text';
  if (bound.reach > MAX_CUSTOM_REACH) return `can reach ${bound.reach} characters from where a match starts; the limit is ${MAX_CUSTOM_REACH} (lower maxLength or the quantifiers)`;
  if (bound.prefix === undefined && bound.lead.length === 0 && bound.reach > MAX_BLIND_REACH) {
    return `uses a backreference and starts with no literal character, so a stream could not tell a match in progress from other text and would hold back the last ${bound.reach} characters of every answer; the limit for such a pattern is ${MAX_BLIND_REACH} (start it with literal characters, drop the backreference, or lower maxLength)`;
  }
  return undefined;
}

/** Compiles a custom detector; throws on a pattern customProblem refuses (the loader reports those first). */
export function customDetector(c: CustomPattern): Detector {
  const problem = customProblem(c);
  if (problem) throw new Error(`custom pattern ${c.name} ${problem}`);
  const bound = regexBound(c.pattern, c.maxLength);
  const flags = c.ignoreCase ? 'gi' : 'g';
  const label = c.name.toUpperCase();
  // A match in progress is text that can still grow into one: a prefix of a match, so text that cannot
  // start one is let out at once. A backreference defeats that; then text that starts like the
  // pattern's leading characters is held, or (no lead: customProblem bounds the reach) any text.
  const tail = `[\\s\\S]{0,${bound.reach}}`;
  const partial = bound.prefix ?? (bound.lead.length > 0 ? chain(bound.lead, tail) : `[\\s\\S]{1,${bound.reach}}`);
  const max = c.maxLength ?? bound.max;
  return Object.freeze({
    name: c.name,
    label,
    pattern: new RegExp(bound.capped, flags),
    partial: new RegExp(`(?:${partial})$`, flags),
    reach: bound.reach,
    accept: (m: string) => (m.length <= max ? m.length : 0),
    mask: () => c.mask ?? `<${label}>`,
  });
}
