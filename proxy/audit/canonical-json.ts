// RFC 8785 JSON Canonicalization Scheme: object keys sorted by UTF-16 code units, no insignificant
// whitespace, numbers and strings as ECMAScript's JSON.stringify writes them (RFC 8785 §3.2.2 adopts
// exactly that serialization). Hashes and signatures are over these bytes, so any verifier in any
// language that implements JCS gets the same digest.

/** The canonical JSON text of a value; undefined members are omitted, as JSON.stringify does. */
export function canonicalize(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalize(v))).join(',')}]`;
  if (typeof value === 'object') {
    // toJSON first (Dates), like JSON.stringify.
    const json = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof json === 'function') return canonicalize(json.call(value));
    const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}
