// One collector, two fleets (two tokens): each fleet reads only its own logs, records, costs,
// alerts and prices, through the JSON API and through every dashboard page and export; a fleet
// cannot append to (or learn anything of) another fleet's log; a price one fleet sets never prices
// the other's calls; a store from before fleets were kept apart is upgraded in place.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { fleetOverview, listPrices } from '../../collector/dashboard-data.ts';
import type { IngestBatch } from '../../collector/ingest.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { AuditEntry } from '../../proxy/audit/audit-log.ts';
import { startCollector, type TestCollector } from '../helpers/collector.ts';
import { batchOf, fleetEntries, ingestLog, NOW, signedLog, toDashboardSchema, type SignedLog } from '../helpers/dashboard-fixture.ts';
import { tempDataDir } from '../helpers/warden.ts';

const A = { token: 'fleet-a-token', fleet: 'fleet-a' };
const B = { token: 'fleet-b-token', fleet: 'fleet-b' };
const TOKENS = new Map([[A.token, A.fleet], [B.token, B.fleet]]);

/** An unpriced model call (the sidecar had no price): the collector prices it, or leaves it at $0. */
function unpriced(agent: string, task: string): AuditEntry {
  return { event: 'model_call', ts: NOW.toISOString(), agent: { id: agent, version: '1' }, task, status: 200, latency_ms: 7,
    model: { asked: 'claude-sonnet', served: 'claude-sonnet' }, usage: { input_tokens: 15_625, output_tokens: 15_625 } };
}

/** Fleet B's own small log: one agent, a violation, an escalation. */
function bravoEntries(): AuditEntry[] {
  const agent = { id: 'bravo-bot', version: '9.9' };
  return [
    { event: 'model_call', ts: '2025-06-14T10:00:00.000Z', agent, task: 'bravo-task', status: 200, latency_ms: 3, model: { asked: 'gpt-4o', served: 'gpt-4o' },
      usage: { input_tokens: 10, output_tokens: 10 }, cost_usd: 0.25, violations: [{ kind: 'pii_in_prompt', message: 'mail' }] },
    { event: 'escalation', ts: '2025-06-14T11:00:00.000Z', agent, action: 'opened', escalation: { id: 'esc-b', kind: 'tool_call', tool: 'wire' } },
    { event: 'model_call', ts: '2025-06-14T12:00:00.000Z', agent, task: 'bravo-task', status: 200, latency_ms: 4, model: { asked: 'gpt-4o', served: 'gpt-4o' },
      usage: { input_tokens: 10, output_tokens: 10 }, cost_usd: 0.5 },
  ];
}

/** The log's batch without record `skip`: the collector raises a gap alert on the log. */
function withGap(log: SignedLog, skip: number): IngestBatch {
  const b = batchOf(log, 1, log.records.length);
  return { ...b, records: b.records.filter((_, i) => i !== skip - 1), checkpoints: [] };
}

let collector: TestCollector;

