import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFields, SseSplitter, type SseEvent } from '../../proxy/http/sse.ts';

const STREAM = [
  'event: message_start\ndata: {"type":"message_start"}\n\n',
  ': keep-alive comment\n\n',
  'data: {"a":1}\r\n\r\n',
  'event: multi\ndata: line one\ndata: line two\n\n',
  'data: [DONE]\n\n',
].join('');

function run(chunks: Buffer[], max = 1 << 20): { bytes: Buffer; events: SseEvent[] } {
  const s = new SseSplitter(max);
  const parts: Buffer[] = [];
  const events: SseEvent[] = [];
  for (const c of chunks) {
    for (const p of s.push(c)) {
      if (Buffer.isBuffer(p)) parts.push(p);
      else {
        parts.push(p.raw);
        events.push(p);
      }
    }
  }
  const tail = s.end();
  if (tail) parts.push(tail);
  return { bytes: Buffer.concat(parts), events };
}

test('every split of a stream into three chunks yields the same events and the same bytes', () => {
  const whole = Buffer.from(STREAM);
  const reference = run([whole]);
  assert.equal(reference.events.length, 5);
  assert.deepEqual(reference.events.map((e) => e.event), ['message_start', undefined, undefined, 'multi', undefined]);
  assert.equal(reference.events[3].data, 'line one\nline two');
  assert.equal(reference.events[1].data, undefined);
  for (let i = 0; i <= whole.length; i++) {
    for (let j = i; j <= whole.length; j += 3) {
      const got = run([whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)]);
      assert.deepEqual(got.bytes, whole, `split at ${i},${j}`);
      assert.deepEqual(got.events.map((e) => [e.event, e.data, e.raw.toString()]), reference.events.map((e) => [e.event, e.data, e.raw.toString()]), `split at ${i},${j}`);
    }
  }
});

test('bare CR line endings delimit events, and a trailing CR waits for a possible LF', () => {
  const s = new SseSplitter(1024);
  assert.deepEqual(s.push(Buffer.from('data: x\r\r')), []);
  const out = s.push(Buffer.from('data: y\r\r\n'));
  assert.equal(out.length, 2);
  assert.equal((out[0] as SseEvent).data, 'x');
  assert.equal((out[1] as SseEvent).data, 'y');
});

test('an unterminated last event is returned raw at the end', () => {
  const got = run([Buffer.from('data: 1\n\ndata: 2')]);
  assert.equal(got.events.length, 1);
  assert.equal(got.bytes.toString(), 'data: 1\n\ndata: 2');
});

test('an event over the cap flows through unparsed instead of growing memory', () => {
  const big = `data: ${'x'.repeat(100)}`;
  const s = new SseSplitter(32);
  const first = s.push(Buffer.from(big));
  assert.equal(first.length, 1);
  assert.ok(Buffer.isBuffer(first[0]));
  const rest = s.push(Buffer.from('yy\n\ndata: ok\n\n'));
  assert.ok(Buffer.isBuffer(rest[0]), 'the rest of the oversized event is passed as raw bytes');
  // The oversized event's last 3 bytes wait with it: they may begin the blank line that ends it.
  assert.equal(rest[0].toString(), 'xxxyy\n\n');
  assert.equal((rest[1] as SseEvent).data, 'ok');
});

test('parseFields follows the SSE field rules', () => {
  assert.deepEqual(parseFields('event:x\ndata:no-space\ndata:  two spaces\nid: 7\nretry: 10\n'), { event: 'x', data: 'no-space\n two spaces' });
  assert.deepEqual(parseFields('data\n'), { event: undefined, data: '' });
});

test('endPiece: an unterminated last event is parsed like any other, its bytes kept as they came', () => {
  const s = new SseSplitter(1024);
  assert.deepEqual(s.push(Buffer.from('data: {"a":1}\n\nevent: done\ndata: [DONE]')).length, 1);
  const tail = s.endPiece();
  assert.ok(tail && !Buffer.isBuffer(tail));
  assert.equal(tail.event, 'done');
  assert.equal(tail.data, '[DONE]');
  assert.equal(tail.raw.toString(), 'event: done\ndata: [DONE]');
  assert.equal(s.endPiece(), undefined, 'nothing is left after it');

  // The end of an oversized event is passed through raw, as the rest of it was.
  const big = new SseSplitter(8);
  const passed = big.push(Buffer.from('data: 0123456789abcdef'));
  assert.ok(passed.every((p) => Buffer.isBuffer(p)));
  const end = big.endPiece();
  assert.ok(Buffer.isBuffer(end));
  assert.equal(Buffer.concat([...(passed as Buffer[]), end]).toString(), 'data: 0123456789abcdef');
});
