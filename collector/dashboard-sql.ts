// The dashboard's queries, one text for both stores: `p(n)` renders the n-th bind parameter in the
// store's dialect (as recordFilter does). Calls, errors, tokens and cost come from the rollups kept at
// ingest (rollups.ts: per UTC day, so a page reads days, not records), plus the raw records of at
// most the two partial days at a range's edges; the rest are aggregates over indexed columns
// extracted at ingest (record-facts.ts); only the few drift, evaluation and escalation records of one
// agent are read back as bodies. Aliases are double-quoted so PostgreSQL keeps their case; ts is ISO text
// in both stores, so a UTC day is substr(ts, 1, 10) and ranges compare as text. Every query is one
// fleet's (its first condition, the first column of the indexes it uses): no fleet reads another's.
import { IS_ERROR } from './rollups.ts';
import { recordFilter, type RecordQuery } from './store.ts';

export type Placeholder = (n: number) => string;

export interface Sql {
  sql: string;
  args: unknown[];
}

/** A query's text and arguments: `bind` appends an argument and returns its placeholder. */
function build(p: Placeholder, render: (bind: (v: unknown) => string) => string): Sql {
  const args: unknown[] = [];
  const sql = render((v) => {
    args.push(v);
    return p(args.length);
  });
  return { sql, args };
}

const TOTALS = `count(*) AS calls, coalesce(sum(${IS_ERROR}), 0) AS errors,
  coalesce(sum(input_tokens), 0) AS "inputTokens", coalesce(sum(output_tokens), 0) AS "outputTokens", coalesce(sum(cost_usd), 0) AS "costUsd"`;

