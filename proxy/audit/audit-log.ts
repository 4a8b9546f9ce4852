// The sidecar's side of the audit log: hands records to the writer thread in batches (one message per
// event-loop turn, not per record) and resolves each append once its record is committed. With strict
// durability the caller waits on that before releasing a response; a failed commit rejects, so no
// response goes out unrecorded.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AuditUnavailableError } from '../errors.ts';
import type { SpaceReport } from './disk-space.ts';
import type { ProtectionConfig } from './field-protection.ts';
import { ReshipError, type ReshipOutcome } from './reship.ts';
import type { SigningKey } from './signing.ts';
import { canonicalAround } from './canonical-json.ts';
import { CHAIN_MEMBERS, RECORD_VERSION, type AppendItem, type FromWriter, type SpaceConfig, type ToWriter, type WriterConfig } from './writer-protocol.ts';

export interface AuditEntry {
  event: string;
  ts: string;
  [field: string]: unknown;
}

export interface AuditStats {
  /** Records committed (this run's, the log_open included). */
  committed: number;
  /** Size of the log: the last committed seq. */
  size: number;
  checkpointed: number;
  pending: number;
  /** Records committed but not yet acknowledged by the collector (when shipping), dead-lettered ones apart. */
  unshipped?: number;
  /** Batches the collector rejected, kept in the dead_letters table (this run's and earlier ones' not yet sent again). */
  deadLettered: number;
  /** The last shipping failure, cleared by the next success. */
  shipFailure?: string;
  /** Records pruned this run (acknowledged by the collector, past retention). */
  pruned: number;
  /** Disk use against the quota and the volume's free space. */
  space?: SpaceReport;
}

export interface AuditObserver {
  committed?(events: Record<string, number>, seconds: number): void;
  warning?(message: string): void;
  failed?(code: string, message: string): void;
  /** The count of records waiting to ship changed (commits add to it, acknowledgements take from it). */
  unshipped?(count: number): void;
  shipFailed?(reason: string, detail: string): void;
  space?(report: SpaceReport, previous: SpaceReport | undefined): void;
  pruned?(records: number): void;
}

export interface AuditLog {
  readonly path: string;
  readonly logId: string;
  /** Resolves with nothing once the record is committed; rejects with AuditUnavailableError. */
  append(entry: AuditEntry): Promise<void>;
  stats(): AuditStats;
  /** False while the log has no room for more records: new calls must not start. */
  hasRoom(): boolean;
  /** New quota and retention (a policy reload). */
  configure(space: SpaceConfig): void;
  /** Sends the collector again the batches it refused (`warden audit reship`, from the writer thread). */
  reship(): Promise<ReshipOutcome[]>;
  /** Writes a log_close record and a final checkpoint, then stops the writer. */
  close(entry: AuditEntry): Promise<void>;
}

export interface AuditLogOptions {
  path: string;
  key: SigningKey;
  strict: boolean;
  openEntry: AuditEntry;
  collector?: { url: string; token: string };
  protection?: ProtectionConfig;
  space?: SpaceConfig;
  checkpointEveryRecords?: number;
  checkpointEveryMs?: number;
  observer?: AuditObserver;
}

/**
 * A log id for a new log: the ECS task ARN when known, else this host and its boot id; either way
 * with a random suffix, because two sidecars on one host (ECS on EC2) or one task's restarted
 * container must not share an id at the collector. It is stored with the log, so it lasts the file.
 */
export function defaultLogId(taskArn?: string): string {
  const suffix = randomUUID().slice(0, 8);
  if (taskArn) return `${taskArn}/${suffix}`;
  let boot: string;
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    boot = 'no-boot-id';
  }
  return `${hostname()}/${boot}/${suffix}`;
}

const DEFAULT_RETAIN_SHIPPED_MS = 7 * 24 * 3600 * 1000;

