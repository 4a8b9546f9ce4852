// The collector dashboard's figures, from either store: calls, errors, tokens and cost from the
// rollups kept at ingest (rollups.ts) plus a range's partial edge days, the rest aggregates over the
// columns and tags extracted at ingest (dashboard-sql.ts), never a parse of every record, so a page
// over a large store stays fast. Only one agent's few drift, evaluation and escalation records are read whole.
// Everything is one fleet's (the signed-in one): its records, alerts and prices, no other's.
import { InvalidRequestError } from '../proxy/errors.ts';
import { driftSummary, escalationRows, parsed, type BodyRow } from './dashboard-events.ts';
import * as q from './dashboard-sql.ts';
import { compareText } from './rollups.ts';
import type { Sql, TotalsRow } from './dashboard-sql.ts';
import type {
  AgentDetail, AgentRow, CostRow, DailyRow, FleetOverview, KindCount, LatencySummary, Price, Range,
  RecordPage, RecordRow, TrustPoint,
} from './dashboard-types.ts';
import type { CollectorStore, RecordQuery } from './store.ts';

const DAY_MS = 86_400_000;
/** The overview's chart: this many UTC days up to today. */
const DAILY_DAYS = 30;
/** A range longer than this is charted only over the days that have calls (no years of zeros). */
const MAX_FILLED_DAYS = 3_660;
// Drift, evaluation and escalation records are rare (a handful a day); past these, the newest are shown.
const MAX_DRIFT = 500;
const MAX_TRUST = 2_000;
const MAX_ESCALATION_RECORDS = 5_000;
/** The key cost per task groups model calls that carried no task under. */
export const NO_TASK = '(no task)';
const NO_MODEL = '(unknown model)';

function select<T>(store: CollectorStore, query: Sql): Promise<T[]> {
  return store.select<T>(query.sql, query.args);
}

function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00.000Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Every UTC day from `first` to `last`, both included. */
function daysBetween(first: string, last: string): string[] {
  const days: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) days.push(d);
  return days;
}

