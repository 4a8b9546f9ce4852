// The dashboard's data layer over a real SQLite collector store fed through real ingest: totals, cost
// per task and model, latency percentiles, violations, hallucination signals, drift, trust and
// escalations match the audit records exactly; the collector prices what the sidecar could not, and a
// later price never rewrites a stored record; a store from before the dashboard is upgraded in place.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { agentDetail, fleetOverview, latencySummary, listPrices, NO_TASK, recordDetail, searchRecords, setPrice } from '../../collector/dashboard-data.ts';
import { agentLatencies } from '../../collector/dashboard-sql.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import type { AuditEntry } from '../../proxy/audit/audit-log.ts';
import { WardenError } from '../../proxy/errors.ts';
import { batchOf, FLEET, fleetEntries, ingestLog, NOW, signedLog, toDashboardSchema, type SignedLog } from '../helpers/dashboard-fixture.ts';
import { tempDataDir } from '../helpers/warden.ts';

const entries = fleetEntries();
const modelCalls = entries.filter((e) => e.event === 'model_call') as Record<string, any>[];
const RANGE = { from: '2025-05-16T00:00:00.000Z', to: '2025-06-16T00:00:00.000Z' };

let log: SignedLog;
let path: string;
let store: CollectorStore;
before(async () => {
  log = await signedLog(entries);
  path = join(tempDataDir(), 'collector.db');
  store = openSqliteStore(path);
  await ingestLog(store, log, 70);
});
after(() => store?.close());

// The expected figures, straight from the records with plain loops.
const isError = (e: Record<string, any>) => e.status >= 400 || e.error !== undefined || e.stream_error !== undefined;
const cost = (es: Record<string, any>[]) => es.reduce((n, e) => n + (e.cost_usd ?? 0), 0);
const within = (e: AuditEntry, from: string, to: string) => e.ts >= from && e.ts < to;

function nearestRank(values: number[], pct: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((pct / 100) * sorted.length) - 1];
}

test('fleet overview: today and this month (UTC), 30 zero-filled days, per-agent rows sorted by month cost', async (t) => {
  const o = await fleetOverview(store, FLEET, NOW);
  const today = modelCalls.filter((e) => e.ts.startsWith('2025-06-15'));
  const month = modelCalls.filter((e) => e.ts >= '2025-06-01');
  assert.equal(o.now, NOW.toISOString());
  assert.equal(o.agents, 3);
  assert.deepEqual([o.callsToday, o.errorsToday, o.costToday], [today.length, today.filter(isError).length, cost(today)]);
  assert.deepEqual([o.callsMonth, o.errorsMonth, o.costMonth], [month.length, month.filter(isError).length, cost(month)]);
  assert.equal(o.daily.length, 30);
  assert.equal(o.daily[0].day, '2025-05-17');
  assert.equal(o.daily[29].day, '2025-06-15');
  for (const d of o.daily) {
    const day = modelCalls.filter((e) => e.ts.startsWith(d.day));
    assert.deepEqual(d, {
      day: d.day, calls: day.length, errors: day.filter(isError).length, costUsd: cost(day),
      inputTokens: day.reduce((n, e) => n + e.usage.input_tokens, 0), outputTokens: day.reduce((n, e) => n + e.usage.output_tokens, 0),
    });
  }
  assert.ok(o.daily.some((d) => d.calls === 0), 'some days have no calls and are still listed');
  const expectedRows = ['alpha', 'beta', 'gamma'].map((agent) => {
    const mine = month.filter((e) => e.agent.id === agent);
    const all = entries.filter((e) => (e.agent as { id?: string })?.id === agent);
    return {
      agent, version: agent === 'alpha' ? '1.1' : agent === 'beta' ? '2.0' : '0.9', calls: mine.length, errors: mine.filter(isError).length,
      costToday: cost(mine.filter((e) => e.ts.startsWith('2025-06-15'))), costMonth: cost(mine),
      violations: all.filter((e) => e.ts >= '2025-06-01').reduce((n, e) => n + ((e.violations as unknown[])?.length ?? 0), 0),
      lastSeen: all.map((e) => e.ts).sort().at(-1),
    };
  }).sort((a, b) => b.costMonth - a.costMonth);
  assert.deepEqual(o.agentRows, expectedRows);
  assert.equal(o.alerts, 0);
  t.diagnostic(`today ${o.callsToday} calls/${o.errorsToday} errors/$${o.costToday}; month ${o.callsMonth}/${o.errorsMonth}/$${o.costMonth}; agents ${o.agentRows.map((r) => `${r.agent}@${r.version} $${r.costMonth} ${r.violations}v`).join(', ')}`);
});

