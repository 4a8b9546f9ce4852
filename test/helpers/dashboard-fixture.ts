// A small fleet's audit records for the dashboard tests: three agents' model calls over eight weeks
// (errors of every sort, tasks and none, priced and not), tool calls with violations and
// hallucination signals, escalations, drift and evaluations. They are written to a real signed audit
// log and cut into batches as the shipper sends them, so the stores see exactly what a sidecar ships.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { agentDetail, NO_TASK } from '../../collector/dashboard-data.ts';
import type { CostRow, DailyRow } from '../../collector/dashboard-types.ts';
import type { IngestBatch } from '../../collector/ingest.ts';
import { compareText } from '../../collector/rollups.ts';
import type { CollectorStore } from '../../collector/store.ts';
import { openAuditLog, type AuditEntry } from '../../proxy/audit/audit-log.ts';
import { loadSigningKey } from '../../proxy/audit/signing.ts';
import { tempDataDir } from './warden.ts';

/** The dashboard's "now" for the fixture: mid-June, so "this month" is shorter than the 30-day chart. */
export const NOW = new Date('2025-06-15T12:00:00.000Z');
export const AGENTS = ['alpha', 'beta', 'gamma'];
/** The fleet the fixture is ingested as (the test collector's token's fleet). */
export const FLEET = 'test-fleet';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function at(msBeforeNow: number): string {
  return new Date(NOW.getTime() - msBeforeNow).toISOString();
}

const VERSIONS: Record<string, (daysBack: number) => string> = {
  alpha: (d) => (d > 20 ? '1.0' : '1.1'),
  beta: () => '2.0',
  gamma: () => '0.9',
};

/** Model calls: costs are multiples of 1/64 so every sum is exact in any order, in any store. */
function modelCalls(): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < 240; i++) {
    const agent = AGENTS[i % 3];
    const daysBack = i % 57;
    // A quiet spell: the charts must still show these days, as zeros.
    if (daysBack === 7 || daysBack === 8) continue;
    const failed = i % 13 === 0;
    out.push({
      event: 'model_call', ts: at(daysBack * DAY + (i % 5) * HOUR), request_id: `req-${i}`,
      agent: { id: agent, version: VERSIONS[agent](daysBack) }, session: `s-${i % 6}`, task: i % 7 === 0 ? undefined : `task-${i % 4}`,
      model: i % 5 === 0 ? { asked: 'claude-sonnet', served: 'claude-sonnet' } : { asked: 'gpt-4o', served: i % 2 ? 'gpt-4o-2024-08-06' : 'gpt-4o' },
      status: failed ? 502 : i % 23 === 0 ? 429 : 200,
      error: failed ? 'WARDEN_ERR_UPSTREAM_UNREACHABLE' : undefined,
      stream_error: i % 19 === 0 && !failed ? 'WARDEN_ERR_UPSTREAM_STREAM' : undefined,
      latency_ms: ((i * 37) % 1000) + 0.25,
      usage: { input_tokens: 15_625 * ((i % 4) + 1), output_tokens: 15_625 * (i % 3) },
      // The sidecar had no price for some calls: they carry no cost.
      cost_usd: i % 11 === 0 ? undefined : ((i % 8) + 1) / 64,
      violations: i % 29 === 0 ? [{ kind: 'pii_in_prompt', message: 'an e-mail address in the prompt' }] : undefined,
    });
  }
  return out;
}

function toolCalls(): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let j = 0; j < 30; j++) {
    const agent = j % 2 ? 'beta' : 'alpha';
    const name = ['refund', 'lookup', 'search'][j % 3];
    out.push({
      event: 'tool_call', ts: at((j % 20) * DAY + 30 * 60_000), agent: { id: agent, version: VERSIONS[agent](j % 20) }, task: `task-${j % 4}`,
      status: 200, latency_ms: 12 + j,
      tool: {
        name, target: 'http', outcome: 'ok',
        signals: j % 4 === 0 ? { score: 0.51, signals: [{ name: 'round_numbers', weight: 0.3, detail: 'all round' }, { name: 'template_ids', weight: 0.3, detail: 'INV-001' }] } : undefined,
      },
      violations: j % 3 === 0 ? [{ kind: 'out_of_scope', tool: name, message: 'not in the agent\'s scopes' }]
        : j % 5 === 0 ? [{ kind: 'suspicious_tool_result', tool: name, message: 'looks invented' }, { kind: 'invalid_args', tool: name, message: 'amount missing' }]
          : undefined,
    });
  }
  return out;
}