/** Starts the writer thread on `path` and resolves once the log is open (its log_open committed). */
export async function openAuditLog(opts: AuditLogOptions): Promise<AuditLog> {
  const config: WriterConfig = {
    path: opts.path,
    logId: defaultLogId(typeof (opts.openEntry.agent as { task_arn?: string })?.task_arn === 'string' ? (opts.openEntry.agent as { task_arn: string }).task_arn : undefined),
    synchronous: opts.strict ? 'FULL' : 'NORMAL',
    signingKeyPem: opts.key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    checkpointEveryRecords: opts.checkpointEveryRecords ?? 1_000,
    checkpointEveryMs: opts.checkpointEveryMs ?? 10_000,
    maxBatch: 2_000,
    collector: opts.collector,
    protection: opts.protection ?? { encrypt: [], mask: [] },
    openEntry: opts.openEntry,
    space: opts.space ?? { retainShippedMs: DEFAULT_RETAIN_SHIPPED_MS },
  };
  const worker = new Worker(new URL('./writer-worker.ts', import.meta.url), { workerData: config });
  const waiting = new Map<number, { resolve(): void; reject(err: Error): void }>();
  const reships = new Map<number, { resolve(outcomes: ReshipOutcome[]): void; reject(err: Error): void }>();
  let nextReship = 1;
  let nextId = 1;
  let outbox: AppendItem[] = [];
  // Masking and encryption bind each field to its seq, so protected records are canonicalized by the writer.
  const protecting = (opts.protection?.encrypt.length ?? 0) > 0 || (opts.protection?.mask.length ?? 0) > 0;
  let broken: Error | undefined;
  let closed: (() => void) | undefined;
  const stats: AuditStats = { committed: 0, size: 0, checkpointed: 0, pending: 0, deadLettered: 0, pruned: 0 };
  let logId = '';

  let opened = false;
  let closing = false;
  function settle(): void {
    // Before the log is open, and while it closes, the wait on the writer must keep the process alive.
    if (opened && !closing && waiting.size === 0) worker.unref();
  }

  // What the collector has acknowledged: while it is unreachable, commits still add to what waits.
  let shippedThrough: number | undefined;
  function countUnshipped(): void {
    if (shippedThrough === undefined) return;
    const count = Math.max(0, stats.size - shippedThrough);
    if (count === stats.unshipped) return;
    stats.unshipped = count;
    opts.observer?.unshipped?.(count);
  }

  function fail(err: Error): void {
    broken ??= err;
    for (const w of waiting.values()) w.reject(new AuditUnavailableError(err.message, { cause: err }));
    waiting.clear();
    for (const r of reships.values()) r.reject(new ReshipError(`the audit writer failed: ${err.message}`, 'writer'));
    reships.clear();
  }

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (msg: FromWriter) => {
      switch (msg.type) {
        case 'ready':
          logId = msg.logId;
          stats.checkpointed = msg.checkpointed;
          stats.size = msg.size;
          shippedThrough = msg.shippedThrough;
          countUnshipped();
          resolve();
          return;
        case 'committed':
          stats.committed += msg.ids.length;
          stats.size = msg.through;
          countUnshipped();
          for (const id of msg.ids) {
            waiting.get(id)?.resolve();
            waiting.delete(id);
          }
          settle();
          opts.observer?.committed?.(msg.events, msg.seconds);
          return;
        case 'failed': {
          const err = new AuditUnavailableError(`the audit log could not commit (${msg.code}: ${msg.message})`);
          for (const id of msg.ids) {
            waiting.get(id)?.reject(err);
            waiting.delete(id);
          }
          settle();
          opts.observer?.failed?.(msg.code, msg.message);
          return;
        }
        case 'checkpoint':
          stats.checkpointed = msg.size;
          return;
        case 'space': {
          const previous = stats.space;
          stats.space = msg.report;
          opts.observer?.space?.(msg.report, previous);
          return;
        }
        case 'dead-letters':
          stats.deadLettered = msg.count;
          return;
        case 'pruned':
          stats.pruned += msg.records;
          opts.observer?.pruned?.(msg.records);
          return;
        case 'warning':
          opts.observer?.warning?.(msg.message);
          return;
        case 'ship':
          if (msg.event.type === 'shipped') {
            shippedThrough = msg.event.through;
            stats.shipFailure = undefined;
            countUnshipped();
          } else if (msg.event.type === 'refill') {
            const { from, through, result, detail } = msg.event;
            opts.observer?.warning?.(`the collector lacks records ${from}..${through}, below ones it holds (restored from a backup, or a new store): ${result === 'resent' ? detail : `lost to it, ${detail}`}`);
          } else {
            // A refused batch is not shipping failing: it is kept in dead_letters (counted apart), and shipping goes on.
            if (msg.event.reason !== 'rejected') stats.shipFailure = `${msg.event.reason}: ${msg.event.detail}`;
            opts.observer?.shipFailed?.(msg.event.reason, msg.event.detail);
          }
          return;
        case 'reshipped': {
          const waiter = reships.get(msg.id);
          reships.delete(msg.id);
          if (msg.outcomes) waiter?.resolve(msg.outcomes);
          else waiter?.reject(new ReshipError(msg.error ?? 'the reship failed', msg.reason ?? 'failed'));
          return;
        }
        case 'closed':
          closed?.();
      }
    });
    worker.once('error', (err) => {
      reject(err);
      fail(err);
    });
    worker.once('exit', (code) => {
      const err = new Error(`the audit writer exited (code ${code})`);
      reject(err);
      fail(err);
      closed?.();
    });
  });
  await ready;
  opened = true;
  // The writer keeps the process alive only while records are in flight: an idle log must not hold
  // up an exit (unref after the listeners, since attaching a 'message' listener refs it again).
  worker.unref();

  function post(msg: ToWriter): void {
    worker.postMessage(msg);
  }

  function send(): void {
    const items = outbox;
    outbox = [];
    if (items.length > 0 && !broken) post({ type: 'append', items });
  }

  return {
    path: opts.path,
    get logId() {
      return logId;
    },
    append(entry) {
      if (broken) return Promise.reject(new AuditUnavailableError(broken.message, { cause: broken }));
      let around: string[] | undefined;
      try {
        if (!protecting) around = canonicalAround({ ...entry, v: RECORD_VERSION, log_id: logId }, CHAIN_MEMBERS);
      } catch (err) {
        // A value JSON cannot hold (a non-finite number): this record fails alone, before it is queued.
        return Promise.reject(new AuditUnavailableError(`the record cannot be written: ${(err as Error).message}`, { cause: err }));
      }
      const id = nextId++;
      if (waiting.size === 0) worker.ref();
      // One postMessage per event-loop turn carries every record appended during it.
      if (outbox.length === 0) setImmediate(send);
      outbox.push(around ? { id, ts: String(entry.ts), event: String(entry.event), around } : { id, entry });
      return new Promise<void>((resolve, reject) => waiting.set(id, { resolve, reject }));
    },
    stats: () => ({ ...stats, pending: waiting.size }),
    hasRoom: () => stats.space?.level !== 'full',
    configure(space) {
      if (!broken) post({ type: 'configure', space });
    },
    reship() {
      if (broken) return Promise.reject(new ReshipError(`the audit writer failed: ${broken.message}`, 'writer'));
      const id = nextReship++;
      return new Promise<ReshipOutcome[]>((resolve, reject) => {
        reships.set(id, { resolve, reject });
        post({ type: 'reship', id });
      });
    },
    async close(entry) {
      if (broken) return;
      send();
      closing = true;
      worker.ref();
      const done = new Promise<void>((resolve) => (closed = resolve));
      post({ type: 'close', id: nextId++, entry });
      await done;
      await worker.terminate();
    },
  };
}
