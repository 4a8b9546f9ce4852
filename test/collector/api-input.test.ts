// What the collector's API does with input it cannot use: a time it cannot read, a batch of the
// wrong shape, a log id too long. Each is the sender's fault and answered 400 in the collector's error
// shape, never 503 (which tells a sidecar to keep the batch and retry forever), on either store.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { request } from 'undici';
import { openPgStore } from '../../collector/pg-store.ts';
import { createCollectorServer } from '../../collector/server.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import type { AuditEntry } from '../../proxy/audit/audit-log.ts';
import { canonicalize } from '../../proxy/audit/canonical-json.ts';
import { TOKEN } from '../helpers/collector.ts';
import { batchOf, signedLog, type SignedLog } from '../helpers/dashboard-fixture.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { tempDataDir } from '../helpers/warden.ts';

/** A collector over one store kind, the edge the same for both: what a store never sees, both must answer alike. */
async function startOver(kind: 'sqlite' | 'postgres'): Promise<{ url: string; close(): Promise<void> }> {
  let postgres: TestPostgres | undefined;
  let store: CollectorStore;
  if (kind === 'sqlite') store = openSqliteStore(join(tempDataDir(), 'collector.db'));
  else store = await openPgStore((postgres = await startPostgres()).url);
  const server = createCollectorServer({ store, tokens: new Map([[TOKEN, 'test-fleet']]), log: pino({ level: 'silent' }) });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    async close() {
      server.close();
      server.closeAllConnections();
      await store.close();
      await postgres?.stop();
    },
  };
}

let collector: { url: string; close(): Promise<void> };

