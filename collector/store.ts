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
}

export interface LogSummary {
  logId: string;
  agent?: string;
  size: number;
  checkpointSize: number;
  lastSeen: string;
}

export interface CollectorStore {
  /** Verifies and stores one batch atomically; safe to call concurrently for the same log. */
  ingest(batch: IngestBatch, fleet: string): Promise<IngestResult>;
  records(q: RecordQuery): Promise<{ logId: string; seq: number; body: string }[]>;
  cost(groupBy: 'agent' | 'task', from?: string, to?: string): Promise<CostRow[]>;
  alerts(sinceId?: number): Promise<StoredAlert[]>;
  logs(): Promise<LogSummary[]>;
  /** Every stored record of a log in seq order, for `warden audit verify --collector`. */
  logRecords(logId: string): AsyncIterable<{ seq: number; body: string }>;
  logCheckpoints(logId: string): Promise<string[]>;
  /** The n-th (1-based) bind parameter in this store's SQL dialect, for the shared queries (dashboard-sql.ts). */
  placeholder(n: number): string;
  /** Runs one read-only query written for both dialects (dashboard-sql.ts); counts and sums come back as numbers. */
  select<T = Record<string, unknown>>(sql: string, args: unknown[]): Promise<T[]>;
  /** Adds a price to the history; records ingested from then on are priced by it, those already held never change. */
  insertPrice(price: Price): Promise<void>;
  close(): Promise<void>;
}

/**
 * The WHERE clause and arguments for a record query, shared by every store so their semantics cannot
 * drift; `placeholder(n)` renders the n-th (1-based) bind parameter in the store's dialect.
 */
export function recordFilter(q: RecordQuery, placeholder: (n: number) => string): { where: string; args: unknown[] } {
  const conditions: string[] = [];
  const args: unknown[] = [];
  const bind = (v: unknown) => {
    args.push(v);
    return placeholder(args.length);
  };
  const equal: [string, string | undefined][] = [['agent_id', q.agent], ['session', q.session], ['task', q.task], ['event', q.event], ['log_id', q.logId]];
  for (const [column, value] of equal) if (value !== undefined) conditions.push(`${column} = ${bind(value)}`);
  if (q.from !== undefined) conditions.push(`ts >= ${bind(q.from)}`);
  if (q.to !== undefined) conditions.push(`ts < ${bind(q.to)}`);
  if (q.after) conditions.push(`(log_id, seq) > (${bind(q.after.logId)}, ${bind(q.after.seq)})`);
  return { where: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', args };
}