/** alpha's escalations (approved, rejected, timed out, still pending), drift, and trust history. */
function oversight(): AuditEntry[] {
  const alpha = { id: 'alpha', version: '1.1' };
  const esc = (id: string, tool: string, opened: number, task: string): AuditEntry => ({
    event: 'escalation', ts: at(opened), action: 'opened', agent: alpha, task, escalation: { id, kind: 'tool_call', tool, reason: 'irreversible' },
  });
  const decided = (id: string, tool: string, ts: number, action: string, waited: number, by?: string): AuditEntry => ({
    event: 'escalation', ts: at(ts), action, agent: alpha, escalation: { id, kind: 'tool_call', tool, waited_ms: waited },
    decision: by ? { by, note: 'checked' } : undefined,
  });
  return [
    { event: 'evaluation', ts: at(10 * DAY), agent: alpha, reason: 'scheduled', state: 'no_drift', trust_score: 0.91 },
    esc('esc-1', 'refund', 5 * DAY, 'task-1'),
    decided('esc-1', 'refund', 5 * DAY - 300_000, 'approved', 300_000, 'ops@example.com'),
    esc('esc-2', 'delete_account', 4 * DAY, 'task-2'),
    decided('esc-2', 'delete_account', 4 * DAY - 60_000, 'rejected', 60_000, 'lead@example.com'),
    esc('esc-4', 'refund', 3 * DAY, 'task-1'),
    { event: 'drift', ts: at(3 * DAY), agent: alpha, drift: { baseline: 'b1', state: 'drift', capabilities: [
      { name: 'refunds', state: 'drift', delta: -0.2, baseline: 0.9, candidate: 0.7 }, { name: 'tone', state: 'no_drift', delta: 0.01, baseline: 0.8, candidate: 0.81 }] } },
    { event: 'evaluation', ts: at(3 * DAY), agent: alpha, reason: 'scheduled', state: 'drift', trust_score: 0.62 },
    decided('esc-4', 'refund', 3 * DAY - 900_000, 'timed_out', 900_000),
    { event: 'drift', ts: at(2 * DAY), agent: alpha, passive: { window: 4, flagged: [{ metric: 'error_rate', baseline: 0.01, current: 0.08, reason: 'error rate 1% → 8%' }] } },
    esc('esc-3', 'refund', 1 * DAY, 'task-3'),
    { event: 'evaluation', ts: at(1 * DAY), agent: alpha, reason: 'manual', state: 'no_drift', trust_score: 0.8 },
    { event: 'evaluation', ts: at(1 * DAY), agent: { id: 'beta', version: '2.0' }, reason: 'manual', state: 'no_drift', trust_score: 0.5 },
  ];
}

