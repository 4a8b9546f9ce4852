// The collector's storage contract. SQLite (one process, one file) and PostgreSQL (stateless
// replicas over one database) implement it; ingest verification is shared (ingest.ts).
import type { IngestBatch, IngestResult, IntegrityAlert } from './ingest.ts';

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
  close(): Promise<void>;
}