export interface TotalsRow {
  calls: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

// The same totals summed over rollup rows.
const ROLLUP_TOTALS = `sum(calls) AS calls, sum(errors) AS errors, sum(input_tokens) AS "inputTokens", sum(output_tokens) AS "outputTokens",
  sum(cost_usd) AS "costUsd"`;

/**
 * Model calls per agent per UTC day from day `fromDay` up to (not including) `toDay`, from the daily
 * rollup: the overview's every figure but violations. Exactly the raw records with
 * fromDay <= ts < toDay, whatever a ts holds: for a 10-character day D, ts >= D exactly when its
 * first 10 characters (its rollup day) are >= D, and likewise for <.
 */
export function fleetDaily(p: Placeholder, fleet: string, fromDay: string, toDay: string): Sql {
  return build(p, (bind) => `SELECT agent_id AS agent, day, ${ROLLUP_TOTALS} FROM daily_rollups
    WHERE fleet = ${bind(fleet)} AND day >= ${bind(fromDay)} AND day < ${bind(toDay)} GROUP BY 1, 2`);
}

/** The fleet's agents (every agent_id a record of the fleet named), each with its newest version and last-seen time. */
export function fleetAgents(p: Placeholder, fleet: string): Sql {
  return build(p, (bind) => `SELECT agent_id AS agent, version, last_seen AS "lastSeen" FROM agent_rollups WHERE fleet = ${bind(fleet)}`);
}

/** Tags of one kind per agent in [from, to). */
export function fleetTagCounts(p: Placeholder, fleet: string, kind: string, from: string, to: string): Sql {
  return build(p, (bind) => `SELECT agent_id AS agent, count(*) AS count FROM record_tags
    WHERE fleet = ${bind(fleet)} AND tag_kind = ${bind(kind)} AND ts >= ${bind(from)} AND ts < ${bind(to)} AND agent_id IS NOT NULL GROUP BY 1`);
}

export function alertCount(p: Placeholder, fleet: string): Sql {
  return build(p, (bind) => `SELECT count(*) AS count FROM alerts WHERE fleet = ${bind(fleet)} AND resolved_at IS NULL`);
}

/** One agent's model calls per UTC day for the whole days [fromDay, toDay), from the daily rollup. */
export function agentDaily(p: Placeholder, fleet: string, agent: string, fromDay: string, toDay: string): Sql {
  return build(p, (bind) => `SELECT day, ${ROLLUP_TOTALS} FROM daily_rollups
    WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND day >= ${bind(fromDay)} AND day < ${bind(toDay)} GROUP BY 1`);
}

/** One agent's model calls for the whole days [fromDay, toDay) grouped by task or model, from the daily rollup; none groups under `missing`. */
export function agentCostBy(p: Placeholder, fleet: string, column: 'task' | 'model', missing: string, agent: string, fromDay: string, toDay: string): Sql {
  return build(p, (bind) => `SELECT coalesce(${column}, ${bind(missing)}) AS key, ${ROLLUP_TOTALS} FROM daily_rollups
    WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND day >= ${bind(fromDay)} AND day < ${bind(toDay)} GROUP BY 1`);
}

/** One agent's model calls in [from, to) from the raw records, by UTC day, task and model: a range's partial days. */
export function agentCallsRaw(p: Placeholder, fleet: string, agent: string, from: string, to: string): Sql {
  return build(p, (bind) => `SELECT substr(ts, 1, 10) AS day, task, model, ${TOTALS} FROM records
    WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND event = 'model_call' AND ts >= ${bind(from)} AND ts < ${bind(to)} GROUP BY 1, 2, 3`);
}

/** One agent's model-call latencies in [from, to) at the ranks latencySummary reads (p50, p90, p99, max), with their count. */
export function agentLatencies(p: Placeholder, fleet: string, agent: string, from: string, to: string): Sql {
  // Nearest-rank percentiles ranked in the database, so a busy agent's page reads four rows, not
  // every call's latency; ceil(pct·n/100) in integer arithmetic, the same in both dialects.
  return build(p, (bind) => `SELECT n, rn, ms FROM (
      SELECT latency_ms AS ms, row_number() OVER (ORDER BY latency_ms) AS rn, count(*) OVER () AS n FROM records
      WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND event = 'model_call' AND ts >= ${bind(from)} AND ts < ${bind(to)} AND latency_ms IS NOT NULL
    ) ranked WHERE rn IN ((50 * n + 99) / 100, (90 * n + 99) / 100, (99 * n + 99) / 100, n)`);
}

/** The versions one agent ran in [from, to), first seen first. */
export function agentVersions(p: Placeholder, fleet: string, agent: string, from: string, to: string): Sql {
  return build(p, (bind) => `SELECT agent_version AS version, min(ts) AS "firstSeen" FROM records
    WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND ts >= ${bind(from)} AND ts < ${bind(to)} AND agent_version IS NOT NULL GROUP BY 1`);
}

/** One agent's tags of one kind in [from, to), counted by tag and tool. */
export function agentTagCounts(p: Placeholder, fleet: string, kind: string, agent: string, from: string, to: string): Sql {
  return build(p, (bind) => `SELECT tag AS kind, tool, count(*) AS count FROM record_tags
    WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND tag_kind = ${bind(kind)} AND ts >= ${bind(from)} AND ts < ${bind(to)} GROUP BY 1, 2`);
}

/** The newest `limit` records of some events for one agent in [from, to), with their bodies. */
export function agentEvents(p: Placeholder, fleet: string, events: string[], agent: string, from: string, to: string, limit: number): Sql {
  return build(p, (bind) => `SELECT log_id AS "logId", seq, ts, body FROM records
    WHERE fleet = ${bind(fleet)} AND agent_id = ${bind(agent)} AND event IN (${events.map(bind).join(', ')}) AND ts >= ${bind(from)} AND ts < ${bind(to)}
    ORDER BY ts DESC, log_id DESC, seq DESC LIMIT ${bind(limit)}`);
}

const ROW_COLUMNS = `log_id AS "logId", seq, ts, event, agent_id AS agent, session, task, model, status, latency_ms AS "latencyMs",
  cost_usd AS "costUsd", verified`;

/** One page of the audit search, in (log_id, seq) order after the query's cursor. */
export function recordRows(p: Placeholder, fleet: string, q: RecordQuery): Sql {
  const { where, args } = recordFilter(fleet, q, p);
  return { sql: `SELECT ${ROW_COLUMNS} FROM records ${where} ORDER BY log_id, seq LIMIT ${p(args.length + 1)}`, args: [...args, q.limit] };
}

/** One record's row and exact text, if it is the fleet's. */
export function recordRow(p: Placeholder, fleet: string, logId: string, seq: number): Sql {
  return build(p, (bind) => `SELECT ${ROW_COLUMNS}, body FROM records WHERE log_id = ${bind(logId)} AND seq = ${bind(seq)} AND fleet = ${bind(fleet)}`);
}

/**
 * The fleet's newest price of each model (the highest id: two changes in one millisecond stay
 * ordered). Prices set before prices were per fleet have no fleet and apply to every fleet until it
 * sets its own: no such price is written any more, so any fleet's price has a higher id and wins.
 */
export function currentPrices(p: Placeholder, fleet: string): Sql {
  return build(p, (bind) => `SELECT model, input_per_mtok AS "inputPerMTok", output_per_mtok AS "outputPerMTok", since FROM prices
    WHERE id IN (SELECT max(id) FROM prices WHERE fleet = ${bind(fleet)} OR fleet IS NULL GROUP BY model)`);
}
