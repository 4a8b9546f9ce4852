// Ingest-time rollups, so the dashboard's figures cost the same whatever the number of records:
// model calls per (fleet, UTC day, agent, task, model), and per (fleet, agent) when it was first and
// last seen and its newest version. Each batch adds its own records in the transaction that stores
// them (only records actually inserted: a resent duplicate is skipped by ingest before it gets here),
// so a rollup is exactly the raw aggregate of the records held; a store upgraded from a release
// without them backfills them with the same definitions (rollupBackfill). The DDL and upserts are one
// text for both stores, like the dashboard's queries.

/** The per-record values both stores already store in `records`, as stored (PostgreSQL drops NUL). */
export interface RollupFacts {
  ts: string;
  event: string;
  agentId: string | null;
  agentVersion: string | null;
  task: string | null;
  model: string | null;
  status: number | null;
  error: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  costUsd: number | null;
}

// "An error" is an answer of 400 or more, or an error Warden told (before or during a stream): 1 per
// such call, summed. The rollups and the raw queries count with this one expression.
export const IS_ERROR = 'CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END';

export const DAILY_COLUMNS = ['fleet', 'day', 'agent_id', 'task', 'model', 'calls', 'errors', 'input_tokens', 'output_tokens', 'cost_usd'];
export const AGENT_COLUMNS = ['fleet', 'agent_id', 'first_seen', 'last_seen', 'version', 'version_seen'];

// agent, task and model may be NULL (a call without a task is grouped apart from every named one),
// and a unique index treats NULLs as distinct: the key is each value with whether it was NULL.
const DAILY_KEY = `fleet, day, coalesce(agent_id, ''), (agent_id IS NULL), coalesce(task, ''), (task IS NULL), coalesce(model, ''), (model IS NULL)`;

/** The rollups' indexes, the same DDL in both dialects (every one leads with the fleet). */
export const ROLLUP_INDEXES = `CREATE UNIQUE INDEX daily_rollups_fleet_key ON daily_rollups(${DAILY_KEY});
CREATE INDEX daily_rollups_fleet_agent_day ON daily_rollups(fleet, agent_id, day);`;

/** Adds rows (`values`: a VALUES list in DAILY_COLUMNS order) to the daily rollup. */
export function upsertDaily(values: string): string {
  return `INSERT INTO daily_rollups (${DAILY_COLUMNS.join(', ')}) VALUES ${values}
    ON CONFLICT (${DAILY_KEY}) DO UPDATE SET calls = daily_rollups.calls + excluded.calls, errors = daily_rollups.errors + excluded.errors,
    input_tokens = daily_rollups.input_tokens + excluded.input_tokens, output_tokens = daily_rollups.output_tokens + excluded.output_tokens,
    cost_usd = daily_rollups.cost_usd + excluded.cost_usd`;
}

// The newest version is the one seen at the latest ts; at a tie, the greater version (so it never
// depends on the order records arrived in). CASE rather than min/max: SQLite and PostgreSQL name those differently.
const NEWER_VERSION = `excluded.version_seen IS NOT NULL AND (agent_rollups.version_seen IS NULL OR excluded.version_seen > agent_rollups.version_seen
  OR (excluded.version_seen = agent_rollups.version_seen AND excluded.version > agent_rollups.version))`;

/** Merges rows (`values`: a VALUES list in AGENT_COLUMNS order) into the per-agent rollup. */
export function upsertAgents(values: string): string {
  return `INSERT INTO agent_rollups (${AGENT_COLUMNS.join(', ')}) VALUES ${values}
    ON CONFLICT (fleet, agent_id) DO UPDATE SET
    first_seen = CASE WHEN excluded.first_seen < agent_rollups.first_seen THEN excluded.first_seen ELSE agent_rollups.first_seen END,
    last_seen = CASE WHEN excluded.last_seen > agent_rollups.last_seen THEN excluded.last_seen ELSE agent_rollups.last_seen END,
    version = CASE WHEN ${NEWER_VERSION} THEN excluded.version ELSE agent_rollups.version END,
    version_seen = CASE WHEN ${NEWER_VERSION} THEN excluded.version_seen ELSE agent_rollups.version_seen END`;
}

/**
 * Fills empty rollups from the records already held, with ingest's definitions over the same stored
 * columns: "an error" is status >= 400 or an error told, the cost is the one the record was stored with.
 * `bytewise` is the dialect's COLLATE clause for bytewise order (PostgreSQL's agent_version has the
 * database's collation), so a tie between versions goes the way BatchRollup and the upsert decide it.
 */
