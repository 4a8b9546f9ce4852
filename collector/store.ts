// The collector's storage contract. SQLite (one process, one file) and PostgreSQL (stateless
// replicas over one database) implement it; ingest verification is shared (ingest.ts).
import type { IngestBatch, IngestResult, IntegrityAlert } from './ingest.ts';
import type { Price } from './dashboard-types.ts';

export interface RecordQuery {
  agent?: string;
  session?: string;
  task?: string;
  event?: string;
  logId?: string;
  /** ISO timestamps, inclusive from, exclusive to. */
  from?: string;
  to?: string;
  /** Records after this (log_id, seq) cursor, for paging. */
  after?: { logId: string; seq: number };
  limit: number;
}

export interface CostRow {
  key: string;
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface StoredAlert extends IntegrityAlert {
  id: number;
  at: string;
  /** When it stopped holding: a gap whose records all arrived later. */
  resolvedAt?: string;
}

/** A stored alert as the API shows it: resolvedAt only when it is resolved. */
export function withoutNullResolved({ resolvedAt, ...alert }: Omit<StoredAlert, 'resolvedAt'> & { resolvedAt: string | null }): StoredAlert {
  return resolvedAt === null ? alert : { ...alert, resolvedAt };
}

export interface LogSummary {
  logId: string;
  agent?: string;
  size: number;
  checkpointSize: number;
  lastSeen: string;
}

export interface CollectorStore {
  /**
   * Verifies and stores one batch atomically; safe to call concurrently for the same log. A log
   * belongs to the fleet that first shipped it: another fleet's batch for it is refused (ForeignLogError).
   */
  ingest(batch: IngestBatch, fleet: string): Promise<IngestResult>;
  // Every read is one fleet's: a fleet token sees its own logs, records, costs, alerts and prices only.
  records(fleet: string, q: RecordQuery): Promise<{ logId: string; seq: number; body: string }[]>;
  cost(fleet: string, groupBy: 'agent' | 'task', from?: string, to?: string): Promise<CostRow[]>;
  alerts(fleet: string, sinceId?: number): Promise<StoredAlert[]>;
  logs(fleet: string): Promise<LogSummary[]>;
  /** Every stored record of one of the fleet's logs in seq order, for `warden audit verify --collector`; none for another fleet's. */
  logRecords(fleet: string, logId: string): AsyncIterable<{ seq: number; body: string }>;
  logCheckpoints(fleet: string, logId: string): Promise<string[]>;
  /** The records refused for their place in one of the fleet's logs, kept as evidence; none for another fleet's. */
  logConflicts(fleet: string, logId: string): Promise<{ seq: number; body: string; receivedAt: string }[]>;
  /** The n-th (1-based) bind parameter in this store's SQL dialect, for the shared queries (dashboard-sql.ts). */
  placeholder(n: number): string;
  /** Runs one read-only query written for both dialects (dashboard-sql.ts); counts and sums come back as numbers. */
  select<T = Record<string, unknown>>(sql: string, args: unknown[]): Promise<T[]>;
  /**
   * Adds a price to the fleet's history; its records ingested from then on are priced by it, those
   * already held never change, and other fleets' prices are untouched.
   */
  insertPrice(fleet: string, price: Price): Promise<void>;
  close(): Promise<void>;
}

/**
 * The WHERE clause and arguments for one fleet's record query, shared by every store so their
 * semantics cannot drift; `placeholder(n)` renders the n-th (1-based) bind parameter in the store's dialect.
 */
export function recordFilter(fleet: string, q: RecordQuery, placeholder: (n: number) => string): { where: string; args: unknown[] } {
  const conditions: string[] = [];
  const args: unknown[] = [];
  const bind = (v: unknown) => {
    args.push(v);
    return placeholder(args.length);
  };
  const equal: [string, string | undefined][] = [['fleet', fleet], ['agent_id', q.agent], ['session', q.session], ['task', q.task], ['event', q.event], ['log_id', q.logId]];
  for (const [column, value] of equal) if (value !== undefined) conditions.push(`${column} = ${bind(value)}`);
  if (q.from !== undefined) conditions.push(`ts >= ${bind(q.from)}`);
  if (q.to !== undefined) conditions.push(`ts < ${bind(q.to)}`);
  if (q.after) conditions.push(`(log_id, seq) > (${bind(q.after.logId)}, ${bind(q.after.seq)})`);
  return { where: `WHERE ${conditions.join(' AND ')}`, args };
}

/** The indexes fleet-scoped reads use, the same DDL in both dialects: each leads with the fleet. */
export const FLEET_INDEXES = `CREATE INDEX records_fleet_agent_event_ts ON records(fleet, agent_id, event, ts);
CREATE INDEX records_fleet_agent_ts ON records(fleet, agent_id, ts);
CREATE INDEX records_fleet_event_ts ON records(fleet, event, ts);
CREATE INDEX records_fleet_ts ON records(fleet, ts);
CREATE INDEX records_fleet_log ON records(fleet, log_id, seq);
CREATE INDEX records_fleet_task ON records(fleet, task);
CREATE INDEX records_fleet_session ON records(fleet, session);
CREATE INDEX record_tags_fleet_agent ON record_tags(fleet, agent_id, tag_kind, ts);
CREATE INDEX record_tags_fleet_kind_ts ON record_tags(fleet, tag_kind, ts);
CREATE INDEX alerts_fleet ON alerts(fleet, id);`;

/** The indexes from before reads were scoped by fleet, dropped by the upgrade (a fleet's query cannot use them). */
export const PRE_FLEET_INDEXES = ['records_agent_ts', 'records_task', 'records_session', 'records_ts', 'records_agent_event_ts', 'record_tags_agent', 'record_tags_kind_ts'];
