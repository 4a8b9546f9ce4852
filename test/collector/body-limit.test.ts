// The collector's body limit: the default takes the largest record a research-mode sidecar writes
// (~34 MB, sent alone), a smaller --max-body-bytes is kept to, and a body over it is a 413 in the
// collector's error shape (the sidecar then sends the batch again in halves), sent or gunzipped.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { request } from 'undici';
import { createCollectorServer, parseMaxBodyBytes } from '../../collector/server.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import { canonicalize } from '../../proxy/audit/canonical-json.ts';
import { TOKEN } from '../helpers/collector.ts';
import { tempDataDir, waitFor, WARDEN_BIN } from '../helpers/warden.ts';

const ZERO = '0'.repeat(64);

/** The first record of a log, with a string field `bytes` long (a research-mode record's bodies). */
function bigRecord(logId: string, bytes: number): string {
  return canonicalize({ event: 'model_call', log_id: logId, prev_hash: ZERO, request_body: 'a'.repeat(bytes), seq: 1, ts: '2025-06-15T00:00:00.000Z' });
}

async function startWith(maxBodyBytes?: number): Promise<{ url: string; store: CollectorStore; close(): Promise<void> }> {
  const store = openSqliteStore(join(tempDataDir(), 'collector.db'));
  const server = createCollectorServer({ store, tokens: new Map([[TOKEN, 'test-fleet']]), log: pino({ level: 'silent' }), maxBodyBytes });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/ingest`,
    store,
    async close() {
      server.close();
      server.closeAllConnections();
      await store.close();
    },
  };
}

async function post(url: string, body: Buffer | Readable, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers }, body });
  return { status: res.statusCode, body: (await res.body.json()) as any };
}

test('by default a batch of one ~34 MB record (over the 16 MiB once hard-coded) is taken, gzipped as the sidecar sends it', async () => {
  const collector = await startWith();
  try {
    const batch = Buffer.from(JSON.stringify({ log_id: 'research', first_seq: 1, last_seq: 1, records: [bigRecord('research', 34_000_000)], checkpoints: [] }));
    assert.ok(batch.length > 34_000_000);
    const res = await post(collector.url, gzipSync(batch, { level: 1 }), { 'content-encoding': 'gzip' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stored, 1);
  } finally {
    await collector.close();
  }
});

describe('a smaller limit', () => {
  let collector: Awaited<ReturnType<typeof startWith>>;
  before(async () => (collector = await startWith(4_096)));
  after(() => collector?.close());
  const batchOf = (logId: string, bytes: number) => Buffer.from(JSON.stringify({ log_id: logId, records: [bigRecord(logId, bytes)], checkpoints: [] }));
  const tooLarge = (res: { status: number; body: any }, what: string) => {
    assert.equal(res.status, 413, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'WARDEN_ERR_BODY_TOO_LARGE', what);
    assert.match(res.body.error.message, /over 4096 bytes/, what);
  };

  test('is kept to: a body over it is a 413 in the error shape, however it comes', async () => {
    tooLarge(await post(collector.url, batchOf('big', 8_000)), 'with a content-length');
    tooLarge(await post(collector.url, Readable.from([batchOf('big', 8_000)])), 'chunked');
    const gz = gzipSync(batchOf('big', 8_000));
    assert.ok(gz.length < 4_096);
    tooLarge(await post(collector.url, gz, { 'content-encoding': 'gzip' }), 'gunzipping past it');
    assert.equal((await collector.store.logs('test-fleet')).length, 0);
  });

  test('a body within it goes in', async () => {
    const res = await post(collector.url, batchOf('small', 3_000));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stored, 1);
  });
});

test('--max-body-bytes takes a positive whole number of bytes only', () => {
  assert.equal(parseMaxBodyBytes('1024'), 1024);
  assert.equal(parseMaxBodyBytes(' 67108864 '), 67_108_864);
  for (const bad of ['', '0', '-1', '1.5', '1e6', '64MiB', 'abc', '99999999999999999999']) {
    assert.throws(() => parseMaxBodyBytes(bad), /--max-body-bytes must be a positive whole number of bytes/, bad);
  }
});

/** Runs `warden collector` over a new SQLite store with `args` and `env`; resolves once it listens (its URL) or exits (its code and stderr). */
async function runCollector(args: string[], env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, [WARDEN_BIN, 'collector', '--store', `sqlite:${join(tempDataDir(), 'collector.db')}`, '--listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, WARDEN_COLLECTOR_TOKENS: `test-fleet=${TOKEN}`, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit');
  let out = '';
  let err = '';
  let code: number | null | undefined;
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  void exited.then(([c]) => (code = c as number | null));
  await waitFor(() => code !== undefined || /"msg":"collector listening"/.test(out), 15_000, 'the collector to listen or exit');
  const line = out.split('\n').find((l) => l.includes('collector listening'));
  return {
    url: line ? `${JSON.parse(line).url}/v1/ingest` : undefined,
    code,
    stderr: () => err,
    async stop() {
      if (code === undefined) proc.kill('SIGTERM');
      return (await exited)[0];
    },
  };
}

test('`warden collector --max-body-bytes N` (or WARDEN_COLLECTOR_MAX_BODY_BYTES) sets the limit; a bad value is a usage error', async () => {
  const body = Buffer.from(JSON.stringify({ log_id: 'cli', records: [bigRecord('cli', 8_000)], checkpoints: [] }));
  for (const [args, env] of [[['--max-body-bytes', '4096'], {}], [[], { WARDEN_COLLECTOR_MAX_BODY_BYTES: '4096' }]] as const) {
    const collector = await runCollector([...args], env);
    try {
      const res = await post(collector.url!, body);
      assert.equal(res.status, 413, JSON.stringify(res.body));
      assert.match(res.body.error.message, /over 4096 bytes/);
    } finally {
      assert.equal(await collector.stop(), 0);
    }
  }
  // The default takes the same body.
  const collector = await runCollector([]);
  try {
    assert.equal((await post(collector.url!, body)).status, 200);
  } finally {
    await collector.stop();
  }
  const bad = await runCollector(['--max-body-bytes', '64MiB']);
  assert.equal(await bad.stop(), 2);
  assert.match(bad.stderr(), /--max-body-bytes must be a positive whole number of bytes, got "64MiB"/);
});
