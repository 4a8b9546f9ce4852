// What a detector is: a candidate pattern, a validator that decides (checksums, ranges, structure),
// and what a stream needs to stay exact: how far a match can reach, and a pattern that recognises a
// match still in progress at the end of the text seen so far.
import { regexBound } from './regex-bound.ts';

export interface Detector {
  /** The class name used in policies, metrics and the record (email, credit_card, ticket). */
  readonly name: string;
  /** Finds candidates; global. Lookbehind may read at most CONTEXT characters before a match. */
  readonly pattern: RegExp;
  /**
   * Recognises, anchored at the end of the text so far (`$`), text from a start where the pattern's
   * verdict still depends on characters not seen yet: a superset of every prefix of a match (plus the
   * characters its lookaheads read). The leftmost match is the earliest undecided start.
   */
  readonly partial: RegExp;
  /** The furthest character the pattern reads from a match's start (computed by regexBound). */
  readonly reach: number;
  /** The accepted length of a candidate (a prefix of it, e.g. a card without a trailing group); 0 rejects it. */
  accept(candidate: string): number;
  /** Where the sensitive part of a match begins; what comes before it is kept (`Bearer `, `secret_key=`). */
  keep?(match: string): number;
  /** The mask for the sensitive part: `<EMAIL>`, `<CARD ****4242>`. */
  mask(secret: string): string;
  /** The label of a hash token: `<EMAIL:3f2a9c1b>`. */
  readonly label: string;
}

/** Characters of text before a match that patterns may read (lookbehind); streams keep this much. */
export const CONTEXT = 32;

/**
 * A match may start here: not right after one of `set` or a lone backslash (so a match never eats the
 * letter of an escape like \n, and JSON text stays valid), but right after an escape such as \n.
 */
export function start(set: string): string {
  return String.raw`(?:(?<=\\[nrtbf])|(?<![${set}\\]))`;
}

/** Nested optional groups that accept every prefix of `atoms` in order, then `tail` after the last. */
export function chain(atoms: readonly string[], tail = ''): string {
  let out = tail;
  for (let i = atoms.length - 1; i >= 0; i--) out = `${atoms[i]}${out ? `(?:${out})?` : ''}`;
  return out;
}

/** Regex atoms for a literal, one per character, case-insensitive when asked. */
export function literal(text: string, ci = false): string[] {
  return [...text].map((c) => {
    if (ci && /[a-z]/i.test(c)) return `[${c.toUpperCase()}${c.toLowerCase()}]`;
    return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
  });
}

/** Shannon entropy of a string, in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Words that mark a documentation placeholder rather than a credential. */
export function placeholder(s: string): boolean {
  return /your|xxxx|placeholder|example|redacted|dummy|changeme|insert/i.test(s) || /^(.)\1+$/.test(s);
}

export interface DetectorSpec extends Omit<Detector, 'pattern' | 'partial' | 'reach'> {
  pattern: string;
  /** `$` is appended. */
  partial: string;
  flags?: string;
}

/** Compiles a built-in detector; its reach is computed from the pattern, which must be bounded. */
export function define(spec: DetectorSpec): Detector {
  const bound = regexBound(spec.pattern);
  if (!Number.isFinite(bound.reach)) throw new Error(`detector ${spec.name}: pattern is unbounded`);
  const flags = spec.flags ?? '';
  return Object.freeze({
    ...spec,
    pattern: new RegExp(spec.pattern, `g${flags}`),
    partial: new RegExp(`(?:${spec.partial})$`, `g${flags}`),
    reach: bound.reach,
  });
}
