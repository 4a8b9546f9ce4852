// canonicalize has a native path (JSON.stringify, for values already in canonical order) and a
// sorting path; canonicalAround writes a record around the members only the writer knows. Both are
// checked against an independent RFC 8785 reference on generated values that mix the cases where
// the paths differ: integer-like keys, keys in and out of order, UTF-16 order across surrogates,
// undefined members, toJSON, class instances, non-finite numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalAround, canonicalize } from '../../../proxy/audit/canonical-json.ts';

/** RFC 8785 by its definition: own enumerable keys sorted by UTF-16 code units, ES serialization. */
function reference(v: unknown): string {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') return reference((v as { toJSON(): unknown }).toJSON());
  if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError('non-finite');
  if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') throw new TypeError(typeof v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : reference(x))).join(',')}]`;
  const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
  keys.sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return a.charCodeAt(i) - b.charCodeAt(i);
    return a.length - b.length;
  });
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

let seed = 0xc0ffee;
const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
const KEYS = ['a', 'b', 'z', 'A', '_', 'prev_hash', 'seq', 'log_id', 'v', '0', '7', '10', '01', '-1', 'é', '\uffff', '\ud83d\ude00', '\ud800', 'ab', 'a\u0000'];
class Point { x = 1; y = 2; }
// A toJSON that returns keys out of order: only the sorting path may write it.
class Money { toJSON() { return { units: 5, currency: 'EUR' }; } }

function value(depth: number): unknown {
  switch (rand(depth > 3 ? 6 : 10)) {
    case 0: return rand(2) === 0;
    case 1: return [0, -0, 1.5, 1e21, 333333333.33333329, -7, 2 ** 53][rand(7)];
    case 2: return ['', 'x', '\u2028"\\', '\ud800', '日本 🙂', '\u0000'][rand(6)];
    case 3: return null;
    case 4: return undefined;
    case 5: return 'leaf';
    case 6: return Array.from({ length: rand(4) }, () => value(depth + 1));
    case 7: return new Date(rand(10) * 1e12);
    case 8: return rand(2) === 0 ? new Point() : new Money();
    default: {
      // Keys in insertion order either sorted (the native path) or shuffled.
      const keys = [...new Set(Array.from({ length: rand(6) }, () => KEYS[rand(KEYS.length)]))];
      if (rand(2) === 0) keys.sort();
      return Object.fromEntries(keys.map((k) => [k, value(depth + 1)]));
    }
  }
}

test('canonicalize equals the RFC 8785 reference on 5,000 generated values, by either path', () => {
  for (let i = 0; i < 5000; i++) {
    const v = value(0);
    if (v === undefined) assert.throws(() => canonicalize(v), TypeError);
    else assert.equal(canonicalize(v), reference(v), JSON.stringify(v));
  }
  for (const bad of [NaN, Infinity, { a: -Infinity }, [() => 1], { f: Symbol('s') }, 10n]) assert.throws(() => canonicalize(bad), TypeError);
  // Integer-like keys are listed first by the engine, whatever their insertion order.
  assert.equal(canonicalize({ 10: 1, 9: 2, a: 3 }), '{"10":1,"9":2,"a":3}');
  // What JSON.stringify would write differently goes the sorting way: an array's own toJSON, an
  // Array subclass's, and a top-level undefined (not JSON at all).
  const withToJson = Object.assign([1, 2], { toJSON: () => ({ b: 1, a: 2 }) });
  class Pair extends Array { toJSON() { return { y: 1, x: 2 }; } }
  assert.equal(canonicalize({ a: withToJson }), reference({ a: withToJson }));
  assert.equal(canonicalize({ a: Pair.from([1]) }), '{"a":{"x":2,"y":1}}');
  assert.throws(() => canonicalize(undefined), TypeError);
  // Deep values the native path's recursion gives up on still canonicalize.
  let deep: unknown = { a: 1 };
  for (let i = 0; i < 3_000; i++) deep = [deep];
  assert.equal(canonicalize(deep), `${'['.repeat(3_000)}{"a":1}${']'.repeat(3_000)}`);
});

test('canonicalAround: the parts around the holes, filled, are the canonical text of the whole', () => {
  const holes = ['prev_hash', 'seq'];
  for (let i = 0; i < 3000; i++) {
    const v = value(2);
    const record = (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Point) && !(v instanceof Money) ? v : { only: v }) as Record<string, unknown>;
    const prev = 'ab'.repeat(32);
    const seq = rand(1e6);
    const parts = canonicalAround(record, holes);
    assert.equal(parts.length, 3);
    assert.equal(`${parts[0]}"${prev}"${parts[1]}${seq}${parts[2]}`, reference({ ...record, prev_hash: prev, seq }), JSON.stringify(record));
  }
  assert.deepEqual(canonicalAround({}, holes), ['{"prev_hash":', ',"seq":', '}']);
  // A member named __proto__ is a member, not a prototype.
  const proto = JSON.parse('{"__proto__":"x","a":1,"z":{"__proto__":null}}') as Record<string, unknown>;
  const parts = canonicalAround(proto, holes);
  assert.equal(`${parts[0]}"h"${parts[1]}1${parts[2]}`, reference({ ...proto, prev_hash: 'h', seq: 1 }));
  assert.equal(canonicalize(proto), '{"__proto__":"x","a":1,"z":{"__proto__":null}}');
});