function emptyDay(day: string): DailyRow {
  return { day, calls: 0, errors: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
}

function addTotals(into: TotalsRow, row: TotalsRow): void {
  into.calls += row.calls;
  into.errors += row.errors;
  into.inputTokens += row.inputTokens;
  into.outputTokens += row.outputTokens;
  into.costUsd += row.costUsd;
}

/** The fleet: today's and this month's calls, errors and cost (UTC, from `now`), 30 days of history, each agent. */
export async function fleetOverview(store: CollectorStore, fleet: string, now: Date): Promise<FleetOverview> {
  const p = store.placeholder.bind(store);
  const today = now.toISOString().slice(0, 10);
  const tomorrow = addDays(today, 1);
  const monthStart = `${today.slice(0, 7)}-01`;
  const firstDay = addDays(today, 1 - DAILY_DAYS);
  const from = monthStart < firstDay ? monthStart : firstDay;
  const [rows, agents, violations, alerts] = await Promise.all([
    select<TotalsRow & { agent: string | null; day: string }>(store, q.fleetDaily(p, fleet, from, tomorrow)),
    select<{ agent: string; version: string | null; lastSeen: string }>(store, q.fleetAgents(p, fleet)),
    select<{ agent: string; count: number }>(store, q.fleetTagCounts(p, fleet, 'violation', monthStart, tomorrow)),
    select<{ count: number }>(store, q.alertCount(p, fleet)),
  ]);

  // One row per agent from the per-agent rollup, its newest version already chosen at ingest.
  const byAgent = new Map<string, AgentRow>();
  for (const a of agents) {
    const row: AgentRow = { agent: a.agent, calls: 0, errors: 0, costToday: 0, costMonth: 0, violations: 0, lastSeen: a.lastSeen };
    if (a.version !== null) row.version = a.version;
    byAgent.set(a.agent, row);
  }
  const daily = new Map(daysBetween(firstDay, today).map((d) => [d, emptyDay(d)]));
  const month = emptyDay(monthStart);
  const todayTotals = emptyDay(today);
  for (const r of rows) {
    const day = daily.get(r.day);
    if (day) addTotals(day, r);
    if (r.day >= monthStart) addTotals(month, r);
    if (r.day === today) addTotals(todayTotals, r);
    const agent = r.agent === null ? undefined : byAgent.get(r.agent);
    if (!agent || r.day < monthStart) continue;
    agent.calls += r.calls;
    agent.errors += r.errors;
    agent.costMonth += r.costUsd;
    if (r.day === today) agent.costToday += r.costUsd;
  }
  for (const v of violations) {
    const agent = byAgent.get(v.agent);
    if (agent) agent.violations = v.count;
  }
  const agentRows: AgentRow[] = [...byAgent.values()]
    .sort((a, b) => b.costMonth - a.costMonth || compareText(a.agent, b.agent));
  return {
    now: now.toISOString(),
    agents: agentRows.length,
    callsToday: todayTotals.calls,
    errorsToday: todayTotals.errors,
    costToday: todayTotals.costUsd,
    callsMonth: month.calls,
    errorsMonth: month.errors,
    costMonth: month.costUsd,
    daily: [...daily.values()],
    agentRows,
    alerts: alerts[0]?.count ?? 0,
  };
}

/** The summary from agentLatencies' rows: each wanted rank (1-based) with its latency, and the count. */
export function latencySummary(rows: readonly { n: number; rn: number; ms: number }[]): LatencySummary {
  const n = rows[0]?.n ?? 0;
  const at = (rank: number) => rows.find((r) => r.rn === rank)?.ms ?? 0;
  const rank = (pct: number) => at(Math.floor((pct * n + 99) / 100));
  return { count: n, p50: rank(50), p90: rank(90), p99: rank(99), max: at(n) };
}

function costRows(rows: (TotalsRow & { key: string })[]): CostRow[] {
  return rows
    .map((r) => ({ key: r.key, calls: r.calls, inputTokens: r.inputTokens, outputTokens: r.outputTokens, costUsd: r.costUsd }))
    .sort((a, b) => b.costUsd - a.costUsd || compareText(a.key, b.key));
}

function kindCounts(rows: { kind: string; tool: string | null; count: number }[]): KindCount[] {
  return rows
    .map((r) => (r.tool === null ? { kind: r.kind, count: r.count } : { kind: r.kind, tool: r.tool, count: r.count }))
    .sort((a, b) => b.count - a.count || compareText(a.kind, b.kind) || compareText(a.tool ?? '', b.tool ?? ''));
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * [from, to) as the whole UTC days [fromDay, toDay) the daily rollup answers for, and the raw ranges
 * around them, so that together they hold exactly the records from <= ts < to (ts compared as text,
 * as the raw queries do). The split points are bare days: a ts is >= a day D exactly when its rollup
 * day (first 10 characters) is, whatever else it holds, so no record is counted twice or missed. The
 * lower edge runs to the day after from's day (a whole day when from is a midnight: the day string
 * D sorts before "DT00:00:00.000Z", so day D is not entirely inside the range), the upper edge from
 * to's day: at most two days of one agent's records are read raw, however long the range.
 */
export function splitRange(from: string, to: string): { days?: { from: string; to: string }; raw: Range[] } {
  const fromDay = from.slice(0, 10);
  const toDay = to.slice(0, 10);
  if (!DAY.test(fromDay) || !DAY.test(toDay) || Number.isNaN(Date.parse(fromDay))) return { raw: [{ from, to }] };
  const firstWhole = addDays(fromDay, 1);
  if (!DAY.test(firstWhole) || firstWhole >= toDay) return { raw: [{ from, to }] };
  return { days: { from: firstWhole, to: toDay }, raw: [{ from, to: firstWhole }, { from: toDay, to }] };
}

function addTo(rows: Map<string, TotalsRow & { key: string }>, key: string, row: TotalsRow): void {
  let into = rows.get(key);
  if (!into) rows.set(key, (into = { key, calls: 0, errors: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 }));
  addTotals(into, row);
}

/**
 * One agent's model calls in [from, to) by UTC day, task and model: the rollup's whole days plus the
 * raw records of the partial days at the edges, equal to aggregating every raw record of the range.
 */
async function agentCalls(store: CollectorStore, fleet: string, agent: string, from: string, to: string) {
  const p = store.placeholder.bind(store);
  const { days, raw } = splitRange(from, to);
  const none = Promise.resolve([]);
  const [daily, byTask, byModel, ...edges] = await Promise.all([
    days ? select<TotalsRow & { day: string }>(store, q.agentDaily(p, fleet, agent, days.from, days.to)) : none,
    days ? select<TotalsRow & { key: string }>(store, q.agentCostBy(p, fleet, 'task', NO_TASK, agent, days.from, days.to)) : none,
    days ? select<TotalsRow & { key: string }>(store, q.agentCostBy(p, fleet, 'model', NO_MODEL, agent, days.from, days.to)) : none,
    ...raw.map((r) => select<TotalsRow & { day: string; task: string | null; model: string | null }>(store, q.agentCallsRaw(p, fleet, agent, r.from, r.to))),
  ]);
  const tasks = new Map<string, TotalsRow & { key: string }>();
  const models = new Map<string, TotalsRow & { key: string }>();
  for (const r of byTask) addTo(tasks, r.key, r);
  for (const r of byModel) addTo(models, r.key, r);
  for (const r of edges.flat()) {
    daily.push(r);
    // As the rollup query's coalesce(task, missing) groups them.
    addTo(tasks, r.task ?? NO_TASK, r);
    addTo(models, r.model ?? NO_MODEL, r);
  }
  return { daily, byTask: [...tasks.values()], byModel: [...models.values()] };
}

/** One agent over a range: calls, cost by task and model, latency, violations, hallucination signals, drift, trust, escalations. */
export async function agentDetail(store: CollectorStore, fleet: string, agent: string, range: Range): Promise<AgentDetail> {
  const p = store.placeholder.bind(store);
  const { from, to } = range;
  const [{ daily, byTask, byModel }, latencies, versions, violations, hallucinations, drift, trust, escalations] = await Promise.all([
    agentCalls(store, fleet, agent, from, to),
    select<{ n: number; rn: number; ms: number }>(store, q.agentLatencies(p, fleet, agent, from, to)),
    select<{ version: string; firstSeen: string }>(store, q.agentVersions(p, fleet, agent, from, to)),
    select<{ kind: string; tool: string | null; count: number }>(store, q.agentTagCounts(p, fleet, 'violation', agent, from, to)),
    select<{ kind: string; tool: string | null; count: number }>(store, q.agentTagCounts(p, fleet, 'hallucination', agent, from, to)),
    select<BodyRow>(store, q.agentEvents(p, fleet, ['drift'], agent, from, to, MAX_DRIFT)),
    select<BodyRow>(store, q.agentEvents(p, fleet, ['evaluation', 'drift'], agent, from, to, MAX_TRUST)),
    select<BodyRow>(store, q.agentEvents(p, fleet, ['escalation'], agent, from, to, MAX_ESCALATION_RECORDS)),
  ]);

  const totals = emptyDay('');
  const days = new Map<string, DailyRow>();
  const firstDay = from.slice(0, 10);
  const lastDay = new Date(Date.parse(to) - 1).toISOString().slice(0, 10);
  const filled = Date.parse(lastDay) - Date.parse(firstDay) <= MAX_FILLED_DAYS * DAY_MS;
  if (filled) for (const d of daysBetween(firstDay, lastDay)) days.set(d, emptyDay(d));
  for (const r of daily) {
    addTotals(totals, r);
    let day = days.get(r.day);
    if (!day) days.set(r.day, (day = emptyDay(r.day)));
    addTotals(day, r);
  }
  const escalationList = escalationRows(escalations);
  const outcomes = new Map<string, number>();
  for (const e of escalationList) outcomes.set(e.outcome, (outcomes.get(e.outcome) ?? 0) + 1);

  return {
    agent,
    range: { from, to },
    versions: versions.sort((a, b) => compareText(a.firstSeen, b.firstSeen)).map((v) => v.version),
    calls: totals.calls,
    errors: totals.errors,
    costUsd: totals.costUsd,
    inputTokens: totals.inputTokens,
    outputTokens: totals.outputTokens,
    daily: [...days.values()].sort((a, b) => compareText(a.day, b.day)),
    costByTask: costRows(byTask),
    costByModel: costRows(byModel),
    latency: latencySummary(latencies),
    violations: kindCounts(violations),
    hallucinations: kindCounts(hallucinations),
    drift: parsed(drift).map(({ r, logId, seq, ts }) => ({ ts, ...driftSummary(r), logId, seq })),
    trust: parsed(trust).flatMap(({ r, ts }): TrustPoint[] => (typeof r.trust_score === 'number' && Number.isFinite(r.trust_score) ? [{ ts, score: r.trust_score }] : []))
      .reverse(),
    escalations: escalationList,
    escalationOutcomes: [...outcomes].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count || compareText(a.kind, b.kind)),
  };
}

