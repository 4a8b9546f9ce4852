// readCapped: the event-driven whole-body read every buffered response goes through (model calls,
// retried attempts, error bodies, MCP and HTTP tools), checked for the cases a `for await` handled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createServer } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { Client } from 'undici';
import { readCapped } from '../../proxy/http/read-capped.ts';

test('reads one chunk as is and several joined', async () => {
  const one = Buffer.from('{"ok":true}');
  const read = await readCapped(Readable.from([one]), 1024);
  assert.equal(read.over, false);
  assert.equal(read.bytes, one, 'a single chunk is returned without a copy');
  const many = await readCapped(Readable.from([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('e')]), 1024);
  assert.deepEqual(many, { bytes: Buffer.from('abcde'), over: false });
  assert.deepEqual(await readCapped(Readable.from([]), 10), { bytes: Buffer.alloc(0), over: false });
});

test('a body past the cap is destroyed, with the bytes before the chunk that passed it', async () => {
  const body = new PassThrough();
  const reading = readCapped(body, 5);
  body.write(Buffer.from('abc'));
  body.write(Buffer.from('de')); // exactly at the cap: still within it
  body.write(Buffer.from('f'));
  const read = await reading;
  assert.deepEqual(read, { bytes: Buffer.from('abcde'), over: true });
  assert.equal(body.destroyed, true);
});

test('a stream error rejects with that error, and the caller\'s chunks keep what came first', async () => {
  const body = new PassThrough();
  const chunks: Buffer[] = [];
  const reading = readCapped(body, 1024, chunks);
  body.write(Buffer.from('partial'));
  await new Promise((r) => setImmediate(r));
  const reset = Object.assign(new Error('socket reset'), { code: 'ECONNRESET' });
  body.destroy(reset);
  await assert.rejects(reading, (err) => err === reset);
  assert.equal(Buffer.concat(chunks).toString(), 'partial');
});

test('a stream destroyed without an error before its end is a premature close', async () => {
  const body = new PassThrough();
  const reading = readCapped(body, 1024);
  body.write(Buffer.from('half'));
  await new Promise((r) => setImmediate(r));
  body.destroy();
  await assert.rejects(reading, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
});

test('a stream already errored, destroyed or read to its end is answered, and its error never escapes', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    // Destroyed with an error in this very tick: its 'error' event is still to come.
    const failing = new PassThrough();
    const boom = new Error('boom');
    failing.destroy(boom);
    await assert.rejects(readCapped(failing, 10), (err) => err === boom);
    // Destroyed, its events long gone.
    const failed = new PassThrough();
    failed.on('error', () => {});
    const bang = new Error('bang');
    failed.destroy(bang);
    await new Promise((r) => setImmediate(r));
    await assert.rejects(readCapped(failed, 10), (err) => err === bang);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
  }

  const closed = new PassThrough();
  closed.destroy();
  await new Promise((r) => setImmediate(r));
  await assert.rejects(readCapped(closed, 10), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

  const done = Readable.from([Buffer.from('x')]);
  await readCapped(done, 10);
  assert.deepEqual(await readCapped(done, 10), { bytes: Buffer.alloc(0), over: false });
});

test('a paused stream is read all the same', async () => {
  const paused = new PassThrough();
  paused.pause();
  paused.end(Buffer.from('hello'));
  assert.deepEqual(await readCapped(paused, 100), { bytes: Buffer.from('hello'), over: false });
});

test('reads an undici response body, and a server that resets mid-body rejects it', async () => {
  const server = createServer((req, res) => {
    if (req.url === '/whole') {
      res.end('x'.repeat(200_000));
      return;
    }
    res.writeHead(200, { 'content-length': '100000' });
    res.write('y'.repeat(1000), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new Client(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  try {
    const whole = await client.request({ path: '/whole', method: 'GET' });
    const read = await readCapped(whole.body, 1 << 20);
    assert.equal(read.bytes.length, 200_000);
    assert.equal(read.over, false);

    const capped = await client.request({ path: '/whole', method: 'GET' });
    const cut = await readCapped(capped.body, 50_000);
    assert.equal(cut.over, true);
    assert.ok(cut.bytes.length <= 50_000);

    // The body's own error, as `for await` threw it: callers map undici's errors by class and code.
    const broken = await client.request({ path: '/broken', method: 'GET' });
    const chunks: Buffer[] = [];
    let seen: unknown;
    broken.body.once('error', (err) => (seen = err));
    await assert.rejects(readCapped(broken.body, 1 << 20, chunks), (err) => err === seen && (err as { code?: string }).code === 'UND_ERR_SOCKET');
    assert.equal(Buffer.concat(chunks).toString(), 'y'.repeat(1000));

    // The call's signal aborted mid-body: the read rejects with the signal's reason.
    const controller = new AbortController();
    const aborted = await client.request({ path: '/broken', method: 'GET', signal: controller.signal });
    const reading = readCapped(aborted.body, 1 << 20);
    const reason = new Error('the agent left');
    controller.abort(reason);
    await assert.rejects(reading, (err) => err === reason);

    // An undici body destroyed unread finishes its destroy a turn later, with undici's own AbortError.
    const unread = await client.request({ path: '/whole', method: 'GET' });
    unread.body.destroy();
    await assert.rejects(readCapped(unread.body, 1 << 20), { code: 'UND_ERR_ABORTED' });
  } finally {
    await client.close().catch(() => {});
    server.close();
  }
});
