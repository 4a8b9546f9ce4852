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

test('a stream already errored, destroyed or read to its end is answered at once', async () => {
  const failed = new PassThrough();
  failed.on('error', () => {});
  const boom = new Error('boom');
  failed.destroy(boom);
  await new Promise((r) => setImmediate(r));
  await assert.rejects(readCapped(failed, 10), (err) => err === boom);

  const closed = new PassThrough();
  closed.destroy();
  await assert.rejects(readCapped(closed, 10), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

  const done = Readable.from([Buffer.from('x')]);
  await readCapped(done, 10);
  assert.deepEqual(await readCapped(done, 10), { bytes: Buffer.alloc(0), over: false });
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

    const broken = await client.request({ path: '/broken', method: 'GET' });
    const chunks: Buffer[] = [];
    await assert.rejects(readCapped(broken.body, 1 << 20, chunks));
    assert.equal(Buffer.concat(chunks).toString(), 'y'.repeat(1000));
  } finally {
    await client.close().catch(() => {});
    server.close();
  }
});