export const rollupBackfill = (bytewise: string) => `
INSERT INTO daily_rollups (${DAILY_COLUMNS.join(', ')})
  SELECT fleet, substr(ts, 1, 10), agent_id, task, model, count(*), sum(${IS_ERROR}),
    coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cost_usd), 0)
  FROM records WHERE event = 'model_call' GROUP BY fleet, substr(ts, 1, 10), agent_id, task, model;
INSERT INTO agent_rollups (${AGENT_COLUMNS.join(', ')})
  SELECT fleet, agent_id, min(ts), max(ts), NULL, NULL FROM records WHERE agent_id IS NOT NULL GROUP BY fleet, agent_id;
UPDATE agent_rollups SET (version, version_seen) = (SELECT r.agent_version, r.ts FROM records r
  WHERE r.fleet = agent_rollups.fleet AND r.agent_id = agent_rollups.agent_id AND r.agent_version IS NOT NULL
  ORDER BY r.ts DESC, r.agent_version${bytewise} DESC LIMIT 1);
`;

/**
 * Text order as both stores compare it (SQLite's BINARY, PostgreSQL's "C": UTF-8 bytes, which is
 * code point order); JavaScript's `<` compares UTF-16 units, which differs past U+FFFF.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (a code point past U+FFFF) sort after U+E000..U+FFFF in code point order.
    const fix = (u: number) => (u >= 0xe000 ? u - 0x800 : u >= 0xd800 ? u + 0x2000 : u);
    return fix(x) - fix(y);
  }
  return a.length - b.length;
}

/** The first 10 characters (code points, as SQL's substr counts): the UTC day of an ISO ts. */
function dayOf(ts: string): string {
  const head = ts.slice(0, 10);
  return /[\ud800-\udfff]/.test(head) ? Array.from(ts).slice(0, 10).join('') : head;
}

interface AgentSeen {
  agentId: string;
  first: string;
  last: string;
  version: string | null;
  versionSeen: string | null;
}

/** One batch's contribution to the rollups, summed in memory and written once per row at the end of the batch. */
export class BatchRollup {
  private readonly daily = new Map<string, unknown[]>();
  private readonly agents = new Map<string, AgentSeen>();
  private readonly fleet: string;

  constructor(fleet: string) {
    this.fleet = fleet;
  }

  /** Counts one record the batch inserted. */
  add(f: RollupFacts): void {
    if (f.agentId !== null) {
      let a = this.agents.get(f.agentId);
      if (!a) this.agents.set(f.agentId, (a = { agentId: f.agentId, first: f.ts, last: f.ts, version: null, versionSeen: null }));
      if (compareText(f.ts, a.first) < 0) a.first = f.ts;
      if (compareText(f.ts, a.last) > 0) a.last = f.ts;
      if (f.agentVersion !== null) {
        const seen = a.versionSeen === null ? 1 : compareText(f.ts, a.versionSeen);
        if (seen > 0 || (seen === 0 && compareText(f.agentVersion, a.version!) > 0)) {
          a.version = f.agentVersion;
          a.versionSeen = f.ts;
        }
      }
    }
    if (f.event !== 'model_call') return;
    const day = dayOf(f.ts);
    const key = JSON.stringify([day, f.agentId, f.task, f.model]);
    let row = this.daily.get(key);
    if (!row) this.daily.set(key, (row = [this.fleet, day, f.agentId, f.task, f.model, 0, 0, 0, 0, 0]));
    (row[5] as number)++;
    if ((f.status !== null && f.status >= 400) || f.error !== null) (row[6] as number)++;
    (row[7] as number) += f.inputTokens ?? 0;
    (row[8] as number) += f.outputTokens ?? 0;
    (row[9] as number) += f.costUsd ?? 0;
  }

  /**
   * The rows to upsert, in DAILY_COLUMNS and AGENT_COLUMNS order. Sorted: concurrent PostgreSQL
   * transactions (other logs of the same agents) then lock the rows they share in the same order
   * and wait for each other instead of deadlocking.
   */
  rows(): { daily: unknown[][]; agents: unknown[][] } {
    const daily = [...this.daily].sort(([a], [b]) => compareText(a, b)).map(([, row]) => row);
    const agents = [...this.agents.values()].sort((a, b) => compareText(a.agentId, b.agentId))
      .map((a) => [this.fleet, a.agentId, a.first, a.last, a.version, a.versionSeen]);
    return { daily, agents };
  }
}