test('agent detail: totals, cost per task and per model equal to the audit records, nearest-rank latency', async (t) => {
  const d = await agentDetail(store, FLEET, 'alpha', RANGE);
  const mine = modelCalls.filter((e) => e.agent.id === 'alpha' && within(e as AuditEntry, RANGE.from, RANGE.to));
  assert.deepEqual([d.calls, d.errors, d.costUsd], [mine.length, mine.filter(isError).length, cost(mine)]);
  assert.equal(d.inputTokens, mine.reduce((n, e) => n + e.usage.input_tokens, 0));
  assert.equal(d.outputTokens, mine.reduce((n, e) => n + e.usage.output_tokens, 0));
  assert.deepEqual(d.versions, ['1.0', '1.1']);
  assert.equal(d.daily.length, 31, 'every day of the range, zeros included');
  assert.equal(d.daily.reduce((n, x) => n + x.calls, 0), mine.length);

  const tasks = new Map<string, number>();
  for (const e of mine) tasks.set(e.task ?? NO_TASK, (tasks.get(e.task ?? NO_TASK) ?? 0) + (e.cost_usd ?? 0));
  assert.deepEqual(new Map(d.costByTask.map((r) => [r.key, r.costUsd])), tasks);
  assert.ok(tasks.has(NO_TASK), 'calls without a task are grouped under "(no task)"');
  assert.equal(d.costByTask.reduce((n, r) => n + r.calls, 0), mine.length);
  assert.ok(d.costByTask.every((r, i) => i === 0 || d.costByTask[i - 1].costUsd >= r.costUsd), 'most expensive first');
  const models = new Map<string, number>();
  for (const e of mine) models.set(e.model.served, (models.get(e.model.served) ?? 0) + (e.cost_usd ?? 0));
  assert.deepEqual(new Map(d.costByModel.map((r) => [r.key, r.costUsd])), models);

  const latencies = mine.map((e) => e.latency_ms as number);
  assert.deepEqual(d.latency, {
    count: latencies.length, p50: nearestRank(latencies, 50), p90: nearestRank(latencies, 90), p99: nearestRank(latencies, 99), max: Math.max(...latencies),
  });
  t.diagnostic(`alpha: ${d.calls} calls, ${d.errors} errors, $${d.costUsd}; tasks ${d.costByTask.map((r) => `${r.key}=$${r.costUsd}`).join(' ')}; latency p50 ${d.latency.p50} p90 ${d.latency.p90} p99 ${d.latency.p99} max ${d.latency.max} ms over ${d.latency.count}`);
});

