// Fuzzing the SSE splitter every streamed response goes through: whatever bytes an upstream sends and
// wherever the network cuts them, the splitter never throws, loses or reorders a byte, and finds the
// same events as it would in one piece; past its byte cap it passes bytes through instead of holding them.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseFields, SseSplitter, type SseEvent } from '../../proxy/http/sse.ts';
import { cutsOf, sseBytes } from '../helpers/hostile-arbitraries.ts';

function chunksOf(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  return out;
}

function run(maxEventBytes: number, chunks: Buffer[]): { pieces: (SseEvent | Buffer)[]; rest?: Buffer } {
  const s = new SseSplitter(maxEventBytes);
  const pieces = chunks.flatMap((c) => s.push(c));
  return { pieces, rest: s.end() };
}

function bytesOf(r: ReturnType<typeof run>): Buffer {
  return Buffer.concat([...r.pieces.map((p) => (Buffer.isBuffer(p) ? p : p.raw)), r.rest ?? Buffer.alloc(0)]);
}

const eventsOf = (r: ReturnType<typeof run>) => r.pieces.map((p) => (Buffer.isBuffer(p) ? { passthrough: p.toString('latin1') } : { raw: p.raw.toString('latin1'), event: p.event, data: p.data }));

const input = sseBytes.chain((bytes) => fc.tuple(fc.constant(bytes), cutsOf(bytes.length)));

test('split anywhere, the SSE splitter finds the same events as unsplit, byte for byte', () => {
  fc.assert(fc.property(input, ([bytes, cuts]) => {
    const whole = run(Number.MAX_SAFE_INTEGER, [bytes]);
    const split = run(Number.MAX_SAFE_INTEGER, chunksOf(bytes, cuts));
    assert.deepEqual(eventsOf(split), eventsOf(whole));
    assert.deepEqual(split.rest, whole.rest);
    assert.deepEqual(bytesOf(split), bytes);
    for (const p of split.pieces) {
      assert.ok(!Buffer.isBuffer(p), 'nothing passes through unparsed under an unlimited cap');
      assert.deepEqual({ event: p.event, data: p.data }, parseFields(p.raw.toString('utf8')));
    }
  }), { numRuns: 2_000 });
});

test('under any byte cap the splitter keeps every byte in order and holds back no more than the cap', () => {
  fc.assert(fc.property(input, fc.integer({ min: 0, max: 64 }), ([bytes, cuts], cap) => {
    const s = new SseSplitter(cap);
    const out: Buffer[] = [];
    let fed = 0;
    let passed = 0;
    for (const chunk of chunksOf(bytes, cuts)) {
      fed += chunk.length;
      for (const p of s.push(chunk)) {
        out.push(Buffer.isBuffer(p) ? p : p.raw);
        passed += out.at(-1)!.length;
      }
      // What is held back is the incomplete last event, never more than the cap (past it, only the
      // 3 bytes that may start the blank line ending it).
      assert.ok(fed - passed <= Math.max(cap, 3), `held ${fed - passed} bytes under a cap of ${cap}`);
    }
    const rest = s.end();
    assert.deepEqual(Buffer.concat([...out, rest ?? Buffer.alloc(0)]), bytes);
  }), { numRuns: 2_000 });
});

test('arbitrary binary (invalid UTF-8, NULs, lone CRs) never throws', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (arr, every) => {
    const bytes = Buffer.from(arr);
    const cuts = Array.from({ length: Math.floor(bytes.length / every) }, (_, i) => (i + 1) * every);
    assert.deepEqual(bytesOf(run(128, chunksOf(bytes, cuts))), bytes);
  }), { numRuns: 1_000 });
});

test('a single line far over the cap flows through in pieces as it arrives, in linear time', () => {
  const s = new SseSplitter(1024);
  let passed = 0;
  for (let i = 0; i < 100; i++) {
    for (const p of s.push(Buffer.alloc(4096, 0x61))) passed += Buffer.isBuffer(p) ? p.length : p.raw.length;
  }
  assert.ok(passed >= 100 * 4096 - 3, 'nothing of an endless line is held back but the 3 bytes a blank line may start with');
  const after = s.push(Buffer.from('\n\ndata: {"a":1}\n\n'));
  assert.ok(Buffer.isBuffer(after[0]), 'the oversized event ends as raw bytes');
  assert.deepEqual((after[1] as SseEvent).data, '{"a":1}', 'the next event is parsed again');

  // 256 MB in 64 KB chunks under the 4 MiB cap streaming uses: held bytes are joined once, not per
  // chunk (which made an endless line cost a 2 MB copy per 64 KB read).
  const big = new SseSplitter(4 * 1024 * 1024);
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const started = performance.now();
  let out = 0;
  for (let i = 0; i < 4096; i++) for (const p of big.push(chunk)) out += Buffer.isBuffer(p) ? p.length : p.raw.length;
  assert.ok(out >= 4096 * chunk.length - 4 * 1024 * 1024);
  assert.ok(performance.now() - started < 5_000, `took ${Math.round(performance.now() - started)} ms`);
});