async function call(token: string, path: string, init: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}) {
  const res = await request(`${collector.url}${path}`, { method: init.method ?? 'GET', body: init.body, headers: { authorization: `Bearer ${token}`, ...init.headers } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function api<T = any>(token: string, path: string): Promise<T> {
  const res = await call(token, path);
  assert.equal(res.status, 200, `${path}: ${res.text}`);
  return JSON.parse(res.text) as T;
}

async function ingest(token: string, batch: IngestBatch) {
  const res = await call(token, '/v1/ingest', { method: 'POST', body: JSON.stringify(batch), headers: { 'content-type': 'application/json' } });
  return { status: res.status, body: JSON.parse(res.text) };
}

async function setPriceForm(token: string, model: string, input: string, output: string): Promise<void> {
  const res = await call(token, '/prices', { method: 'POST', body: new URLSearchParams({ model, inputPerMTok: input, outputPerMTok: output }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(res.status, 303, res.text);
}

describe('two fleets on one collector (SQLite), over HTTP', () => {
  let alpha: SignedLog;
  let bravo: SignedLog;
  let alphaGap: SignedLog;
  let bravoGap: SignedLog;

  before(async () => {
    collector = await startCollector(undefined, TOKENS);
    [alpha, bravo, alphaGap, bravoGap] = await Promise.all([signedLog(fleetEntries()), signedLog(bravoEntries()), signedLog(fleetEntries().slice(0, 5)), signedLog(bravoEntries())]);
    for (let first = 1; first <= alpha.records.length; first += 100) {
      assert.equal((await ingest(A.token, batchOf(alpha, first, Math.min(alpha.records.length, first + 99)))).status, 200);
    }
    assert.equal((await ingest(B.token, batchOf(bravo, 1, bravo.records.length))).status, 200);
    // One integrity alert each: a record deleted before shipping.
    assert.equal((await ingest(A.token, withGap(alphaGap, 3))).body.alerts, 1);
    assert.equal((await ingest(B.token, withGap(bravoGap, 2))).body.alerts, 1);
  });
  after(() => collector?.close());

  test('the API: logs, records, cost, alerts and exports are each fleet\'s own', async () => {
    const logsOf = async (token: string) => (await api(token, '/v1/logs')).logs.map((l: { logId: string }) => l.logId).sort();
    assert.deepEqual(await logsOf(A.token), [alpha.logId, alphaGap.logId].sort());
    assert.deepEqual(await logsOf(B.token), [bravo.logId, bravoGap.logId].sort());

    const recordsOf = async (token: string, query = '') => (await api(token, `/v1/records?limit=1000${query}`)).records as { log_id: string }[];
    assert.deepEqual(new Set((await recordsOf(A.token)).map((r) => r.log_id)), new Set([alpha.logId, alphaGap.logId]));
    assert.deepEqual(new Set((await recordsOf(B.token)).map((r) => r.log_id)), new Set([bravo.logId, bravoGap.logId]));
    // Naming the other fleet's log, agent or task finds nothing.
    assert.deepEqual(await recordsOf(B.token, `&log=${encodeURIComponent(alpha.logId)}`), []);
    assert.deepEqual(await recordsOf(B.token, '&agent=alpha'), []);
    assert.deepEqual(await recordsOf(A.token, '&task=bravo-task'), []);
    assert.equal((await recordsOf(A.token, `&log=${encodeURIComponent(alpha.logId)}`)).length, alpha.records.length);

    const costKeys = async (token: string) => (await api(token, '/v1/cost?by=agent')).rows.map((r: { key: string }) => r.key).sort();
    assert.deepEqual(await costKeys(A.token), ['alpha', 'beta', 'gamma']);
    assert.deepEqual(await costKeys(B.token), ['bravo-bot']);
    assert.deepEqual((await api(B.token, '/v1/cost?by=task')).rows.map((r: { key: string; costUsd: number }) => [r.key, r.costUsd]), [['bravo-task', 1.25]]);

    const alertsOf = async (token: string, since = 0) => (await api(token, `/v1/alerts?since=${since}`)).alerts as { id: number; logId: string; kind: string }[];
    const [alertA] = await alertsOf(A.token);
    const [alertB] = await alertsOf(B.token);
    assert.deepEqual([(await alertsOf(A.token)).length, alertA.logId, alertA.kind], [1, alphaGap.logId, 'gap']);
    assert.deepEqual([(await alertsOf(B.token)).length, alertB.logId, alertB.kind], [1, bravoGap.logId, 'gap']);
    assert.deepEqual(await alertsOf(A.token, alertA.id), [], 'paging by id skips the other fleet\'s alerts');

    const exported = async (token: string, logId: string) => (await call(token, `/v1/logs/${encodeURIComponent(logId)}/export`)).text.split('\n').filter(Boolean);
    assert.equal((await exported(A.token, alpha.logId)).length, alpha.records.length + alpha.checkpoints.length);
    // Another fleet's log exports as a log the collector does not hold: empty.
    assert.deepEqual(await exported(B.token, alpha.logId), []);
    assert.deepEqual(await exported(B.token, 'no-such-log'), []);
  });

  test('a batch for another fleet\'s log is refused (403) and changes and tells nothing', async () => {
    const sizeOf = async (token: string, logId: string) => (await api(token, '/v1/logs')).logs.find((l: { logId: string }) => l.logId === logId)?.size;
    const before = await sizeOf(A.token, alpha.logId);
    // A resend of records it holds (which would answer committed_through) and records past its end.
    const extra = await signedLog([...fleetEntries(), unpriced('mallory', 'intrusion')]);
    for (const batch of [batchOf(alpha, 1, 10), { ...batchOf(extra, extra.records.length, extra.records.length), log_id: alpha.logId }]) {
      const res = await ingest(B.token, batch);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'WARDEN_ERR_LOG_OF_ANOTHER_FLEET');
      assert.equal(res.body.committed_through, undefined);
      assert.ok(!res.body.error.message.includes(A.fleet), 'the owner is not named');
    }
    assert.equal(await sizeOf(A.token, alpha.logId), before);
    assert.equal(await sizeOf(B.token, alpha.logId), undefined);
    assert.deepEqual((await api(A.token, '/v1/records?agent=mallory')).records, []);
    assert.equal((await api(A.token, '/v1/alerts')).alerts.length, 1, 'no alert for the refused batch');
    // The owner still ships to it.
    assert.equal((await ingest(A.token, batchOf(alpha, 1, 10))).body.duplicates, 10);
  });

  test('every dashboard page and export shows the signed-in fleet\'s data only', async () => {
    const seqB = 1;
    const pages = ['/', '/?format=csv&table=agents', '/?format=json&table=daily', '/agents/alpha', '/agents/alpha?format=json&table=tasks',
      '/agents/bravo-bot?from=2025-06-01&to=2025-06-15', '/agents/bravo-bot?from=2025-06-01&to=2025-06-15&format=csv&table=escalations',
      '/records', '/records?format=csv', '/records?format=json&table=records', '/alerts', '/alerts?format=csv', '/prices', '/prices?format=json'];
    const seen: Record<string, string> = {};
    for (const [who, own, foreign] of [[A, [alpha.logId, 'alpha'], [bravo.logId, bravoGap.logId, 'bravo-task', 'esc-b']], [B, [bravo.logId, 'bravo-bot'], [alpha.logId, alphaGap.logId, 'gamma']]] as const) {
      for (const path of pages) {
        const res = await call(who.token, path);
        assert.equal(res.status, 200, `${who.fleet} ${path}`);
        for (const text of foreign) assert.ok(!res.text.includes(text), `${who.fleet} ${path} shows ${text}`);
        seen[`${who.fleet} ${path}`] = res.text;
      }
      assert.ok(own.every((text) => Object.entries(seen).some(([k, v]) => k.startsWith(who.fleet) && v.includes(text))), `${who.fleet} sees its own data`);
    }
    // Its own figures: B's overview counts B's agent and its one alert; A's agent page for B is empty.
    const overviewB = JSON.parse(seen[`${B.fleet} /?format=json&table=daily`]).rows;
    assert.equal(overviewB.reduce((n: number, d: { calls: number }) => n + d.calls, 0), 0, 'B\'s calls are older than the last 30 days from now');
    assert.ok(seen[`${B.fleet} /agents/bravo-bot?from=2025-06-01&to=2025-06-15&format=csv&table=escalations`].includes('esc-b'));
    assert.ok(seen[`${B.fleet} /?format=csv&table=agents`].includes('"bravo-bot","9.9","0"'));
    assert.deepEqual(JSON.parse(seen[`${B.fleet} /agents/alpha?format=json&table=tasks`]).rows, []);
    assert.equal(JSON.parse(seen[`${A.fleet} /records?format=json&table=records`]).rows.length, 50, 'a full first page');
    assert.deepEqual(new Set(JSON.parse(seen[`${B.fleet} /records?format=json&table=records`]).rows.map((r: { logId: string }) => r.logId)), new Set([bravo.logId, bravoGap.logId]));
    // A record of the other fleet is not found, as page and as JSON; its own opens.
    for (const suffix of ['', '?format=json']) {
      assert.equal((await call(A.token, `/records/${encodeURIComponent(bravo.logId)}/${seqB}${suffix}`)).status, 404);
      assert.equal((await call(B.token, `/records/${encodeURIComponent(alpha.logId)}/${seqB}${suffix}`)).status, 404);
      assert.equal((await call(B.token, `/records/${encodeURIComponent(bravo.logId)}/${seqB}${suffix}`)).status, 200);
    }
    // A session cookie carries the fleet just as a bearer token does.
    const login = await request(`${collector.url}/login`, { method: 'POST', body: new URLSearchParams({ token: B.token, next: '/' }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await login.body.text();
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    const viaCookie = await (await request(`${collector.url}/records?format=csv`, { headers: { cookie } })).body.text();
    assert.ok(viaCookie.includes(bravo.logId) && !viaCookie.includes(alpha.logId));
  });

  test('prices are per fleet: one fleet\'s price never prices the other\'s calls; stored records keep their price', async () => {
    await setPriceForm(A.token, 'claude-sonnet', '4', '8');
    const models = async (token: string) => JSON.parse((await call(token, '/prices?format=json')).text).rows.map((r: { model: string; inputPerMTok: number }) => `${r.model}=${r.inputPerMTok}`);
    assert.deepEqual(await models(A.token), ['claude-sonnet=4']);
    assert.deepEqual(await models(B.token), []);
    const lateA = await signedLog([unpriced('alpha', 'late')]);
    const lateB = await signedLog([unpriced('bravo-bot', 'late')]);
    for (const [who, log] of [[A, lateA], [B, lateB]] as const) assert.equal((await ingest(who.token, batchOf(log, 1, log.records.length))).status, 200);
    const lateCost = async (token: string) => (await api(token, '/v1/cost?by=task')).rows.find((r: { key: string }) => r.key === 'late')?.costUsd;
    assert.equal(await lateCost(A.token), 0.1875);
    assert.equal(await lateCost(B.token), 0, 'B has no price for the model');
    // B's own price: B's later calls take it, A's price and A's stored cost stay.
    await setPriceForm(B.token, 'claude-sonnet', '1', '1');
    assert.deepEqual(await models(A.token), ['claude-sonnet=4']);
    assert.deepEqual(await models(B.token), ['claude-sonnet=1']);
    const laterB = await signedLog([unpriced('bravo-bot', 'later')]);
    assert.equal((await ingest(B.token, batchOf(laterB, 1, laterB.records.length))).status, 200);
    assert.equal((await api(B.token, '/v1/cost?by=task')).rows.find((r: { key: string }) => r.key === 'later')?.costUsd, 0.03125);
    assert.equal(await lateCost(A.token), 0.1875);
    assert.equal(await lateCost(B.token), 0, 'a stored record keeps the price it was recorded with');
  });
});

test('a store from before fleets were kept apart is upgraded on open: tags and alerts get their fleet, old prices stay shared until a fleet sets its own', async (t) => {
  const file = join(tempDataDir(), 'collector.db');
  let s = openSqliteStore(file);
  const [alpha, bravo, gap] = await Promise.all([signedLog(fleetEntries()), signedLog(bravoEntries()), signedLog(bravoEntries())]);
  await ingestLog(s, alpha, 200, A.fleet);
  await ingestLog(s, bravo, 200, B.fleet);
  await s.ingest(withGap(gap, 2), B.fleet);
  const fresh = { a: await fleetOverview(s, A.fleet, NOW), b: await fleetOverview(s, B.fleet, NOW) };
  await s.close();
  const db = new Database(file);
  toDashboardSchema(db);
  // A price set when prices were the whole collector's.
  db.prepare('INSERT INTO prices (model, input_per_mtok, output_per_mtok, since) VALUES (?, ?, ?, ?)').run('claude-sonnet', 2, 2, '2025-06-01T00:00:00.000Z');
  db.close();

  const started = performance.now();
  s = openSqliteStore(file);
  const upgradeMs = performance.now() - started;
  try {
    assert.deepEqual(await fleetOverview(s, A.fleet, NOW), fresh.a);
    assert.deepEqual(await fleetOverview(s, B.fleet, NOW), fresh.b);
    assert.equal(fresh.b.alerts, 1);
    assert.deepEqual((await s.alerts(B.fleet)).map((a) => a.logId), [gap.logId]);
    assert.deepEqual(await s.alerts(A.fleet), []);
    assert.equal(fresh.b.agentRows[0].violations, 1, 'B\'s violation tag is B\'s');
    // The shared price applies to both; A's own then wins for A only.
    for (const fleet of [A.fleet, B.fleet]) assert.deepEqual((await listPrices(s, fleet)).map((p) => p.inputPerMTok), [2]);
    await s.insertPrice(A.fleet, { model: 'claude-sonnet', inputPerMTok: 4, outputPerMTok: 8, since: NOW.toISOString() });
    assert.deepEqual((await listPrices(s, A.fleet)).map((p) => p.inputPerMTok), [4]);
    assert.deepEqual((await listPrices(s, B.fleet)).map((p) => p.inputPerMTok), [2]);
    await ingestLog(s, await signedLog([unpriced('bravo-bot', 'shared')]), 10, B.fleet);
    assert.deepEqual((await s.cost(B.fleet, 'task')).find((r) => r.key === 'shared')?.costUsd, 0.0625);
    const indexes = (await s.select<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name", [])).map((r) => r.name);
    assert.ok(indexes.every((name) => name.includes('fleet')), `the indexes without a fleet are gone: ${indexes.join(', ')}`);
    t.diagnostic(`upgraded in ${upgradeMs.toFixed(0)} ms; indexes ${indexes.join(', ')}`);
  } finally {
    await s.close();
  }
});
