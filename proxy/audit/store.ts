// The audit log's SQLite layout. One row per record: the canonical JSON exactly as hashed, and its
// leaf hash. Checkpoints are stored as signed JSON. Nothing here is ever updated in place.
import Database from 'better-sqlite3';

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
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    db.exec(SCHEMA);
  }
  return db;
}

/** A meta value, if set. */
export function getMeta(db: Db, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}
