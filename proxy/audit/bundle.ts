// Export bundles for an inquiry: one agent's records in a time window, each with an RFC 9162
// inclusion proof against a signed checkpoint, as JSONL. Anyone can check a bundle offline with
// `warden audit verify --bundle FILE`, without the log, the collector or any key.
import { leafHash, MerkleTree, verifyInclusion } from './merkle.ts';
import { keyIdOf, verifyCheckpoint, type Checkpoint } from './signing.ts';
import { getMeta, openAuditDb, prunedBase } from './store.ts';
import type { VerifyProblem } from './verify.ts';

export interface BundleQuery {
  agent: string;
  /** ISO timestamps: from inclusive, to exclusive. */
  from: string;
  to: string;
}

interface BundleHeader extends BundleQuery {
  type: 'bundle';
  v: 1;
  log_id: string;
  created_at: string;
  /** Matching records after the checkpoint, which cannot be proven yet (export again after the next). */
  unproven_after_checkpoint: number;
  /** Records 1..pruned_through were pruned locally after shipping: export them from the collector. */
  pruned_through: number;
}

type BundleLine = BundleHeader | { type: 'checkpoint'; checkpoint: Checkpoint } | { type: 'record'; seq: number; body: string; proof: string[] };

/** The bundle's JSONL lines for the matching records of the log at `path`. */
export function exportBundle(path: string, q: BundleQuery): string[] {
  const db = openAuditDb(path, { readonly: true });
  try {
    const logId = getMeta(db, 'log_id') ?? '';
    const row = db.prepare('SELECT body FROM checkpoints ORDER BY size DESC LIMIT 1').get() as { body: string } | undefined;
    const checkpoint = row ? (JSON.parse(row.body) as Checkpoint) : undefined;
    const size = checkpoint?.size ?? 0;
    // The window is read from the records themselves, which are hashed, not from the ts column, which is
    // not: an edited column must not move a record out of an inquiry's window unseen.
    const match = db.prepare(`SELECT seq, body FROM records WHERE json_extract(body, '$.agent.id') = ? AND json_extract(body, '$.ts') >= ? AND json_extract(body, '$.ts') < ? ORDER BY seq`)
      .all(q.agent, q.from, q.to) as { seq: number; body: string }[];
    const provable = match.filter((r) => r.seq <= size);
    const base = prunedBase(db);
    const header: BundleHeader = {
      type: 'bundle', v: 1, log_id: logId, ...q, created_at: new Date().toISOString(),
      unproven_after_checkpoint: match.length - provable.length, pruned_through: base?.size ?? 0,
    };
    const lines: BundleLine[] = [header];
    if (checkpoint) {
      lines.push({ type: 'checkpoint', checkpoint });
      const leaves = (db.prepare('SELECT leaf FROM records WHERE seq <= ? ORDER BY seq').all(size) as { leaf: Buffer }[]).map((r) => r.leaf);
      const tree = new MerkleTree(leaves, base?.frontier);
      for (const r of provable) lines.push({ type: 'record', seq: r.seq, body: r.body, proof: tree.proof(r.seq - 1).map((h) => h.toString('hex')) });
    }
    return lines.map((l) => JSON.stringify(l));
  } finally {
    db.close();
  }
}

/**
 * Checks a bundle: the checkpoint's signature, each record's inclusion proof, and that it matches the
 * query. With `trustedKeys` (SPKI DER), the checkpoint must be signed by one of them: a bundle is
 * whole in itself, so without them it shows only that its signer, whoever that is, vouches for it.
 */
export function verifyBundle(text: string, trustedKeys?: readonly Buffer[]): { records: number; logId: string; problem?: VerifyProblem } {
  const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as BundleLine);
  const header = lines[0];
  if (header?.type !== 'bundle') return { records: 0, logId: '', problem: { seq: 0, reason: 'not a bundle: the first line is not a bundle header' } };
  const cp = lines.find((l): l is { type: 'checkpoint'; checkpoint: Checkpoint } => l.type === 'checkpoint')?.checkpoint;
  const records = lines.filter((l): l is { type: 'record'; seq: number; body: string; proof: string[] } => l.type === 'record');
  const fail = (seq: number, reason: string) => ({ records: records.length, logId: header.log_id, problem: { seq, reason } });
  if (records.length > 0 && !cp) return fail(records[0].seq, 'records without a checkpoint cannot be proven');
  if (cp && (!verifyCheckpoint(cp) || cp.log_id !== header.log_id)) return fail(cp.size, 'the checkpoint\'s signature or log does not hold');
  if (cp && trustedKeys && !trustedKeys.some((der) => keyIdOf(der) === cp.key_id)) {
    return fail(cp.size, `the checkpoint is signed by key ${cp.key_id}, which is not one of the keys given to trust`);
  }
  const seen = new Set<number>();
  for (const r of records) {
    if (seen.has(r.seq)) return fail(r.seq, 'the record appears twice in the bundle');
    seen.add(r.seq);
    const rec = JSON.parse(r.body);
    const proof = r.proof.map((h) => Buffer.from(h, 'hex'));
    if (!verifyInclusion(leafHash(r.body), r.seq - 1, cp!.size, proof, Buffer.from(cp!.root, 'hex'))) return fail(r.seq, 'the record is not in the signed log (inclusion proof fails: altered or invented)');
    if (rec.seq !== r.seq || rec.log_id !== header.log_id) return fail(r.seq, 'the record\'s seq or log does not match its place');
    if (rec.agent?.id !== header.agent || !(rec.ts >= header.from && rec.ts < header.to)) return fail(r.seq, 'the record is outside the bundle\'s agent or time window');
  }
  return { records: records.length, logId: header.log_id };
}
