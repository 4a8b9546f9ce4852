// Numbers a changed body must not round. Stages work on JSON.parse's values, where a number is a
// double: an integer past 2^53 (a seed, an id) or a decimal with more digits than a double holds
// would be written back rounded, or in exponent form, although no stage touched it. So when a changed
// body is written, each number that the original text spelt more exactly is written as spelt there,
// found at the same place (same keys, same array index, arrays of the same length) and only while its
// value is still the one parsed from that spelling. Bodies without such a number take the fast path.
// JSON.parse source text access (TC39 stage 3, in V8 since Node 21); TypeScript's lib has no types for it yet.
declare global {
  interface JSON {
    rawJSON(text: string): object;
    isRawJSON(value: unknown): boolean;
  }
}

// A number token JSON.parse may round: 16 or more digits (a decimal point among them), or an exponent
// of three digits (past a double's range). A cheap screen over the whole text; strings that match
// (long ids, hashes) only cost the exact parse that finds nothing to keep.
const MAYBE_INEXACT = /[\d.]{17,}|\d{16}|\d[eE][+-]?\d{3}/;
const SIGNIFICANT = /^-?0*\.?0*(\d*)\.?(\d*)(?:[eE][+-]?(\d+))?$/;

/** Whether the double parsed from `source` may not be the number `source` spells. */
function inexact(source: string): boolean {
  const m = SIGNIFICANT.exec(source);
  if (!m) return false;
  const digits = (m[1] + m[2]).replace(/0+$/, '').length;
  return digits > 15 || Number(m[3] ?? 0) >= 300;
}

/** `value` as JSON text, numbers that `source` spelt more exactly than a double holds written as spelt there. */
export function stringifyLike(value: unknown, source: string): string {
  if (!MAYBE_INEXACT.test(source)) return JSON.stringify(value);
  let spelt: unknown;
  try {
    spelt = JSON.parse(source, (_key, parsed, context?: { source?: string }) => (
      typeof parsed === 'number' && context?.source !== undefined && inexact(context.source) ? JSON.rawJSON(context.source) : parsed
    ));
  } catch {
    return JSON.stringify(value);
  }
  return JSON.stringify(restore(value, spelt));
}

/** `value` with the exact spellings from `spelt` put back where they still apply. */
function restore(value: unknown, spelt: unknown): unknown {
  if (typeof value === 'number') return JSON.isRawJSON(spelt) && Number((spelt as { rawJSON: string }).rawJSON) === value ? spelt : value;
  if (value === null || typeof value !== 'object' || spelt === null || typeof spelt !== 'object' || JSON.isRawJSON(spelt)) return value;
  if (Array.isArray(value)) {
    // An array a stage shortened or lengthened (messages trimmed) no longer lines up by index.
    if (!Array.isArray(spelt) || spelt.length !== value.length) return value;
    return value.map((v, i) => restore(v, spelt[i]));
  }
  if (Array.isArray(spelt)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = restore((value as Record<string, unknown>)[key], (spelt as Record<string, unknown>)[key]);
  return out;
}
