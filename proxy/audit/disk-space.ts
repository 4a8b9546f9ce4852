// How close the audit log is to running out of room: its share of the policy's quota, the free space
// on its volume, and whether SQLite has just said SQLITE_FULL. Runs in the writer thread, which owns
// the database. The sidecar refuses new calls at `full` rather than make calls it cannot record.
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db } from './store.ts';

export type SpaceLevel = 'ok' | 'warn' | 'full';

export interface SpaceReport {
  level: SpaceLevel;
  /** Live database pages (the write-ahead log comes on top, bounded by JOURNAL_LIMIT_BYTES). */
  usedBytes: number;
  quotaBytes?: number;
  /** Free space on the log's volume, when last measured. */
  freeBytes?: number;
  /** Why the level is not ok. */
  reason?: string;
}

/** At this share of the quota the log warns (metric, /status yellow): time to ship, prune or grow. */
export const WARN_RATIO = 0.7;
/** Below this much free space on the volume, new calls are refused: SQLite still needs room for WAL frames. */
export const VOLUME_RESERVE_BYTES = 1024 * 1024;
// SQLite's own page-count ceiling, to lift the hard cap when the quota is removed.
const NO_PAGE_LIMIT = 4294967294;

/**
 * The write-ahead log is not counted against the quota (SQLite checkpoints it into the database every
 * ~4 MiB of commits), but it is truncated back to this size after each checkpoint so it stays small.
 */
export const JOURNAL_LIMIT_BYTES = 4 * 1024 * 1024;

export class DiskSpace {
  private readonly db: Db;
  private readonly dir: string;
  private quota: number | undefined;
  private freeBytes: number | undefined;
  // SQLite said SQLITE_FULL: the volume (or a limit statfs cannot see) ran out, whatever the numbers say.
  private fullSince: number | undefined;

  constructor(db: Db, path: string, quotaBytes: number | undefined) {
    this.db = db;
    db.pragma(`journal_size_limit = ${JOURNAL_LIMIT_BYTES}`);
    this.dir = dirname(path);
    this.setQuota(quotaBytes);
  }

  /**
   * The quota is enforced twice: softly, new calls are refused once the log's use reaches it; hard,
   * the database cannot grow past it plus a headroom for the calls already in flight (SQLITE_FULL,
   * which fails their commit, so under strict durability they get a 503 rather than go unrecorded).
   */
  setQuota(quotaBytes: number | undefined): void {
    this.quota = quotaBytes;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const headroom = quotaBytes === undefined ? 0 : Math.min(Math.max(quotaBytes * 0.1, 1024 * 1024), 64 * 1024 * 1024);
    this.db.pragma(`max_page_count = ${quotaBytes === undefined ? NO_PAGE_LIMIT : Math.ceil((quotaBytes + headroom) / pageSize)}`);
  }

  /** Whether a commit can change the level: only with a quota, or after a SQLITE_FULL. */
  get watching(): boolean {
    return this.quota !== undefined || this.fullSince !== undefined;
  }

  /** A commit failed with SQLITE_FULL. */
  noteFull(): void {
    this.fullSince ??= Date.now();
  }

  usedBytes(): number {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const pages = (this.db.pragma('page_count', { simple: true }) as number) - (this.db.pragma('freelist_count', { simple: true }) as number);
    return pages * pageSize;
  }

  /**
   * Where the log stands. `measureVolume` also asks the file system for free space (a syscall, so on
   * the housekeeping tick, not after every commit), and is what lets a SQLITE_FULL clear: once the
   * volume has room again and the quota allows, new calls are let through to try.
   */
  report(measureVolume: boolean): SpaceReport {
    const usedBytes = this.usedBytes();
    if (measureVolume) {
      try {
        const fs = statfsSync(this.dir);
        this.freeBytes = fs.bavail * fs.bsize;
      } catch {
        this.freeBytes = undefined;
      }
    }
    const base = { usedBytes, quotaBytes: this.quota, freeBytes: this.freeBytes };
    const overQuota = this.quota !== undefined && usedBytes >= this.quota;
    const volumeLow = this.freeBytes !== undefined && this.freeBytes < VOLUME_RESERVE_BYTES;
    if (measureVolume && this.fullSince !== undefined && !overQuota && !volumeLow) this.fullSince = undefined;
    if (overQuota) return { ...base, level: 'full', reason: `the audit log uses ${mib(usedBytes)} of its ${mib(this.quota!)} quota (audit.quotaBytes)` };
    if (volumeLow) return { ...base, level: 'full', reason: `the audit log's volume has ${mib(this.freeBytes!)} free` };
    if (this.fullSince !== undefined) return { ...base, level: 'full', reason: `SQLite reported the disk full (SQLITE_FULL) at ${new Date(this.fullSince).toISOString()}` };
    if (this.quota !== undefined && usedBytes >= this.quota * WARN_RATIO) {
      return { ...base, level: 'warn', reason: `the audit log uses ${Math.floor((usedBytes / this.quota) * 100)}% of its ${mib(this.quota)} quota (audit.quotaBytes)` };
    }
    return { ...base, level: 'ok' };
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 2 : 0)} MiB`;
}
