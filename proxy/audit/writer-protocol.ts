// Messages between the sidecar and its audit writer thread.
import type { ProtectionConfig } from './field-protection.ts';
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
}

export type ToWriter =
  | { type: 'append'; items: { id: number; entry: Record<string, unknown> }[] }
  | { type: 'close'; id: number; entry: Record<string, unknown> };

export type FromWriter =
  | { type: 'ready'; logId: string; size: number; checkpointed: number }
  | { type: 'committed'; ids: number[]; through: number; seconds: number; events: Record<string, number> }
  | { type: 'failed'; ids: number[]; code: string; message: string }
  | { type: 'checkpoint'; size: number }
  | { type: 'warning'; message: string }
  | { type: 'ship'; event: ShipperEvent }
  | { type: 'closed' };
