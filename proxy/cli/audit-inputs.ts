// What `warden audit` reads before it checks anything: the log file, checkpoint and key files, a
// bundle, a collector. Each input that cannot be read is a ConfigError naming it (exit 2: nothing was
// checked), so a cron job never reads "could not check" as "tampered with" (exit 1).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMeta, openAuditDb } from '../audit/store.ts';
import type { Checkpoint } from '../audit/signing.ts';
import { parsePublicKey, parsePublicKeyFile } from '../agents/identity-key.ts';
import { ConfigError, UsageError } from '../errors.ts';

/** The audit database's path (the default under WARDEN_DATA_DIR), which must exist. */
export function dbPath(db: string | undefined): string {
  const path = db ?? join(process.env.WARDEN_DATA_DIR ?? '.warden', 'audit.db');
  if (!existsSync(path)) throw new UsageError(`no audit database at ${path} (give --db PATH or set WARDEN_DATA_DIR)`);
  return path;
}

/**
 * The id of the audit log at `path`. A file that does not open as SQLite (zero bytes, a directory,
 * another kind of file, a header too damaged to read) or has no log_id is not one this command can
 * check at all: a ConfigError.
 */
export function auditLogId(path: string): string {
  let db: ReturnType<typeof openAuditDb> | undefined;
  try {
    db = openAuditDb(path, { readonly: true });
    const logId = getMeta(db, 'log_id');
    if (!logId) throw new Error('it has no log_id');
    return logId;
  } catch (err) {
    throw new ConfigError(`${path}: cannot read it as a Warden audit log (${(err as Error).message}); nothing was checked`, { cause: err });
  } finally {
    db?.close();
  }
}

/**
 * Whether reading a file already known to be a Warden audit log failed because the log itself is
 * damaged: pages corrupt or cut off, a table dropped or altered, a stored checkpoint that is not JSON.
 * Those are what verify exists to report (exit 1); a lock held too long or an I/O error is not.
 */
export function damagedLog(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof SyntaxError || code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB'
    || (code === 'SQLITE_ERROR' && /no such (table|column)/.test((err as Error).message));
}

/** A file's text; one that cannot be read is a ConfigError naming it and its flag. */
export function readInput(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${flag} ${file}: cannot read it (${(err as Error).message})`, { cause: err });
  }
}

/** Checkpoints from files: one JSON object, an array of them, or one per line. */
export function readCheckpoints(files: string[]): Checkpoint[] {
  return files.flatMap((f) => {
    const text = readInput(f, '--checkpoint').trim();
    let parsed: unknown[];
    try {
      parsed = text.startsWith('[') ? JSON.parse(text) : text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    } catch (err) {
      throw new UsageError(`${f}: not a checkpoint file (${(err as Error).message})`);
    }
    const bad = parsed.findIndex((cp) => typeof cp !== 'object' || cp === null || typeof (cp as Checkpoint).size !== 'number');
    if (bad >= 0) throw new UsageError(`${f}: not a checkpoint file (entry ${bad + 1} is not a signed checkpoint as \`warden audit checkpoint\` prints it)`);
    return parsed as Checkpoint[];
  });
}

/**
 * The checkpoint keys `--key` trusts (SPKI DER): each a public key as `warden audit checkpoint` shows
 * it (`public_key`), a bare Ed25519 key in base64 or PEM, or a file of such keys.
 */
export function trustedKeys(values: string[] | undefined): Buffer[] | undefined {
  if (!values) return undefined;
  return values.flatMap((value) => {
    try {
      const keys = existsSync(value) ? parsePublicKeyFile(readFileSync(value, 'utf8')) : [parsePublicKey(value)];
      if (keys.length === 0) throw new Error('the file holds no key');
      return keys.map((k) => k.key.export({ type: 'spki', format: 'der' }));
    } catch (err) {
      throw new UsageError(`--key ${value}: not an Ed25519 public key or a file of them (${(err as Error).message})`);
    }
  });
}

/**
 * Why a bundle's text is not one verifyBundle can read, naming the line. A line that is not JSON, or
 * a record without its seq, body or proof, makes the bundle bad (exit 1), not unreadable (exit 2): the
 * file was read, and what it holds cannot prove what it claims. A bundle damaged in transit or edited
 * by hand is then answered as one whose proof fails, and the auditor's remedy is the same: get it
 * again from the log or the collector.
 */
