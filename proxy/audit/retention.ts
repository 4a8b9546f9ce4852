// Pruning the front of the audit log: only records the collector has acknowledged (its
// committed_through) and whose retention period has passed, and never a batch the collector refused
// (dead_letters) or anything after it: those records are the only copy. What a pruned log still
// needs is kept in meta: the Merkle frontier over the pruned prefix, from which every later root and
// inclusion proof can be computed, and the last pruned leaf, to which the first remaining record's
// prev_hash links.
import { MerkleFrontier } from './merkle.ts';
import { getMeta, prunedBase, SET_META, type Db } from './store.ts';

export interface PruneOptions {
  /** Records older than this (ISO timestamp) may go, once shipped. */
  before: string;
  /** Most records in one transaction, so the writer is never held up long. */
  maxRecords?: number;
}

// A call cannot start in the future: a record stamped more than this ahead of the clock was written
// under a wrong one (a bad boot clock stepped back since), and must not hold up every record after it.
const FUTURE_SLACK_MS = 60 * 60 * 1000;

/** Prunes what may be pruned, up to `maxRecords`; returns how many records went. */
export function pruneShipped(db: Db, o: PruneOptions): number {
  const refused = (db.prepare('SELECT min(first_seq) AS seq FROM dead_letters').get() as { seq: number | null }).seq;
  const shipped = Math.min(Number(getMeta(db, 'shipped_through') ?? 0), refused === null ? Infinity : refused - 1);
  const checkpointsShipped = Number(getMeta(db, 'checkpoints_shipped_through') ?? 0);
  const base = prunedBase(db);
  const from = base?.size ?? 0;
  if (shipped <= from) return 0;
  const rows = db.prepare('SELECT seq, ts, leaf FROM records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?')
    .all(from, shipped, o.maxRecords ?? 5_000) as { seq: number; ts: string; leaf: Buffer }[];
  const frontier = base?.frontier.clone() ?? new MerkleFrontier();
  let head: Buffer | undefined;
  const future = new Date(Date.now() + FUTURE_SLACK_MS).toISOString();
  for (const row of rows) {
    // The prefix ends at the first record too young (seq is commit order, ts the call's start: close
    // enough to time order for a retention period).
    if (row.ts >= o.before && row.ts <= future) break;
    // A gap would mean the prefix is not what the frontier says; leave the log for verify to report.
    if (row.seq !== frontier.size + 1) break;
    frontier.append(row.leaf);
    head = row.leaf;
  }
  if (!head) return 0;
  const through = frontier.size;
  const setMeta = db.prepare(SET_META);
  db.transaction(() => {
    db.prepare('DELETE FROM records WHERE seq <= ?').run(through);
    // A checkpoint over the pruned prefix can no longer be recomputed here; the collector has it. Not
    // one a refused batch carried (at the size just before its records, or alone): reship sends it.
    const keepFrom = refused === null ? Number.MAX_SAFE_INTEGER : refused - 1;
    db.prepare('DELETE FROM checkpoints WHERE size <= ? AND size <= ? AND size < ?').run(through, checkpointsShipped, keepFrom);
    setMeta.run('pruned_frontier', frontier.serialize());
    setMeta.run('pruned_head', head!.toString('hex'));
  })();
  // Hand the freed pages back to the file system, so the quota and the volume see the room.
  db.pragma('incremental_vacuum');
  return through - from;
}
