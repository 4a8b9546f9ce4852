// Verifies an audit log without any key: every record in canonical form and hashing to its stored
// leaf, seq gap-free from 1, each prev_hash linking to the record before, every signed checkpoint's
// root matching the records it covers, every checkpoint signed by the key its run's log_open names
// and by one key throughout (or by one of the keys the verifier trusts), and no checkpoint attesting
// more records than the log holds. Reports the first bad seq and why. A pruned log is verified from
// where it resumes: its frontier and chain head stand in for the pruned prefix, which the collector
// holds and verifies.
import { canonicalize } from './canonical-json.ts';
import { leafHash, MerkleFrontier } from './merkle.ts';
import { keyIdOf, verifyCheckpoint, type Checkpoint } from './signing.ts';
import { getMeta, openAuditDb, prunedBase, type PrunedBase } from './store.ts';

export interface VerifyProblem {
  seq: number;
  reason: string;
}

export interface VerifyResult {
  logId: string;
  size: number;
  checkpoints: number;
  /** Records 1..pruned were pruned after shipping; verification starts after them. */
  pruned: number;
  problem?: VerifyProblem;
}

export interface VerifyOptions {
  /** Checkpoints held elsewhere (by the collector, an auditor), checked like the log's own. */
  checkpoints?: readonly Checkpoint[];
  /** Accept only checkpoints signed by one of these keys (SPKI DER), instead of by one key throughout. */
  trustedKeys?: readonly Buffer[];
}

const ZERO = '0'.repeat(64);

/** The record, parsed, or why it breaks the log. */
function checkRecord(row: RecordRow & { leaf: Buffer }, expected: number, logId: string, prev: string): Record<string, unknown> | string {
  if (row.seq !== expected) return `record ${expected} is missing (the next stored record is ${row.seq})`;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(row.body);
  } catch {
    return 'the record is not valid JSON (altered)';
  }
  if (canonicalize(parsed) !== row.body) return 'the record is not in canonical form (altered)';
  if (!leafHash(row.body).equals(row.leaf)) return 'the record\'s bytes do not hash to its stored leaf (altered)';
  if (parsed.seq !== row.seq) return `the record claims seq ${parsed.seq} (records reordered)`;
  if (parsed.log_id !== logId) return `the record belongs to log ${JSON.stringify(parsed.log_id)}, not ${JSON.stringify(logId)}`;
  if (parsed.prev_hash !== prev) return `prev_hash does not link to record ${expected - 1} (a record was altered, removed or reordered)`;
  // The columns a store selects records by are not hashed: one edited would hide a record from a
  // query by time or event (an export's window) while the chain still holds.
  for (const column of ['ts', 'event'] as const) {
    if (row[column] !== undefined && row[column] !== String(parsed[column])) {
      return `the record's ${column} column (${JSON.stringify(row[column])}) is not its body's (${JSON.stringify(parsed[column])}): altered`;
    }
  }
  return parsed;
}

/** One stored record: its text, its stored leaf hash and the columns it is selected by, when the store keeps them. */
export interface RecordRow {
  seq: number;
  body: string;
  leaf?: Buffer;
  ts?: string;
  event?: string;
}

/**
 * Why a validly signed checkpoint's signer is not the log's, if it is not. A checkpoint carries its
 * public key, so its signature alone proves nothing: someone who rewrote the log without its key signs
 * the rewrite with a key of their own. So a log has one signer, the one of its earliest checkpoint,
 * unless the verifier names the keys it trusts (a rotation is then both keys).
 */
function signerProblem(cp: Checkpoint, logKeyId: string, trusted: readonly string[] | undefined): string | undefined {
  if (trusted) {
    return trusted.includes(cp.key_id) ? undefined : `the checkpoint at size ${cp.size} is signed by key ${cp.key_id}, which is not one of the keys given to trust`;
  }
  return cp.key_id === logKeyId ? undefined
    : `the checkpoint at size ${cp.size} is signed by key ${cp.key_id}, but the log's earlier checkpoints by key ${logKeyId} (the signing key was replaced: a rewrite by someone without the log's key, or a rotation, which verifies when both keys are given to trust)`;
}

