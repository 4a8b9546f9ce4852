// Fuzzing the request-body reader and JSON parser every route uses: any bytes give a value or a 400
// (never another error), nesting past the cap is a 400 before anything recursive sees it, and the
// reader returns exactly the bytes sent, or a 413 as soon as the cap is passed, or a 408 when the
// body stops coming.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_JSON_DEPTH, parseJson, parseJsonObject, readBody, setBodyDeadline } from '../../proxy/http/body.ts';
import { BodyTooLargeError, ClientTimeoutError, InvalidJsonError, InvalidRequestError } from '../../proxy/errors.ts';
import { wireJson } from '../helpers/hostile-arbitraries.ts';

/** Bytes that are mostly JSON-ish, with the odd invalid UTF-8 byte, NUL or stray bracket. */
const jsonishBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  wireJson.map((v) => Buffer.from(JSON.stringify(v))),
  fc.tuple(wireJson, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 3 })).map(([v, at, junk]) => {
    const text = Buffer.from(JSON.stringify(v));
    const i = at % (text.length + 1);
    return Buffer.concat([text.subarray(0, i), Buffer.from(junk), text.subarray(i)]);
  }),
);

test('parseJson gives a value or an InvalidJsonError for any bytes, never another error', () => {
  fc.assert(fc.property(jsonishBytes, (bytes) => {
    try {
      parseJson(bytes);
    } catch (err) {
      assert.ok(err instanceof InvalidJsonError, `${(err as Error).name}: ${(err as Error).message}`);
    }
    try {
      const obj = parseJsonObject(bytes);
      assert.ok(obj !== null && typeof obj === 'object' && !Array.isArray(obj));
    } catch (err) {
      assert.ok(err instanceof InvalidJsonError || err instanceof InvalidRequestError, String(err));
    }
  }), { numRuns: 3_000 });
});

test('parseJson reads every JSON value as JSON.parse does', () => {
  fc.assert(fc.property(fc.jsonValue(), (v) => {
    const text = JSON.stringify(v);
    assert.deepEqual(parseJson(Buffer.from(text)), JSON.parse(text));
  }), { numRuns: 1_000 });
});

test('JSON nested past the depth cap is a 400 (100k levels included), and at the cap it parses', () => {
  for (const [open, close] of [['[', ']'], ['{"a":', '}']]) {
    const deep = Buffer.from(open.repeat(100_000) + '1' + close.repeat(100_000));
    assert.throws(() => parseJson(deep), (e: unknown) => e instanceof InvalidJsonError && /deeper than 512 levels/.test(e.message));
    const atCap = Buffer.from(open.repeat(MAX_JSON_DEPTH) + '1' + close.repeat(MAX_JSON_DEPTH));
    assert.doesNotThrow(() => JSON.stringify(parseJson(atCap)));
  }
  // Brackets inside strings, escaped quotes included, do not count.
  const inString = Buffer.from(JSON.stringify({ text: `\\"${'['.repeat(10_000)}` }));
  assert.equal((parseJson(inString) as { text: string }).text.length, 10_002);
});

test('the depth cap counts brackets, never the brackets, quotes and backslashes inside strings', () => {
  const tricky = fc.array(fc.constantFrom('[', ']', '{', '}', '"', '\\', 'x', '\\"', '\\\\'), { maxLength: 8 }).map((a) => a.join(''));
  fc.assert(fc.property(fc.integer({ min: MAX_JSON_DEPTH - 3, max: MAX_JSON_DEPTH + 3 }), tricky, tricky, (depth, a, b) => {
    const text = `${'['.repeat(depth - 1)}[${JSON.stringify(a)},{"k":${JSON.stringify(b)}}]${']'.repeat(depth - 1)}`;
    const value = JSON.parse(text);
    if (depth + 1 > MAX_JSON_DEPTH) assert.throws(() => parseJson(Buffer.from(text)), InvalidJsonError);
    else assert.deepEqual(parseJson(Buffer.from(text)), value);
  }), { numRuns: 1_000 });
});

/** A stand-in for IncomingMessage: the reader uses only headers, events, pause and complete. */
function fakeRequest(chunks: Buffer[], declared?: number, trickleMs?: number): IncomingMessage {
  const stream = trickleMs === undefined
    ? Readable.from(chunks, { objectMode: false })
    : new Readable({
      read() {
        // One chunk at a time, and never the end: a client that trickles forever.
        const next = chunks.shift();
        setTimeout(() => this.destroyed || this.push(next ?? Buffer.from(' ')), trickleMs);
      },
    });
  return Object.assign(stream, { headers: declared === undefined ? {} : { 'content-length': String(declared) }, complete: false }) as unknown as IncomingMessage;
}

test('readBody returns exactly the bytes sent under the cap, and a 413 past it, declared or not', async () => {
  await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), fc.integer({ min: 0, max: 300 }), fc.boolean(), async (parts, cap, declare) => {
    const chunks = parts.map((p) => Buffer.from(p));
    const total = Buffer.concat(chunks);
    const result = await readBody(fakeRequest(chunks, declare ? total.length : undefined), cap).then((b) => b, (e: unknown) => e);
    if (total.length <= cap) assert.deepEqual(result, total);
    else assert.ok(result instanceof BodyTooLargeError, String(result));
  }), { numRuns: 500 });
});

test('a body that trickles past its deadline is a 408, whatever its size', async () => {
  const req = fakeRequest([Buffer.from('{')], 1_000, 20);
  setBodyDeadline(req, 150);
  const started = Date.now();
  const err = await readBody(req, 10_000).catch((e: unknown) => e);
  assert.ok(err instanceof ClientTimeoutError, String(err));
  assert.equal(err.status, 408);
  assert.ok(Date.now() - started < 1_000);
  (req as unknown as Readable).destroy();
});
