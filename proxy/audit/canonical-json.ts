// RFC 8785 JSON Canonicalization Scheme: object keys sorted by UTF-16 code units, no insignificant
// whitespace, numbers and strings as ECMAScript's JSON.stringify writes them (RFC 8785 §3.2.2 adopts
// exactly that serialization). Hashes and signatures are over these bytes, so any verifier in any
// language that implements JCS gets the same digest.
//
// Every record is canonicalized, so there are two ways. A value whose objects already list their
// keys in order (Warden builds its records that way) is written by JSON.stringify, once one walk
// that reads no string has checked it (native: ~2.5 µs for a 1.8 KB record against ~6.5 µs). Any
// other value goes through one recursive function that sorts and appends to a string (about three
// times faster than building and joining an array per container).

/** The canonical JSON text of a value; undefined members are omitted, as JSON.stringify does. */
export function canonicalize(value: unknown): string {
  return (value !== undefined && native(value)) || sorted(value);
}

/**
 * JSON.stringify's text of a value already in canonical order, else undefined. The check's and
 * JSON.stringify's recursion give up sooner than `sorted`'s on very deep values: those go there.
 */
function native(value: unknown): string | undefined {
  try {
    return inCanonicalOrder(value) ? JSON.stringify(value) : undefined;
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    return undefined;
  }
}

/**
 * Whether JSON.stringify writes the value canonically: plain objects whose keys are listed in UTF-16
 * order (as the engine lists them, integer-like keys first: the order JSON.stringify writes), finite
 * numbers, nothing JSON.stringify would drop or convert (functions, toJSON, class instances). An
 * object's key order is checked before its values are walked.
 */
function inCanonicalOrder(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
        for (const v of value) if (!inCanonicalOrder(v)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const keys = Object.keys(value);
      for (let i = 1; i < keys.length; i++) if (!(keys[i - 1] < keys[i])) return false;
      for (const k of keys) if (!inCanonicalOrder((value as Record<string, unknown>)[k])) return false;
      return true;
    }
    default:
      return false;
  }
}

/** The canonical text of any value, each object's keys sorted. */
function sorted(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      // toJSON first (Dates), like JSON.stringify, arrays included.
      const json = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof json === 'function') return sorted(json.call(value));
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += value[i] === undefined ? 'null' : sorted(value[i]);
        }
        return `${out}]`;
      }
      // Array.prototype.sort without a comparator orders strings by UTF-16 code units, as JCS asks.
      const keys = Object.keys(value).sort();
      let out = '{';
      for (const key of keys) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        if (out.length > 1) out += ',';
        out += `${JSON.stringify(key)}:${sorted(v)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}

/**
 * The canonical text of an object whose `holes` members are filled in later, as the text around
 * them: with the canonical texts h0, h1, … of the holes' values, the object's canonical text is
 * parts[0] + h0 + parts[1] + h1 + … . `holes` must be in sorted order. A member of `value` named
 * like a hole is left out (the hole's value replaces it).
 */
export function canonicalAround(value: Record<string, unknown>, holes: readonly string[]): string[] {
  const keys = Object.keys(value).filter((k) => value[k] !== undefined && !holes.includes(k)).sort();
  const parts: string[] = [];
  let out = '{';
  let empty = true;
  let next = 0;
  for (let h = 0; h <= holes.length; h++) {
    // The members before this hole, copied in order so that the run is one native JSON.stringify;
    // when one of them is out of order (a stage's decision), each member is written on its own.
    // A null prototype, so that a member named __proto__ is a member.
    const run: Record<string, unknown> = Object.create(null);
    const first = next;
    for (; next < keys.length && (h === holes.length || keys[next] < holes[h]); next++) run[keys[next]] = value[keys[next]];
    if (next > first) {
      const text = native(run)?.slice(1, -1) ?? keys.slice(first, next).map((k) => `${JSON.stringify(k)}:${canonicalize(value[k])}`).join(',');
      out += `${empty ? '' : ','}${text}`;
      empty = false;
    }
    if (h === holes.length) break;
    parts.push(`${out}${empty ? '' : ','}${JSON.stringify(holes[h])}:`);
    out = '';
    empty = false;
  }
  parts.push(`${out}}`);
  return parts;
}
