// Numbers a changed body must not round. Stages work on JSON.parse's values, where a number is a
// double: an integer past 2^53 (a seed, an id) or a decimal with more digits than a double holds
// would be written back rounded, or in exponent form, although no stage touched it. So when a changed
// body is written, each number that the original text spelt more exactly is written as spelt there,
// found at the same place (same keys, same array index, arrays of the same length) and only while its
// value is still the one parsed from that spelling (a stage that reorders a list of equal length whose
// items hold such numbers rounding alike would see them stay in place: none does). Bodies without such
// a number take the fast path.
// JSON.parse source text access (TC39 stage 3, in V8 since Node 21); TypeScript's lib has no types for it yet.
declare global {
  interface JSON {
    rawJSON(text: string): object;
    isRawJSON(value: unknown): boolean;
  }
}

// Number tokens worth a closer look: integers of 16 digits or more (ids and seeds past 2^53, which
// int64 and bignum readers take exactly), decimals spelt in 20 characters or more (18 or so
// significant digits), and three-digit exponents (past a double's range). A shorter decimal is what a
// double holds to its 17 digits: any float reader gets the same double from its rewrite. Strings can match too (long ids, hashes): that
// costs only the exact parse that then finds nothing to keep.
const FORMS = String.raw`-?\d{16,}(?![\d.eE])|-?\d[\d.]{19,}|-?\d+(?:\.\d+)?[eE][+-]?\d{3,}`;
const CANDIDATE = new RegExp(`(?<![\\d.])(?:${FORMS})`, 'g');
const WHOLE = new RegExp(`^(?:${FORMS})$`);
const DECIMAL = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** A decimal spelling reduced to sign, significant digits and the power of ten at the first: "-0.0120e2" and "-1.2" both → "-12e1". */
function decimal(spelling: string): string | undefined {
  const m = DECIMAL.exec(spelling);
  if (!m) return undefined;
  const [, sign, int, frac = '', exp = '0'] = m;
  const all = int + frac;
  const digits = all.replace(/^0+/, '');
  if (digits === '') return '0';
  return `${sign}${digits.replace(/0+$/, '')}e${int.length - (all.length - digits.length) + Number(exp)}`;
}

/** Whether the double JSON.parse makes of `spelling` writes back as another number (rounded, out of range). */
function inexact(spelling: string): boolean {
  if (!WHOLE.test(spelling)) return false;
  const n = Number(spelling);
  if (!Number.isFinite(n)) return true;
  const shortest = String(n);
  // Shortest round-trip spellings (what JavaScript and Python write) are exact as they stand; an
  // integer JavaScript would write in exponent form (1e+21) is kept as written for strict integer readers.
  if (shortest === spelling) return false;
  return decimal(shortest) !== decimal(spelling) || (shortest.includes('e') && !/[eE]/.test(spelling));
}

/** Whether `source` holds a number token that would not be written back as the number it spells. */
function holdsInexact(source: string): boolean {
  for (const [token] of source.matchAll(CANDIDATE)) if (inexact(token) && decimal(token) !== undefined) return true;
  return false;
}

/** `value` as JSON text, numbers that `source` spelt more exactly than a double holds written as spelt there. */
export function stringifyLike(value: unknown, source: string): string {
  if (!holdsInexact(source)) return JSON.stringify(value);
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
  // fromEntries defines each key as data, "__proto__" included (an assignment would set the prototype).
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, restore(v, Object.hasOwn(spelt, key) ? (spelt as Record<string, unknown>)[key] : undefined)]));
}
