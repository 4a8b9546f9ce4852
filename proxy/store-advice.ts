// What an operator can do about a SQLite store in the data directory that would not open. The error
// says which case it is; the advice differs: a damaged file is evidence to keep, a full volume needs
// room, and only a directory the sidecar cannot write calls for another WARDEN_DATA_DIR.
const DAMAGED = /SQLITE_(?:CORRUPT|NOTADB)|file is not a database|disk image is malformed/;
const FULL = /SQLITE_FULL|ENOSPC|database or disk is full|no space left/i;

/** The advice for an error opening a store (the code where it survived, else the message). */
export function storeAdvice(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const said = `${String(e?.code ?? '')} ${String(e?.message ?? err)}`;
  if (DAMAGED.test(said)) return 'the file is damaged or not a Warden database: move it aside (an audit log is evidence: keep it, and check it with warden audit verify --db) and start again';
  if (FULL.test(said)) return 'the volume is full: free space on it, or give WARDEN_DATA_DIR a larger one';
  return 'set WARDEN_DATA_DIR to a directory the sidecar can write';
}