/** Verifies a log's records (in seq order) and checkpoints, from any store. */
export function verifyLog(logId: string, rows: Iterable<RecordRow>, checkpoints: readonly Checkpoint[], trustedKeys?: readonly Buffer[], base?: PrunedBase): VerifyResult {
  let problem: VerifyProblem | undefined;
  const note = (p: VerifyProblem) => {
    if (!problem || p.seq < problem.seq) problem = p;
  };
  const trusted = trustedKeys && new Map(trustedKeys.map((der) => [keyIdOf(der), der]));
  const trustedIds = trusted && [...trusted.keys()];
  const bySize = new Map<number, Checkpoint[]>();
  let logKeyId: string | undefined;
  for (const cp of [...checkpoints].sort((a, b) => a.size - b.size)) {
    if (!verifyCheckpoint(cp, trusted?.get(cp.key_id))) note({ seq: cp.size, reason: `the checkpoint at size ${cp.size} has a bad signature` });
    else if (cp.log_id !== logId) note({ seq: cp.size, reason: `the checkpoint at size ${cp.size} is for log ${JSON.stringify(cp.log_id)}` });
    else {
      logKeyId ??= cp.key_id;
      const signer = signerProblem(cp, logKeyId, trustedIds);
      if (signer) note({ seq: cp.size, reason: signer });
      // Its root is still checked: a rewrite shows there too when the records it covers were held.
      bySize.set(cp.size, [...(bySize.get(cp.size) ?? []), cp]);
    }
  }
  const frontier = base?.frontier.clone() ?? new MerkleFrontier();
  let prev = base?.head.toString('hex') ?? ZERO;
  let expected = frontier.size + 1;
  for (const cp of bySize.get(frontier.size) ?? []) {
    if (base && cp.root !== frontier.root().toString('hex')) note({ seq: cp.size, reason: `the pruned prefix's Merkle root does not match the checkpoint signed at ${cp.ts} at size ${cp.size}` });
  }
  // The key the current run's log_open names: each run's checkpoints are signed by it. So a rewrite
  // signed with another key must rewrite that log_open too, and with it every record after it.
  let run: { seq: number; key: string } | undefined;
  for (const row of rows) {
    const leaf = row.leaf ?? leafHash(row.body);
    const record = checkRecord({ ...row, leaf }, expected, logId, prev);
    if (typeof record === 'string') {
      note({ seq: expected, reason: record });
      break;
    }
    if (record.event === 'log_open') run = typeof record.signing_key === 'string' ? { seq: row.seq, key: record.signing_key } : undefined;
    frontier.append(leaf);
    prev = leaf.toString('hex');
    for (const cp of bySize.get(frontier.size) ?? []) {
      if (cp.root !== frontier.root().toString('hex')) note({ seq: cp.size, reason: `the Merkle root over records 1..${cp.size} does not match the checkpoint signed at ${cp.ts} (the log was rewritten)` });
      if (run && cp.key_id !== run.key) note({ seq: cp.size, reason: `the checkpoint at size ${cp.size} is signed by key ${cp.key_id}, but the log_open of its run (record ${run.seq}) names key ${run.key}` });
    }
    expected++;
  }
  const size = expected - 1;
  for (const cp of checkpoints) {
    if (cp.size > size && !problem) note({ seq: size + 1, reason: `the log ends at record ${size}, but a checkpoint signed at ${cp.ts} attests ${cp.size} records (the tail was truncated)` });
  }
  return { logId, size, checkpoints: checkpoints.length, pruned: base?.size ?? 0, problem };
}

/** Verifies the audit database at `path`. */
export function verifyAuditDb(path: string, opts: VerifyOptions = {}): VerifyResult {
  const db = openAuditDb(path, { readonly: true });
  try {
    const logId = getMeta(db, 'log_id') ?? '';
    const held = db.prepare('SELECT size, root, body FROM checkpoints ORDER BY size').all() as { size: number; root: Buffer; body: string }[];
    const stored = held.map((r) => JSON.parse(r.body) as Checkpoint);
    const rows = db.prepare('SELECT seq, leaf, body, ts, event FROM records ORDER BY seq').iterate() as Iterable<RecordRow>;
    const result = verifyLog(logId, rows, [...stored, ...(opts.checkpoints ?? [])], opts.trustedKeys, prunedBase(db));
    // A checkpoint filed under another size or root than it signs (one copied over another) is found
    // by those columns, which shipping and exports select by.
    const at = held.findIndex((r, k) => r.size !== stored[k].size || r.root.toString('hex') !== stored[k].root);
    if (at >= 0 && (!result.problem || held[at].size <= result.problem.seq)) {
      const filed = held[at];
      const { size, root } = stored[at];
      const otherRoot = root !== filed.root.toString('hex');
      const what = size !== filed.size ? `is the one at size ${size}${otherRoot ? ', with another root' : ''}` : 'signs another root';
      result.problem = { seq: filed.size, reason: `the checkpoint filed at size ${filed.size} ${what}: altered` };
    }
    return result;
  } finally {
    db.close();
  }
}

/** The latest signed checkpoint in the database, for holding outside it. */
export function latestCheckpoint(path: string): Checkpoint | undefined {
  const db = openAuditDb(path, { readonly: true });
  try {
    const row = db.prepare('SELECT body FROM checkpoints ORDER BY size DESC LIMIT 1').get() as { body: string } | undefined;
    return row && (JSON.parse(row.body) as Checkpoint);
  } finally {
    db.close();
  }
}