type RowColumns = Omit<RecordRow, 'agent' | 'session' | 'task' | 'model' | 'status' | 'latencyMs' | 'costUsd' | 'verified'> & {
  agent: string | null; session: string | null; task: string | null; model: string | null; status: number | null;
  latencyMs: number | null; costUsd: number | null; verified: boolean | number;
};

function recordRow(r: RowColumns): RecordRow {
  const row: RecordRow = { logId: r.logId, seq: r.seq, ts: r.ts, event: r.event, verified: Boolean(r.verified) };
  if (r.agent !== null) row.agent = r.agent;
  if (r.session !== null) row.session = r.session;
  if (r.task !== null) row.task = r.task;
  if (r.model !== null) row.model = r.model;
  if (r.status !== null) row.status = r.status;
  if (r.latencyMs !== null) row.latencyMs = r.latencyMs;
  if (r.costUsd !== null) row.costUsd = r.costUsd;
  return row;
}

/** One page of the audit search in (log_id, seq) order; `next` resumes after its last row (the /v1/records cursor). */
export async function searchRecords(store: CollectorStore, fleet: string, query: RecordQuery): Promise<RecordPage> {
  const rows = (await select<RowColumns>(store, q.recordRows(store.placeholder.bind(store), fleet, query))).map(recordRow);
  const last = rows.at(-1);
  return { rows, next: rows.length === query.limit && last ? `${last.logId}:${last.seq}` : null };
}

