// Messages between the sidecar and its audit writer thread.
import type { SpaceReport } from './disk-space.ts';
import type { ProtectionConfig } from './field-protection.ts';
import type { ReshipFailure, ReshipOutcome } from './reship.ts';
import type { ShipperEvent } from './shipper.ts';

export interface WriterConfig {
  path: string;
  /** log_id for a new log; an existing file keeps its own. */
  logId: string;
  synchronous: 'FULL' | 'NORMAL';
  signingKeyPem: string;
  checkpointEveryRecords: number;
  checkpointEveryMs: number;
  /** Most records in one transaction. */
  maxBatch: number;
  /** Where to ship the log (WARDEN_COLLECTOR_URL / WARDEN_COLLECTOR_TOKEN); absent: keep it local. */
  collector?: { url: string; token: string };
  /** Fields to mask and encrypt in every record before it is hashed. */
  protection: ProtectionConfig;
  /** The log_open record's fields (event, ts, agent). */
  openEntry: Record<string, unknown>;
  space: SpaceConfig;
}

export interface SpaceConfig {
  /** Disk the log may use (audit.quotaBytes); absent: only the volume's free space limits it. */
  quotaBytes?: number;
  /** How long acknowledged records stay before they are pruned (audit.retainShipped). */
  retainShippedMs: number;
}

/** The record format's version, the `v` of every record. */
export const RECORD_VERSION = 1;

/** What only the writer knows of a record: its place in the chain. */
export const CHAIN_MEMBERS = ['prev_hash', 'seq'] as const;

/**
 * A record to append: its canonical text around the members only the writer knows (CHAIN_MEMBERS;
 * the sidecar canonicalizes it, since a string crosses to the writer thread far more cheaply than
 * an object graph), or, when fields must be masked or encrypted (which binds each to its seq), the
 * record's fields for the writer to protect and canonicalize.
 */
export type AppendItem =
  | { id: number; ts: string; event: string; around: string[] }
  | { id: number; entry: Record<string, unknown> };

export type ToWriter =
  | { type: 'append'; items: AppendItem[] }
  | { type: 'close'; id: number; entry: Record<string, unknown> }
  | { type: 'configure'; space: SpaceConfig }
  | { type: 'reship'; id: number };

export type FromWriter =
  | { type: 'ready'; logId: string; size: number; checkpointed: number; /** With a collector: what it has acknowledged so far. */ shippedThrough?: number }
  | { type: 'committed'; ids: number[]; through: number; seconds: number; events: Record<string, number> }
  | { type: 'failed'; ids: number[]; code: string; message: string }
  | { type: 'checkpoint'; size: number }
  | { type: 'space'; report: SpaceReport }
  | { type: 'pruned'; records: number }
  | { type: 'dead-letters'; count: number }
  | { type: 'warning'; message: string }
  | { type: 'ship'; event: ShipperEvent }
  | { type: 'reshipped'; id: number; outcomes?: ReshipOutcome[]; reason?: ReshipFailure; error?: string }
  | { type: 'closed' };
