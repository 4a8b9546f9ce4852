// The audit log's SQLite layout. One row per record: the canonical JSON exactly as hashed, and its
// leaf hash. Checkpoints are stored as signed JSON. Records are never updated in place; once the
// collector holds them and their retention has passed they are pruned from the front, and the Merkle
// frontier and chain head at that point are kept in meta so the log still verifies and grows.
import Database from 'better-sqlite3';
import { MerkleFrontier, type Hash } from './merkle.ts';

export type Db = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS records (
  seq   INTEGER PRIMARY KEY,
  ts    TEXT NOT NULL,
  event TEXT NOT NULL,
  leaf  BLOB NOT NULL,
  body  TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
  size  INTEGER PRIMARY KEY,
  root  BLOB NOT NULL,
  body  TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS dead_letters (
  id        INTEGER PRIMARY KEY,
  first_seq INTEGER NOT NULL,
  last_seq  INTEGER NOT NULL,
  status    INTEGER NOT NULL,
  response  TEXT NOT NULL,
  at        TEXT NOT NULL
) STRICT;
`;

export interface OpenOptions {
  readonly?: boolean;
  /** FULL: each commit is fsynced (strict durability); NORMAL: WAL checkpoints are (relaxed). */
  synchronous?: 'FULL' | 'NORMAL';
}

/** Opens (and for writers, creates) an audit database. */
export function openAuditDb(path: string, opts: OpenOptions = {}): Db {
  // The writer is the only writer, so waiting long for a lock only delays the error a reader caused.
  const db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, timeout: 2_000 });
  if (!opts.readonly) {
    // Only a new file can take this (it must precede the first table): pruned pages are then
    // returned to the file system by incremental_vacuum instead of lingering on the free list.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    db.exec(SCHEMA);
  }
  return db;
}

/** Sets a meta value (prepare it once where it runs often). */
export const SET_META = 'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value';

/**
 * The key id that signed the log's checkpoints so far: kept in meta (written with a run's first
 * checkpoint), which pruning leaves, else read from the latest checkpoint (logs from before it was kept).
 */
export function lastSigner(db: Db): string | undefined {
  const latest = db.prepare('SELECT body FROM checkpoints ORDER BY size DESC LIMIT 1').get() as { body: string } | undefined;
  return getMeta(db, 'signing_key') ?? (latest && (JSON.parse(latest.body) as { key_id?: string }).key_id);
}

/** A meta value, if set. */
export function getMeta(db: Db, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

/** Where a pruned log resumes: the frontier over records 1..size and the last pruned record's leaf. */
export interface PrunedBase {
  size: number;
  frontier: MerkleFrontier;
  head: Hash;
}

/** The pruned prefix of the log, if any was pruned. */
export function prunedBase(db: Db): PrunedBase | undefined {
  const frontier = getMeta(db, 'pruned_frontier');
  const head = getMeta(db, 'pruned_head');
  if (!frontier || !head) return undefined;
  const f = MerkleFrontier.parse(frontier);
  return { size: f.size, frontier: f, head: Buffer.from(head, 'hex') };
}
