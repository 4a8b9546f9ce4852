// The dashboard's ingest-time rollups (collector/rollups.ts) over a real SQLite store fed through real
// ingest: they always equal the raw aggregates of the records held, whether batches arrive once,
// overlapping or resent; an old store's are backfilled on open exactly as ingest built them; and an
// agent page over any range (partial days, midnights, odd ts text) equals aggregating its raw records.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { agentDetail, fleetOverview, splitRange } from '../../collector/dashboard-data.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import type { AuditEntry } from '../../proxy/audit/audit-log.ts';
import {
  actualAgent, batchOf, expectedAgent, FLEET, fleetEntries, ingestLog, NOW, oddTimeCalls, RANGES, rawRollupsOf, rollupsOf, signedLog, toPreRollupSchema, type SignedLog,
} from '../helpers/dashboard-fixture.ts';
import { tempDataDir } from '../helpers/warden.ts';

const entries = [...fleetEntries(), ...oddTimeCalls()];
let log: SignedLog;
let clean: CollectorStore;
before(async () => {
  log = await signedLog(entries);
  clean = openSqliteStore(join(tempDataDir(), 'collector.db'));
  await ingestLog(clean, log, 70);
});
after(() => clean?.close());

test('splitRange: whole UTC days from the rollup, at most the two edge days raw, split at bare days', () => {
  assert.deepEqual(splitRange('2025-06-09T12:00:00.000Z', '2025-06-12T06:00:00.000Z'), {
    days: { from: '2025-06-10', to: '2025-06-12' },
    raw: [{ from: '2025-06-09T12:00:00.000Z', to: '2025-06-10' }, { from: '2025-06-12', to: '2025-06-12T06:00:00.000Z' }],
  });
  // A midnight "from" sorts after its bare day, so that day is read raw; a midnight "to" leaves only odd ts at that day raw.
  assert.deepEqual(splitRange('2025-06-09T00:00:00.000Z', '2025-06-12T00:00:00.000Z'), {
    days: { from: '2025-06-10', to: '2025-06-12' },
    raw: [{ from: '2025-06-09T00:00:00.000Z', to: '2025-06-10' }, { from: '2025-06-12', to: '2025-06-12T00:00:00.000Z' }],
  });
  assert.deepEqual(splitRange('2025-06-09T12:00:00.000Z', '2025-06-10T12:00:00.000Z'), { raw: [{ from: '2025-06-09T12:00:00.000Z', to: '2025-06-10T12:00:00.000Z' }] });
  assert.deepEqual(splitRange('2025-12-31T12:00:00.000Z', '2026-01-02T12:00:00.000Z').days, { from: '2026-01-01', to: '2026-01-02' });
  assert.deepEqual(splitRange('+275760-01-01T00:00:00.000Z', '+275760-02-01T00:00:00.000Z'), { raw: [{ from: '+275760-01-01T00:00:00.000Z', to: '+275760-02-01T00:00:00.000Z' }] });
});

test('rollups equal the raw aggregates of the records held, with overlapping and resent batches, and never double-count', async (t) => {
  const s = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    const n = log.records.length;
    // A shipper that resends from before what it was told, batches that overlap, a whole resend.
    const cuts: [number, number][] = [[1, 40], [1, 40], [20, 90], [60, 150], [150, 151], [100, 220], [221, n], [1, n], [n - 5, n]];
    let stored = 0;
    let duplicates = 0;
    for (const [first, last] of cuts) {
      const r = await s.ingest(batchOf(log, first, last), FLEET);
      assert.deepEqual(r.alerts, []);
      stored += r.stored;
      duplicates += r.duplicates;
    }
    assert.equal(stored, n);
    assert.ok(duplicates > n, `${duplicates} records resent`);
    const rollups = await rollupsOf(s);
    assert.deepEqual(rollups, await rawRollupsOf(s));
    assert.deepEqual(rollups, await rollupsOf(clean), 'the same as a log shipped once');
    assert.deepEqual(await fleetOverview(s, FLEET, NOW), await fleetOverview(clean, FLEET, NOW));
    const modelCalls = entries.filter((e) => e.event === 'model_call').length;
    assert.equal((rollups.daily as { calls: number }[]).reduce((x, r) => x + r.calls, 0), modelCalls);
    t.diagnostic(`${n} records stored once from ${cuts.length} overlapping batches (${duplicates} duplicates): ${rollups.daily.length} daily rollup rows, ${rollups.agents.length} agents`);
  } finally {
    await s.close();
  }
});