/** One record's row and exact stored text, or undefined when the collector does not hold it for this fleet. */
export async function recordDetail(store: CollectorStore, fleet: string, logId: string, seq: number): Promise<{ row: RecordRow; body: string } | undefined> {
  if (!Number.isSafeInteger(seq)) return undefined;
  const [r] = await select<RowColumns & { body: string }>(store, q.recordRow(store.placeholder.bind(store), fleet, logId, seq));
  return r && { row: recordRow(r), body: r.body };
}

/** The fleet's current price of each model the collector prices for it, by model name. */
export async function listPrices(store: CollectorStore, fleet: string): Promise<Price[]> {
  return (await select<Price>(store, q.currentPrices(store.placeholder.bind(store), fleet))).sort((a, b) => compareText(a.model, b.model));
}

/** What is wrong with a price, if anything: one rule for the form and for every other caller. */
export function priceProblems(price: Omit<Price, 'since'>): string[] {
  const problems: string[] = [];
  if (typeof price.model !== 'string' || price.model.trim() === '' || price.model.length > 200 || /[\u0000-\u001f]/.test(price.model)) {
    problems.push('model must be a name of 1 to 200 characters without control characters');
  }
  for (const key of ['inputPerMTok', 'outputPerMTok'] as const) {
    const v = price[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1_000_000) problems.push(`${key} must be a number of USD per million tokens, 0 to 1,000,000`);
  }
  return problems;
}

/**
 * Makes `price` the model's current price for the fleet from `now`: the fleet's model calls the
 * sidecar did not price are priced with it when ingested; records already stored keep what they
 * were stored with, and other fleets keep their own prices.
 */
export async function setPrice(store: CollectorStore, fleet: string, price: Omit<Price, 'since'>, now: Date): Promise<Price> {
  const problems = priceProblems(price);
  if (problems.length > 0) throw new InvalidRequestError(`invalid price: ${problems.join('; ')}`);
  const stored: Price = { model: price.model, inputPerMTok: price.inputPerMTok, outputPerMTok: price.outputPerMTok, since: now.toISOString() };
  await store.insertPrice(fleet, stored);
  return stored;
}