export function bundleShapeProblem(text: string): string | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]) continue;
    const at = `line ${i + 1}`;
    let line: unknown;
    try {
      line = JSON.parse(lines[i]);
    } catch {
      return `${at}: not JSON (the bundle was cut or altered)`;
    }
    if (typeof line !== 'object' || line === null || Array.isArray(line)) return `${at}: not a bundle line (a JSON object)`;
    const l = line as Record<string, unknown>;
    if (l.type === 'checkpoint' && (typeof l.checkpoint !== 'object' || l.checkpoint === null)) return `${at}: a checkpoint line without its checkpoint`;
    if (l.type !== 'record') continue;
    if (!Number.isSafeInteger(l.seq) || (l.seq as number) < 1) return `${at}: a record without a valid seq`;
    const record = `${at}: record ${l.seq}`;
    let body: unknown;
    try {
      body = typeof l.body === 'string' ? JSON.parse(l.body) : undefined;
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null) return `${record}: its body is not a record (JSON text of an object)`;
    if (!Array.isArray(l.proof) || !l.proof.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))) {
      return `${record}: it has no inclusion proof (proof: a list of SHA-256 hashes in hex)`;
    }
  }
  return undefined;
}

/** The collector's base URL from --collector (or its env default): an http(s) URL, or a UsageError. */
export function collectorBase(text: string, flag = '--collector'): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(`${flag} ${text}: not an http(s) URL (e.g. http://127.0.0.1:15200)`);
  return text.replace(/\/+$/, '');
}

/**
 * GET from the collector. Unreachable, a refused token, any other error status, or an answer in no
 * form the collector gives: a ConfigError (exit 2), as the log was not checked.
 */
export async function collectorGet(base: string, path: string, token: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const cause = (err as Error).cause as { code?: string; message?: string } | undefined;
    // fetch never connects to a few well-known ports (1, 9, 25, …) and says only "bad port".
    const why = cause?.message === 'bad port' ? 'fetch does not connect to that port' : cause?.code ?? cause?.message ?? (err as Error).message;
    throw new ConfigError(`cannot reach the collector at ${base}: ${why}`, { cause: err });
  }
  const text = await res.text().catch(() => '');
  if (res.status === 401 || res.status === 403) {
    throw new ConfigError(`the collector at ${base} refused the token (HTTP ${res.status}): give --token T or set WARDEN_COLLECTOR_TOKEN to one of its tokens`);
  }
  if (!res.ok) throw new ConfigError(`${base}${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text;
}

/** The collector's JSON answer; anything else means the URL is not a Warden collector's API. */
export function collectorJson<T>(base: string, path: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ConfigError(`${base}${path}: the answer is not JSON (is ${base} a Warden collector?): ${text.slice(0, 100)}`);
  }
}

// ISO 8601 as the log writes it: a date, or a date and time with an optional fraction and offset.
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * An ISO 8601 date or date-time as the UTC ISO string the log's `ts` compares with; a time without an
 * offset is UTC, as the log's are. Anything else (Date.parse's "Nov 25 2026", "1" read as the year
 * 2001, a 30th of February) is a UsageError naming the flag.
 */
export function isoTime(text: string, flag: string): string {
  const m = ISO_TIME.exec(text);
  const ms = m ? Date.parse(m[4] !== undefined && m[7] === undefined ? `${text}Z` : text) : NaN;
  // Date.parse rolls some impossible dates over (02-30 to 03-02): the date must survive a round trip.
  const day = m && Date.parse(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  const realDay = m && Number.isFinite(day) && new Date(day!).toISOString().startsWith(`${m[1]}-${m[2]}-${m[3]}`);
  if (!m || !Number.isFinite(ms) || !realDay || Number(m[4] ?? 0) > 23 || Number(m[5] ?? 0) > 59 || Number(m[6] ?? 0) > 59) {
    throw new UsageError(`${flag} "${text}": not an ISO 8601 date or date-time (e.g. 2026-11-24 or 2026-11-24T00:00:00Z)`);
  }
  return new Date(ms).toISOString();
}