test('the per-agent rollup: first and last seen, the newest version by its latest record (the greater one at a tie)', async () => {
  const s = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    const at = (ts: string, version?: string): AuditEntry => ({ event: 'tool_call', ts, agent: version ? { id: 'v', version } : { id: 'v' } });
    // Out of ts order across batches; a tie at the latest ts; a later record without a version.
    const l = await signedLog([at('2025-06-10T00:00:00.000Z', '2.0'), at('2025-06-01T00:00:00.000Z', '3.0'), at('2025-06-12T00:00:00.000Z', '1.0'),
      at('2025-06-12T00:00:00.000Z', '1.5'), at('2025-06-13T00:00:00.000Z'), at('2025-05-01T00:00:00.000Z', '0.1')]);
    for (let i = 1; i <= l.records.length; i += 2) await s.ingest(batchOf(l, i, Math.min(l.records.length, i + 1)), 'v-fleet');
    const agents = (await rollupsOf(s)).agents.filter((a: any) => a.agent_id === 'v');
    // log_open and log_close carry no agent.
    assert.deepEqual(agents, [{ fleet: 'v-fleet', agent_id: 'v', first_seen: '2025-05-01T00:00:00.000Z', last_seen: '2025-06-13T00:00:00.000Z', version: '1.5', version_seen: '2025-06-12T00:00:00.000Z' }]);
    assert.deepEqual(await rollupsOf(s), await rawRollupsOf(s));
    const row = (await fleetOverview(s, 'v-fleet', NOW)).agentRows[0];
    assert.deepEqual([row.agent, row.version, row.lastSeen], ['v', '1.5', '2025-06-13T00:00:00.000Z']);
  } finally {
    await s.close();
  }
});

test('an agent page over any range equals aggregating its raw records: partial days, midnights, odd ts', async (t) => {
  for (const range of RANGES) {
    for (const agent of ['alpha', 'beta']) {
      assert.deepEqual(await actualAgent(clean, agent, range), expectedAgent(entries, agent, range), `${agent} ${range.from}..${range.to}`);
    }
  }
  // The odd ts land by text order: "2025-06-11" is inside [06-09T00:00, 06-11T00:00) (a bare day sorts before its
  // midnight), and of [06-10T00:00, 06-12T00:00) only it is: "2025-06-10" and "2025-06-10 12:00:00" sort before
  // 06-10's midnight, "2025-06-12T00:00:00Z" after 06-12's.
  const oddCalls = async (range: { from: string; to: string }) => (await agentDetail(clean, FLEET, 'alpha', range)).costByModel.find((r) => r.key === 'odd-model')?.calls;
  assert.equal(await oddCalls(RANGES[4]), 4);
  assert.equal(await oddCalls(RANGES[5]), 1);
  t.diagnostic(`${RANGES.length} ranges × 2 agents equal the audit entries`);
});

test('a store from before the rollups is upgraded on open: the rollups are backfilled from its records, once, as ingest built them', async (t) => {
  const file = join(tempDataDir(), 'collector.db');
  let s = openSqliteStore(file);
  await ingestLog(s, log, 200);
  const other = await signedLog(fleetEntries().slice(0, 40));
  await ingestLog(s, other, 15, 'other-fleet');
  const fresh = { rollups: await rollupsOf(s), overview: await fleetOverview(s, FLEET, NOW), other: await fleetOverview(s, 'other-fleet', NOW),
    pages: await Promise.all(RANGES.map((r) => agentDetail(s, FLEET, 'alpha', r))) };
  await s.close();
  const db = new Database(file);
  toPreRollupSchema(db);
  db.close();

  const started = performance.now();
  s = openSqliteStore(file);
  const upgradeMs = performance.now() - started;
  try {
    const upgraded = await rollupsOf(s);
    assert.deepEqual(upgraded, fresh.rollups);
    assert.deepEqual(await fleetOverview(s, FLEET, NOW), fresh.overview);
    assert.deepEqual(await fleetOverview(s, 'other-fleet', NOW), fresh.other);
    assert.deepEqual(await Promise.all(RANGES.map((r) => agentDetail(s, FLEET, 'alpha', r))), fresh.pages);
    // Ingest keeps them from there; opening again does not backfill twice.
    await s.close();
    s = openSqliteStore(file);
    await ingestLog(s, await signedLog(oddTimeCalls()), 3);
    assert.deepEqual(await rollupsOf(s), await rawRollupsOf(s));
    t.diagnostic(`backfilled ${upgraded.daily.length} daily rows and ${upgraded.agents.length} agents in ${upgradeMs.toFixed(0)} ms, equal to ingest's`);
  } finally {
    await s.close();
  }
});