/** Every fixture entry, oldest first (as a sidecar's log holds them). */
export function fleetEntries(): AuditEntry[] {
  return [...modelCalls(), ...toolCalls(), ...oversight()].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

export interface SignedLog {
  logId: string;
  records: string[];
  checkpoints: IngestBatch['checkpoints'];
}

/**
 * Writes `entries` to a new signed audit log and reads back its records and checkpoints. Small logs
 * are written strictly with a checkpoint every 50 records; `bulk` writes as a busy sidecar would
 * (group commits, a checkpoint every 1,000), in chunks so a 100,000-record log takes a second or two.
 */
export async function signedLog(entries: AuditEntry[], bulk = false): Promise<SignedLog> {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const log = await openAuditLog({ path, key: loadSigningKey(dir, {}), strict: !bulk, checkpointEveryRecords: bulk ? 1_000 : 50, openEntry: { event: 'log_open', ts: NOW.toISOString() } });
  for (let i = 0; i < entries.length; i += 5_000) await Promise.all(entries.slice(i, i + 5_000).map((e) => log.append(e)));
  await log.close({ event: 'log_close', ts: NOW.toISOString() });
  return readLog(path);
}

/** A closed audit log's records and checkpoints, as its shipper would send them. */
export function readLog(path: string): SignedLog {
  const db = new Database(path, { readonly: true });
  try {
    const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
    const records = (db.prepare('SELECT body FROM records ORDER BY seq').all() as { body: string }[]).map((r) => r.body);
    const checkpoints = (db.prepare('SELECT body FROM checkpoints ORDER BY size').all() as { body: string }[]).map((c) => JSON.parse(c.body));
    return { logId, records, checkpoints };
  } finally {
    db.close();
  }
}

/** The batch of records first..last (1-based seqs) with the checkpoints inside it, as the shipper cuts them. */
export function batchOf(log: SignedLog, first: number, last: number): IngestBatch {
  return {
    log_id: log.logId, first_seq: first, last_seq: last, records: log.records.slice(first - 1, last),
    checkpoints: log.checkpoints.filter((c) => c.size >= first && c.size <= last),
  };
}

/** Ships the whole log to `store` as `fleet` in batches of `size`, asserting nothing was refused or alerted. */
export async function ingestLog(store: CollectorStore, log: SignedLog, size = 100, fleet = FLEET): Promise<void> {
  for (let first = 1; first <= log.records.length; first += size) {
    const result = await store.ingest(batchOf(log, first, Math.min(log.records.length, first + size - 1)), fleet);
    if (result.alerts.length > 0) throw new Error(`unexpected integrity alerts: ${JSON.stringify(result.alerts)}`);
  }
}

const FLEET_INDEXES = ['records_fleet_agent_event_ts', 'records_fleet_agent_ts', 'records_fleet_event_ts', 'records_fleet_ts', 'records_fleet_log', 'records_fleet_task',
  'records_fleet_session', 'record_tags_fleet_agent', 'record_tags_fleet_kind_ts', 'alerts_fleet'];

/** Strips a store's file back to the schema it had before the dashboard's rollups (rollups.ts): the upgrade on open backfills them. */
export function toPreRollupSchema(db: Database.Database): void {
  db.exec('DROP TABLE daily_rollups; DROP TABLE agent_rollups;');
}

/** Strips a store's file back to the schema it had before reads were scoped per fleet (the dashboard's first release). */
export function toDashboardSchema(db: Database.Database): void {
  toPreRollupSchema(db);
  for (const index of FLEET_INDEXES) db.exec(`DROP INDEX ${index}`);
  for (const table of ['record_tags', 'alerts', 'prices']) db.exec(`ALTER TABLE ${table} DROP COLUMN fleet`);
  db.exec(`CREATE INDEX records_agent_ts ON records(agent_id, ts); CREATE INDEX records_task ON records(task);
    CREATE INDEX records_session ON records(session); CREATE INDEX records_ts ON records(ts);
    CREATE INDEX records_agent_event_ts ON records(agent_id, event, ts);
    CREATE INDEX record_tags_agent ON record_tags(agent_id, tag_kind, ts); CREATE INDEX record_tags_kind_ts ON record_tags(tag_kind, ts);`);
}

// NULLs last in both dialects (SQLite sorts them first, PostgreSQL last), so two stores' rows compare.
const ROLLUP_ORDER = 'ORDER BY fleet, day, agent_id IS NULL, agent_id, task IS NULL, task, model IS NULL, model';

/** The rows of a store's daily and per-agent rollups, in a fixed order. */
export async function rollupsOf(store: CollectorStore): Promise<{ daily: unknown[]; agents: unknown[] }> {
  return {
    daily: await store.select(`SELECT fleet, day, agent_id, task, model, calls, errors, input_tokens, output_tokens, cost_usd FROM daily_rollups ${ROLLUP_ORDER}`, []),
    agents: await store.select('SELECT fleet, agent_id, first_seen, last_seen, version, version_seen FROM agent_rollups ORDER BY 1, 2', []),
  };
}

/** What the rollups must hold, aggregated from the raw records the store holds (the queries the dashboard ran before rollups). */
export async function rawRollupsOf(store: CollectorStore): Promise<{ daily: unknown[]; agents: unknown[] }> {
  return {
    daily: await store.select(`SELECT fleet, substr(ts, 1, 10) AS day, agent_id, task, model, count(*) AS calls,
      coalesce(sum(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END), 0) AS errors, coalesce(sum(input_tokens), 0) AS input_tokens,
      coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost_usd), 0) AS cost_usd
      FROM records WHERE event = 'model_call' GROUP BY 1, 2, 3, 4, 5 ${ROLLUP_ORDER}`, []),
    // Each agent's newest version: the one with the latest record (the greater version at a tie).
    agents: await store.select(`SELECT a.fleet, a.agent_id, a.first_seen, a.last_seen, v.version, v.version_seen FROM
      (SELECT fleet, agent_id, min(ts) AS first_seen, max(ts) AS last_seen FROM records WHERE agent_id IS NOT NULL GROUP BY 1, 2) a
      LEFT JOIN (SELECT fleet, agent_id, agent_version AS version, max(ts) AS version_seen FROM records WHERE agent_version IS NOT NULL AND agent_id IS NOT NULL GROUP BY 1, 2, 3) v
        ON v.fleet = a.fleet AND v.agent_id = a.agent_id AND NOT EXISTS (SELECT 1 FROM records r WHERE r.fleet = a.fleet AND r.agent_id = a.agent_id
          AND r.agent_version IS NOT NULL AND (r.ts > v.version_seen OR (r.ts = v.version_seen AND r.agent_version > v.version)))
      ORDER BY 1, 2`, []),
  };
}

/**
 * Model calls whose ts is not what toISOString writes: a bare day (sorts before that day's midnight),
 * a space for the T, no milliseconds. Text comparison decides which range they fall in, as it does
 * for the raw queries; the rollup day is the first 10 characters.
 */
export function oddTimeCalls(): AuditEntry[] {
  const call = (ts: string, i: number): AuditEntry => ({
    event: 'model_call', ts, agent: { id: 'alpha', version: '1.1' }, task: i % 2 ? 'odd-task' : undefined, model: { asked: 'odd-model' },
    status: i === 1 ? 500 : 200, latency_ms: 1, usage: { input_tokens: 100 + i, output_tokens: i }, cost_usd: (i + 1) / 64,
  });
  return ['2025-06-10', '2025-06-11', '2025-06-10 12:00:00', '2025-06-12T00:00:00Z', '2025-06-09T23:59:59.999Z', '2025-06-14'].map(call);
}

/** The range cases: whole days, partial days at either end or both, within one day, across one midnight, midnights with odd ts at them. */
export const RANGES = [
  { from: '2025-05-16T00:00:00.000Z', to: '2025-06-16T00:00:00.000Z' },
  { from: '2025-05-20T13:37:00.000Z', to: '2025-06-14T05:00:00.000Z' },
  { from: '2025-06-10T01:00:00.000Z', to: '2025-06-10T20:00:00.000Z' },
  { from: '2025-06-09T12:00:00.000Z', to: '2025-06-10T12:00:00.000Z' },
  { from: '2025-06-09T00:00:00.000Z', to: '2025-06-11T00:00:00.000Z' },
  { from: '2025-06-10T00:00:00.000Z', to: '2025-06-12T00:00:00.000Z' },
  { from: '2025-06-11T00:00:00.000Z', to: '2025-06-15T10:30:00.000Z' },
  { from: new Date(NOW.getTime() - 30 * 86_400_000).toISOString(), to: NOW.toISOString() },
  { from: '2024-01-01T00:00:00.000Z', to: '2026-01-01T00:00:00.000Z' },
];

const isError = (e: Record<string, any>) => e.status >= 400 || e.error !== undefined || e.stream_error !== undefined;

function totals(es: Record<string, any>[]) {
  return {
    calls: es.length, errors: es.filter(isError).length, inputTokens: es.reduce((n, e) => n + e.usage.input_tokens, 0),
    outputTokens: es.reduce((n, e) => n + e.usage.output_tokens, 0), costUsd: es.reduce((n, e) => n + (e.cost_usd ?? 0), 0),
  };
}

function groupBy(es: Record<string, any>[], key: (e: Record<string, any>) => string): Map<string, Record<string, any>[]> {
  const out = new Map<string, Record<string, any>[]>();
  for (const e of es) out.set(key(e), [...(out.get(key(e)) ?? []), e]);
  return out;
}

/** An agent's calls, errors, tokens, cost, days with calls, cost per task and per model in [from, to), straight from the audit entries. */
export function expectedAgent(entries: AuditEntry[], agent: string, range: { from: string; to: string }) {
  const mine = (entries as Record<string, any>[]).filter((e) => e.event === 'model_call' && e.agent?.id === agent && e.ts >= range.from && e.ts < range.to);
  const costRows = (m: Map<string, Record<string, any>[]>): CostRow[] => [...m].map(([key, es]) => {
    const { errors: _, ...t } = totals(es);
    return { key, ...t };
  }).sort((a, b) => b.costUsd - a.costUsd || compareText(a.key, b.key));
  return {
    ...totals(mine),
    days: [...groupBy(mine, (e) => e.ts.slice(0, 10))].map(([day, es]): DailyRow => ({ day, ...totals(es) })).sort((a, b) => compareText(a.day, b.day)),
    costByTask: costRows(groupBy(mine, (e) => e.task ?? NO_TASK)),
    costByModel: costRows(groupBy(mine, (e) => e.model.served ?? e.model.asked)),
  };
}

/** The same figures from the dashboard's agent page. */
export async function actualAgent(store: CollectorStore, agent: string, range: { from: string; to: string }) {
  const d = await agentDetail(store, FLEET, agent, range);
  return {
    calls: d.calls, errors: d.errors, inputTokens: d.inputTokens, outputTokens: d.outputTokens, costUsd: d.costUsd,
    days: d.daily.filter((x) => x.calls > 0), costByTask: d.costByTask, costByModel: d.costByModel,
  };
}