test('nearest-rank percentiles, ranked by SQL: 1..100 gives 50/90/99/100; one value is every percentile; none is zeros', () => {
  const summary = (values: number[]) => {
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE records (fleet TEXT, agent_id TEXT, event TEXT, ts TEXT, latency_ms REAL)');
      const insert = db.prepare("INSERT INTO records VALUES ('f', 'a', 'model_call', '2025-06-01T00:00:00Z', ?)");
      for (const v of [...values, null]) insert.run(v);
      const { sql, args } = agentLatencies(() => '?', 'f', 'a', '2025-01-01', '2026-01-01');
      return latencySummary(db.prepare(sql).all(...args) as { n: number; rn: number; ms: number }[]);
    } finally {
      db.close();
    }
  };
  assert.deepEqual(summary(Array.from({ length: 100 }, (_, i) => 100 - i)), { count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  assert.deepEqual(summary([7.5]), { count: 1, p50: 7.5, p90: 7.5, p99: 7.5, max: 7.5 });
  assert.deepEqual(summary([]), { count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  assert.deepEqual(summary([3, 1, 2, 10]), { count: 4, p50: 2, p90: 10, p99: 10, max: 10 });
  assert.deepEqual(summary([5, 5, 5, 1]), { count: 4, p50: 5, p90: 5, p99: 5, max: 5 }, 'ties');
});

test('agent detail: violations by kind and tool, hallucination signals by tool, drift, trust history, escalations', async (t) => {
  const d = await agentDetail(store, FLEET, 'alpha', RANGE);
  const counts = new Map<string, number>();
  for (const e of entries) {
    if ((e.agent as { id?: string })?.id !== 'alpha' || !within(e, RANGE.from, RANGE.to)) continue;
    for (const v of (e.violations as { kind: string; tool?: string }[] | undefined) ?? []) counts.set(`${v.kind}/${v.tool ?? ''}`, (counts.get(`${v.kind}/${v.tool ?? ''}`) ?? 0) + 1);
  }
  assert.deepEqual(new Map(d.violations.map((v) => [`${v.kind}/${v.tool ?? ''}`, v.count])), counts);
  assert.ok(d.violations.some((v) => v.tool === undefined), 'a violation with no tool has no tool');
  const flagged = entries.filter((e) => (e.agent as { id?: string })?.id === 'alpha' && (e.tool as { signals?: unknown })?.signals !== undefined);
  const signalTools = new Map<string, number>();
  for (const e of flagged) signalTools.set((e.tool as { name: string }).name, (signalTools.get((e.tool as { name: string }).name) ?? 0) + 1);
  assert.deepEqual(d.hallucinations.filter((h) => h.kind === 'round_numbers').map((h) => [h.tool, h.count]).sort(), [...signalTools].sort());
  assert.equal(d.hallucinations.reduce((n, h) => n + h.count, 0), flagged.length * 2);

  assert.deepEqual(d.drift.map((x) => x.kind), ['passive', 'pact'], 'newest first');
  assert.match(d.drift[0].summary, /window 4: error rate 1% → 8%/);
  assert.match(d.drift[1].summary, /refunds 0\.9 → 0\.7 \(Δ -0\.2\)/);
  assert.doesNotMatch(d.drift[1].summary, /tone/);
  const drift = await recordDetail(store, FLEET, d.drift[1].logId, d.drift[1].seq);
  assert.equal(JSON.parse(drift!.body).event, 'drift', 'a drift event points at its record');

  assert.deepEqual(d.trust.map((p) => p.score), [0.91, 0.62, 0.8], 'oldest first, only alpha\'s');
  assert.deepEqual(d.escalations.map((e) => [e.id, e.outcome, e.tool, e.by, e.waitedMs, e.task]), [
    ['esc-3', 'pending', 'refund', undefined, undefined, 'task-3'],
    ['esc-4', 'timed_out', 'refund', undefined, 900_000, 'task-1'],
    ['esc-2', 'rejected', 'delete_account', 'lead@example.com', 60_000, 'task-2'],
    ['esc-1', 'approved', 'refund', 'ops@example.com', 300_000, 'task-1'],
  ]);
  const opened = await recordDetail(store, FLEET, d.escalations[3].logId, d.escalations[3].seq);
  assert.equal(JSON.parse(opened!.body).action, 'opened', 'an escalation row points at the record that opened it');
  assert.deepEqual(d.escalationOutcomes, [
    { kind: 'approved', count: 1 }, { kind: 'pending', count: 1 }, { kind: 'rejected', count: 1 }, { kind: 'timed_out', count: 1 },
  ]);
  const quiet = await agentDetail(store, FLEET, 'alpha', { from: '2025-01-01T00:00:00.000Z', to: '2025-02-01T00:00:00.000Z' });
  assert.deepEqual([quiet.calls, quiet.costUsd, quiet.drift.length, quiet.trust.length, quiet.escalations.length, quiet.latency.count], [0, 0, 0, 0, 0, 0]);
  assert.ok(quiet.daily.every((x) => x.calls === 0) && quiet.daily.length === 31);
  t.diagnostic(`alpha: violations ${d.violations.map((v) => `${v.kind}${v.tool ? `@${v.tool}` : ''}×${v.count}`).join(' ')}; hallucinations ${d.hallucinations.map((h) => `${h.kind}@${h.tool}×${h.count}`).join(' ')}; drift "${d.drift.map((x) => x.summary).join('" / "')}"; trust ${d.trust.map((p) => p.score).join(',')}; escalations ${d.escalationOutcomes.map((o) => `${o.kind}=${o.count}`).join(' ')}`);
});

test('record search pages in (log_id, seq) order with the /v1/records cursor; a record detail is its exact text', async (t) => {
  const seen: number[] = [];
  let after: { logId: string; seq: number } | undefined;
  let pages = 0;
  for (;;) {
    const page = await searchRecords(store, FLEET, { agent: 'beta', event: 'model_call', limit: 25, after });
    const raw = await store.records(FLEET, { agent: 'beta', event: 'model_call', limit: 25, after });
    assert.deepEqual(page.rows.map((r) => r.seq), raw.map((r) => r.seq), 'the same rows as the JSON API');
    pages++;
    seen.push(...page.rows.map((r) => r.seq));
    if (!page.next) break;
    const cut = page.next.lastIndexOf(':');
    after = { logId: page.next.slice(0, cut), seq: Number(page.next.slice(cut + 1)) };
  }
  const expected = log.records.map((b) => JSON.parse(b)).filter((r) => r.event === 'model_call' && r.agent.id === 'beta').map((r) => r.seq);
  assert.deepEqual(seen, expected);

  const [row] = (await searchRecords(store, FLEET, { agent: 'alpha', event: 'model_call', task: 'task-1', limit: 1 })).rows;
  const body = log.records[row.seq - 1];
  const r = JSON.parse(body);
  assert.deepEqual(row, {
    logId: log.logId, seq: r.seq, ts: r.ts, event: 'model_call', agent: 'alpha', session: r.session, task: 'task-1', model: r.model.served,
    status: r.status, latencyMs: r.latency_ms, ...(r.cost_usd === undefined ? {} : { costUsd: r.cost_usd }), verified: true,
  });
  assert.deepEqual(await recordDetail(store, FLEET, log.logId, row.seq), { row, body });
  assert.equal(await recordDetail(store, FLEET, log.logId, 99_999), undefined);
  assert.equal(await recordDetail(store, FLEET, 'no-such-log', 1), undefined);
  t.diagnostic(`${seen.length} of beta's model calls in ${pages} pages of 25`);
});

test('prices: the collector prices model calls the sidecar did not, and a later price never changes a stored record', async (t) => {
  const s = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    const call = (n: number, extra: Record<string, unknown> = {}): AuditEntry => ({
      event: 'model_call', ts: NOW.toISOString(), agent: { id: 'pricey', version: '1' }, task: `t${n}`, status: 200, latency_ms: 5,
      model: { asked: 'mini', served: 'mini-2025' }, usage: { input_tokens: 15_625, output_tokens: 31_250 }, ...extra,
    });
    const priced = await signedLog([call(1), call(2), call(3, { cost_usd: 0.5 }), call(4), call(5, { model: { asked: 'mini' } }), call(6)]);
    const costs = async () => (await searchRecords(s, 'f', { agent: 'pricey', limit: 100 })).rows.map((r) => r.costUsd);
    const sources = async () => (await s.select<{ source: string | null }>("SELECT price_source AS source FROM records WHERE agent_id = 'pricey' ORDER BY seq", [])).map((r) => r.source);
    // No price yet: the first call stays unpriced.
    await s.ingest(batchOf(priced, 1, 2), 'f');
    assert.deepEqual(await listPrices(s, 'f'), []);
    const first = await setPrice(s, 'f', { model: 'mini', inputPerMTok: 1, outputPerMTok: 2 }, new Date('2025-06-15T12:00:00.000Z'));
    assert.deepEqual(first, { model: 'mini', inputPerMTok: 1, outputPerMTok: 2, since: '2025-06-15T12:00:00.000Z' });
    // Asked "mini", served "mini-2025" (unpriced): priced by what was asked. The sidecar-priced one keeps its cost.
    await s.ingest(batchOf(priced, 3, 4), 'f');
    assert.deepEqual(await costs(), [undefined, 0.078125, 0.5]);
    await setPrice(s, 'f', { model: 'mini', inputPerMTok: 4, outputPerMTok: 8 }, new Date('2025-06-15T13:00:00.000Z'));
    await setPrice(s, 'f', { model: 'mini-2025', inputPerMTok: 2, outputPerMTok: 2 }, new Date('2025-06-15T13:00:00.000Z'));
    await s.ingest(batchOf(priced, 5, priced.records.length), 'f');
    // Served "mini-2025" now has a price of its own, which wins over the asked model's; "mini" alone
    // takes the new "mini" price; the call priced earlier keeps the old one.
    assert.deepEqual(await costs(), [undefined, 0.078125, 0.5, 0.09375, 0.3125, 0.09375]);
    assert.deepEqual(await sources(), [null, 'collector', 'sidecar', 'collector', 'collector', 'collector']);
    assert.deepEqual(await listPrices(s, 'f'), [
      { model: 'mini', inputPerMTok: 4, outputPerMTok: 8, since: '2025-06-15T13:00:00.000Z' },
      { model: 'mini-2025', inputPerMTok: 2, outputPerMTok: 2, since: '2025-06-15T13:00:00.000Z' },
    ]);
    const d = await agentDetail(s, 'f', 'pricey', { from: '2025-06-15T00:00:00.000Z', to: '2025-06-16T00:00:00.000Z' });
    assert.equal(d.costUsd, 0.078125 + 0.5 + 0.09375 + 0.3125 + 0.09375);
    await assert.rejects(setPrice(s, 'f', { model: '', inputPerMTok: -1, outputPerMTok: Number.NaN }, NOW), (err: WardenError) => {
      assert.equal(err.code, 'WARDEN_ERR_INVALID_REQUEST');
      assert.match(err.message, /model.*inputPerMTok.*outputPerMTok/);
      return true;
    });
    t.diagnostic(`costs by ingest order: ${(await costs()).join(', ')}; current prices ${(await listPrices(s, 'f')).map((p) => `${p.model} ${p.inputPerMTok}/${p.outputPerMTok}`).join(', ')}`);
  } finally {
    await s.close();
  }
});

/** Records a sidecar would never write but the collector must keep: odd types, and JSON too deep for SQLite's JSON functions. */
function oddBatch(): { batch: Parameters<CollectorStore['ingest']>[0]; deepSeq: number } {
  const agent = { id: 'odd', version: '1' };
  const bodies = [
    { event: 'tool_call', agent, violations: ['not an object', 5, { kind: 7 }, { kind: 'real', tool: 3 }], tool: 'a string', latency_ms: 'fast' },
    { event: 'tool_call', agent, tool: { name: 'lookup', signals: { score: 1, signals: [{ name: 'round_numbers' }, 'x', { name: 2 }] } }, error: { code: 1 } },
    { event: 'tool_call', agent, violations: [{ kind: 'deep' }], nest: JSON.parse('['.repeat(1_500) + ']'.repeat(1_500)) },
  ];
  const records = bodies.map((b, i) => JSON.stringify({ ...b, log_id: 'odd-log', seq: i + 1, ts: '2025-06-14T00:00:00.000Z' }));
  return { batch: { log_id: 'odd-log', first_seq: 1, last_seq: records.length, records, checkpoints: [] }, deepSeq: 3 };
}

/** Strips a store's file back to the schema it had before the dashboard. */
function toOldSchema(file: string): void {
  const db = new Database(file);
  toDashboardSchema(db);
  for (const column of ['latency_ms', 'tool', 'error', 'price_source']) db.exec(`ALTER TABLE records DROP COLUMN ${column}`);
  db.exec('DROP INDEX records_agent_event_ts; DROP TABLE record_tags; DROP TABLE prices;');
  db.close();
}

test('a store from before the dashboard is upgraded on open: columns and tags backfilled from the bodies, once, as ingest would have', async (t) => {
  const file = join(tempDataDir(), 'collector.db');
  let s = openSqliteStore(file);
  await ingestLog(s, log, 200);
  const odd = oddBatch();
  await s.ingest(odd.batch, FLEET);
  const snapshot = async (st: CollectorStore) => ({
    overview: await fleetOverview(st, FLEET, NOW),
    alpha: await agentDetail(st, FLEET, 'alpha', RANGE),
    rows: (await searchRecords(st, FLEET, { limit: 1_000 })).rows,
    tags: await st.select("SELECT log_id, seq, agent_id, ts, tag_kind, tag, tool FROM record_tags WHERE log_id <> 'odd-log' ORDER BY log_id, seq, tag_kind, tag, tool", []),
    columns: await st.select("SELECT log_id, seq, latency_ms, tool, error, price_source FROM records WHERE log_id <> 'odd-log' ORDER BY log_id, seq", []),
    odd: await st.select("SELECT seq, latency_ms, tool, error FROM records WHERE log_id = 'odd-log' ORDER BY seq", []),
    oddTags: await st.select("SELECT seq, tag_kind, tag, tool FROM record_tags WHERE log_id = 'odd-log' ORDER BY seq, tag_kind, tag", []),
  });
  const fresh = await snapshot(s);
  await s.close();
  toOldSchema(file);
  const old = new Database(file, { readonly: true });
  assert.equal((old.prepare("SELECT count(*) AS n FROM pragma_table_info('records') WHERE name = 'latency_ms'").get() as { n: number }).n, 0);
  old.close();

  const started = performance.now();
  s = openSqliteStore(file);
  const upgradeMs = performance.now() - started;
  try {
    const upgraded = await snapshot(s);
    // The one difference: the body too deep for SQLite's JSON functions is skipped (its violation
    // counted at ingest, not by the backfill) rather than failing the upgrade.
    const skipped = fresh.overview.agentRows.map((r) => (r.agent === 'odd' ? { ...r, violations: r.violations - 1 } : r));
    assert.deepEqual(upgraded.overview, { ...fresh.overview, agentRows: skipped });
    assert.deepEqual(upgraded.alpha, fresh.alpha);
    assert.deepEqual(upgraded.rows, fresh.rows);
    assert.deepEqual(upgraded.tags, fresh.tags);
    assert.deepEqual(upgraded.columns, fresh.columns);
    // Values of the wrong type are left out alike.
    assert.deepEqual(upgraded.odd, fresh.odd);
    assert.deepEqual(fresh.oddTags.filter((x: any) => x.seq !== odd.deepSeq), upgraded.oddTags);
    assert.deepEqual(fresh.oddTags.map((x: any) => `${x.seq}:${x.tag_kind}:${x.tag}:${x.tool}`), ['1:violation:real:null', '2:hallucination:round_numbers:lookup', '3:violation:deep:null']);
    // Opening again does not backfill twice.
    await s.close();
    s = openSqliteStore(file);
    assert.deepEqual(await s.select('SELECT count(*) AS n FROM record_tags', []), [{ n: fresh.tags.length + upgraded.oddTags.length }]);
    t.diagnostic(`upgraded ${fresh.rows.length} records and ${fresh.tags.length} tags in ${upgradeMs.toFixed(0)} ms; backfill equals ingest-time extraction`);
  } finally {
    await s.close();
  }
});