async function call(path: string, init: { method?: 'GET' | 'POST'; body?: string | Buffer; headers?: Record<string, string> } = {}) {
  const res = await request(`${collector.url}${path}`, { method: init.method ?? 'GET', body: init.body, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
  const text = await res.body.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.statusCode, headers: res.headers, body };
}

const ingest = (batch: unknown) => call('/v1/ingest', { method: 'POST', body: typeof batch === 'string' ? batch : JSON.stringify(batch), headers: { 'content-type': 'application/json' } });

function modelCall(ts: string, task: string): AuditEntry {
  return { event: 'model_call', ts, agent: { id: 'timekeeper', version: '1' }, task, status: 200, latency_ms: 1,
    model: { asked: 'gpt-4o', served: 'gpt-4o' }, usage: { input_tokens: 1, output_tokens: 1 }, cost_usd: 1 };
}

let log: SignedLog;

for (const kind of ['sqlite', 'postgres'] as const) describe(`on the ${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'} store`, () => {
  before(async () => {
    collector = await startOver(kind);
    // Three calls a half-second apart, at whole seconds and between them: the bounds' spelling must not matter.
    log = await signedLog([
      modelCall('2025-06-15T03:52:44.999Z', 'before'),
      modelCall('2025-06-15T03:52:45.000Z', 'at-from'),
      modelCall('2025-06-15T03:52:45.500Z', 'inside'),
      modelCall('2025-06-15T03:52:46.000Z', 'at-to'),
    ]);
    const res = await ingest(batchOf(log, 1, log.records.length));
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });
  after(() => collector?.close());

  describe('time filters', () => {
    const tasks = async (query: string) => {
      const res = await call(`/v1/records?event=model_call&${query}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.records.map((r: { task: string }) => r.task);
    };
    const costTasks = async (query: string) => {
      const res = await call(`/v1/cost?by=task&${query}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.rows.map((r: { key: string }) => r.key).sort();
    };

    test('a bound selects by the instant it names, however it is spelt: inclusive from, exclusive to', async () => {
      const spellings = [
        'from=2025-06-15T03:52:45Z&to=2025-06-15T03:52:46Z',
        'from=2025-06-15T03:52:45.000Z&to=2025-06-15T03:52:46.000Z',
        `from=${encodeURIComponent('2025-06-15T04:52:45+01:00')}&to=${encodeURIComponent('2025-06-15T03:22:46-00:30')}`,
        'from=2025-06-15T03:52:45.0000Z&to=2025-06-15T03:52:46.000000Z',
      ];
      for (const q of spellings) {
        assert.deepEqual(await tasks(q), ['at-from', 'inside'], q);
        assert.deepEqual(await costTasks(q), ['at-from', 'inside'], q);
      }
      // A "to" day counts whole, as on the dashboard.
      assert.deepEqual(await tasks('from=2025-06-15&to=2025-06-15'), ['before', 'at-from', 'inside', 'at-to']);
      assert.deepEqual(await tasks('to=2025-06-14'), []);
    });

    test('anything but an ISO 8601 date or date-time with an offset is a 400, and so is a from not before to', async () => {
      const bad = ['from=yesterday', 'to=1718423565', 'from=2025-02-30', 'from=2025-06-15T03:52:45', 'to=2025-06-15 03:52:45Z',
        'from=June%2015%2C%202025', 'to=2025-06-15T24:00:00Z', 'from=2025-06-16&to=2025-06-15', 'from=2025-06-15T03:52:46Z&to=2025-06-15T03:52:45Z',
        'from=2025-06-15T03:52:45Z&to=2025-06-15T03:52:45.000Z'];
      for (const q of bad) {
        for (const route of ['/v1/records', '/v1/cost']) {
          const res = await call(`${route}?${q}`);
          assert.equal(res.status, 400, `${route}?${q}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.error.code, 'WARDEN_ERR_INVALID_TIME');
          assert.match(res.body.error.message, /"(from|to)"/);
        }
      }
      const plus = await call('/v1/records?from=2025-06-15T04:52:45+01:00');
      assert.equal(plus.status, 400);
      assert.match(plus.body.error.message, /got "2025-06-15T04:52:45 01:00" \(send the offset's "\+" as %2B\)/);
    });
  });

  test('a paging cursor that is not LOG:SEQ is a 400', async () => {
    for (const after of ['x:abc', 'x:1.5', 'x:-1', 'x:1e400', ':5', 'noseq', 'x:99999999999999999999']) {
      const res = await call(`/v1/records?after=${encodeURIComponent(after)}`);
      assert.equal(res.status, 400, `${after}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'WARDEN_ERR_INVALID_CURSOR');
    }
    // The cursor `next` gives pages on, log ids with colons and all.
    const first = await call('/v1/records?limit=2');
    const next = await call(`/v1/records?limit=2&after=${encodeURIComponent(first.body.next)}`);
    assert.equal(next.status, 200);
    assert.equal(next.body.records[0].seq, 3);
  });

  test('a query a store cannot run (a NUL in a filter, an alert id past any id) is a 400, not a store failure', async () => {
    for (const q of ['/v1/records?agent=%00', '/v1/records?log=a%00b', '/v1/records?session=x%00', '/v1/records?after=a%00%3A1', '/v1/alerts?since=x']) {
      const res = await call(q);
      assert.equal(res.status, 400, `${q}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.code, /^WARDEN_ERR_INVALID_(QUERY|CURSOR)$/, q);
    }
    const nul = await call('/v1/logs/a%00/export');
    assert.equal(nul.status, 400);
    assert.equal(nul.body.error.code, 'WARDEN_ERR_INVALID_PATH');
    for (const since of ['99999999999999999999', '9007199254740993']) {
      const res = await call(`/v1/alerts?since=${since}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.alerts, []);
    }
  });

  describe('batches of the wrong shape', () => {
    const ZERO = '0'.repeat(64);
    const logIds = async () => (await call('/v1/logs')).body.logs.map((l: { logId: string }) => l.logId);
    /** A record as the sidecar writes it (canonical text, first of its log), with arrays nested `depth` deep under "deep". */
    const record = (logId: string, depth: number) => canonicalize({ deep: '@', event: 'note', log_id: logId, prev_hash: ZERO, seq: 1, ts: '2025-06-15T00:00:00.000Z' })
      .replace('"@"', `${'['.repeat(depth)}${']'.repeat(depth)}`);

    test('is a 400 naming what is wrong, and leaves nothing behind', async () => {
      const cp = () => ({ ...log.checkpoints[0] });
      const cases: [string, unknown, RegExp][] = [
        ['null', null, /JSON object/],
        ['an array', [], /JSON object/],
        ['no log_id', { records: [] }, /log_id/],
        ['a numeric log_id', { log_id: 7, records: [] }, /log_id/],
        ['no records', { log_id: 'shape-1' }, /records/],
        ['a record "null"', { log_id: 'shape-2', records: ['null'] }, /records\[0\] is not the text of a JSON object/],
        ['a record that is an array', { log_id: 'shape-3', records: ['[1]'] }, /records\[0\]/],
        ['a record that is a number', { log_id: 'shape-4', records: [7] }, /records\[0\]/],
        ['a record nested 50,000 deep', { log_id: 'shape-5', records: [record('shape-5', 50_000)] }, /records\[0\] nests .* deeper than 1000/],
        ['a record nested 1,001 deep behind strings with quotes', { log_id: 'shape-6', records: [`{"a\\"":"[{\\\\","b":${'['.repeat(1_000)}${']'.repeat(1_000)}}`] }, /deeper than 1000/],
        ['checkpoints that are not an array', { log_id: 'shape-7', records: [], checkpoints: {} }, /checkpoints/],
        ['a checkpoint null', { log_id: 'shape-8', records: [], checkpoints: [null] }, /checkpoints\[0\] is not an object/],
        ['a checkpoint {}', { log_id: 'shape-9', records: [], checkpoints: [{}] }, /checkpoints\[0\] has no log_id/],
        ['a checkpoint without a size', { log_id: log.logId, records: [], checkpoints: [{ ...cp(), size: undefined }] }, /checkpoints\[0\] has no valid size/],
        ['a checkpoint with a text size', { log_id: log.logId, records: [], checkpoints: [{ ...cp(), size: '5' }] }, /checkpoints\[0\] has no valid size/],
        ['a checkpoint with a numeric root', { log_id: log.logId, records: [], checkpoints: [{ ...cp(), root: 5 }] }, /checkpoints\[0\] has no root/],
      ];
      const before = await logIds();
      for (const [name, batch, message] of cases) {
        const res = await ingest(batch);
        assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body).slice(0, 300)}`);
        assert.equal(res.body.error.code, 'WARDEN_ERR_MALFORMED_BATCH', name);
        assert.match(res.body.error.message, message, name);
        assert.equal(res.headers['retry-after'], undefined, name);
      }
      assert.deepEqual(await logIds(), before);
      // The collector is none the worse: a good batch still goes in.
      assert.equal((await ingest(batchOf(log, 1, log.records.length))).status, 200);
    });

    test('a record nested deep but within bounds is evidence like any other', async () => {
      const res = await ingest({ log_id: 'deep-ok', records: [record('deep-ok', 999)] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.stored, 1);
    });

    test('a log_id longer than any sidecar makes is refused, even on an empty batch', async () => {
      const huge = 'x'.repeat(5 * 1024 * 1024);
      const res = await ingest({ log_id: huge, records: [], checkpoints: [] });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'WARDEN_ERR_MALFORMED_BATCH');
      assert.match(res.body.error.message, /log_id is 5242880 characters long; at most 512/);
      assert.equal((await ingest({ log_id: 'y'.repeat(513), records: [] })).status, 400);
      assert.ok(!(await logIds()).some((id: string) => id.length > 512));
      // The longest a sidecar makes: a task ARN with a 255-character cluster name, and its suffix.
      const arn = `arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task/${'c'.repeat(255)}/0123456789abcdef0123456789abcdef/89abcdef`;
      assert.equal((await ingest({ log_id: arn, records: [] })).status, 200);
      assert.ok((await logIds()).includes(arn));
    });

    test('a log id that is not valid percent-encoding in an export path is a 400', async () => {
      const res = await call('/v1/logs/%ZZ/export');
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'WARDEN_ERR_INVALID_PATH');
    });
  });
});
