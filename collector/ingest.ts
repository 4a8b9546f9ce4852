// What the collector does with a batch from one sidecar's log, whatever the store: every record is
// checked on arrival (canonical form, seq, log, chain link), every checkpoint's signature and Merkle
// root are checked against the records it covers, and anything wrong becomes an integrity alert. The
// collector keeps evidence rather than judging it: a record that fails a check is stored and flagged;
// only a record that conflicts with one already held for the same seq, or comes out of seq order
// within its batch, is refused, and kept apart (conflicts) and alerted. A gap is filled when its
// records come in a later batch.
import { canonicalize } from '../proxy/audit/canonical-json.ts';
import { leafHash, MerkleFrontier, rootOf } from '../proxy/audit/merkle.ts';
import { verifyCheckpoint, type Checkpoint } from '../proxy/audit/signing.ts';
import { MalformedBatchError } from './batch-shape.ts';
import { CATCH_UP, GapFiller, ZERO_HASH, type CatchUpLimits } from './gap-fill.ts';

/** A batch as the shipper sends it: records as their exact canonical text, in seq order. */
export interface IngestBatch {
  log_id: string;
  first_seq: number;
  last_seq: number;
  records: string[];
  checkpoints: Checkpoint[];
}

export interface LogHead {
  logId: string;
  /** Highest seq held. */
  size: number;
  /** Leaf hash of the record at `size`, hex. */
  headLeaf?: string;
  /**
   * Incremental Merkle state over records 1..n, where n is the log's size unless a gap stopped it (a
   * batch the sidecar dead-lettered, records deleted before shipping): checkpoints past n go unchecked
   * until the gap is filled. Undefined in stores from before gaps could be filled: read as empty.
   */
  frontier?: string;
  /** The largest checkpoint held. */
  checkpointSize: number;
  /** The fleet that owns the log (the first to ship it); undefined for a new log. */
  fleet?: string;
  /** The key_id that signs the log's checkpoints: its first checkpoint's, then that of the newest one by another key. */
  keyId?: string;
}

export interface StoredRecord {
  logId: string;
  seq: number;
  ts: string;
  event: string;
  leaf: Buffer;
  body: string;
  parsed: Record<string, any>;
  verified: boolean;
}

export interface IntegrityAlert {
  logId: string;
  seq: number;
  kind: 'not_canonical' | 'wrong_log' | 'chain_break' | 'gap' | 'conflict' | 'bad_signature' | 'root_mismatch' | 'checkpoint_ahead' | 'key_changed';
  detail: string;
}

/** The store operations ingest needs, inside one transaction that holds the log's row. */
export interface IngestTx {
  head(logId: string): Promise<LogHead | undefined>;
  leafAt(logId: string, seq: number): Promise<Buffer | undefined>;
  /** Leaves 1..size in order (the rare path: a checkpoint held nowhere for a size below the log's newest records). */
  leaves(logId: string, size: number): Promise<Buffer[]>;
  /** Up to `limit` leaves after..through in seq order, with their seqs (filling a gap: what the frontier has not taken). */
  leavesAfter(logId: string, after: number, through: number, limit: number): Promise<{ seq: number; leaf: Buffer }[]>;
  /** The prev_hash of the record held at `seq`, if one is. */
  prevHashAt(logId: string, seq: number): Promise<string | undefined>;
  /** Roots of the checkpoints held for sizes after+1..through. */
  checkpointRoots(logId: string, after: number, through: number): Promise<Map<number, string>>;
  /** Marks resolved the log's open gap alerts at seqs up to through+1: every record they said was missing is held. */
  resolveGaps(logId: string, through: number): Promise<void>;
  insertRecord(r: StoredRecord, fleet: string): Promise<void>;
  /** Keeps a refused record as evidence (a second version of a seq, or one out of order); false when it is kept already. */
  insertConflict(logId: string, seq: number, leaf: Buffer, body: string, fleet: string): Promise<boolean>;
  insertCheckpoint(logId: string, cp: Checkpoint): Promise<boolean>;
  /** The key_ids of the held checkpoints nearest below and above `size`, where there are such. */
  checkpointKeysAround(logId: string, size: number): Promise<{ below?: string; above?: string }>;
  /** The root of the checkpoint held for that size, if one is. */
  checkpointRoot(logId: string, size: number): Promise<string | undefined>;
  alert(a: IntegrityAlert): Promise<void>;
  saveHead(head: LogHead): Promise<void>;
}

export interface IngestResult {
  /** Highest seq the collector holds for the log: the shipper may consider everything up to it delivered. */
  committedThrough: number;
  /** Records stored, gap-filling ones included. */
  stored: number;
  /** Of them, records that filled a gap. */
  filled: number;
  /** The batch's checkpoints held once it is stored: kept now, or held already with the same root. */
  checkpointsHeld: number;
  duplicates: number;
  alerts: IntegrityAlert[];
  /**
   * The first range below `committedThrough` the collector does not hold, for the sender to fill (a
   * collector restored from a backup, or on a new store, got records after it). Absent while no gap
   * is known: none, or the Merkle frontier still catching up over records held.
   */
  missing?: { from: number; through: number };
}

/**
 * 403: a batch for a log another fleet owns. A log is one fleet's from its first batch: letting a
 * second token append to it would let that fleet write into (and read back) evidence not its own.
 * The sender keeps the batch and retries, as for any refused token, until its token is put right.
 */
export class ForeignLogError extends Error {
  readonly status = 403;
  readonly code = 'WARDEN_ERR_LOG_OF_ANOTHER_FLEET';
  constructor(logId: string) {
    // The owner is not named: a fleet learns nothing about another from the refusal.
    super(`log ${logId} belongs to another fleet: a log ships under one fleet's token for its whole life`);
  }
}

/** Applies one batch; returns what was stored and every alert raised. */
export async function ingestBatch(tx: IngestTx, batch: IngestBatch, fleet: string, catchUpLimits: CatchUpLimits = CATCH_UP): Promise<IngestResult> {
  const alerts: IntegrityAlert[] = [];
  const raise = async (a: IntegrityAlert) => {
    alerts.push(a);
    await tx.alert(a);
  };
  const logId = batch.log_id;
  const head: LogHead = (await tx.head(logId)) ?? { logId, size: 0, frontier: new MerkleFrontier().serialize(), checkpointSize: 0 };
  // Before anything is read or written: the transaction rolls back and nothing of the log is told.
  if (head.fleet !== undefined && head.fleet !== fleet) throw new ForeignLogError(logId);
  const frontier = head.frontier === undefined ? new MerkleFrontier() : MerkleFrontier.parse(head.frontier);
  const pending = [...batch.checkpoints].sort((a, b) => a.size - b.size);
  let stored = 0;
  // The batch's checkpoints the collector holds once it is stored (kept now, or held already, the same).
  let checkpointsHeld = 0;
  let duplicates = 0;

  /** The batch's checkpoints up to `size` (all held): one at `size` against the frontier, older ones against the store. */
  async function checkpointsUpTo(size: number): Promise<void> {
    while (pending.length > 0 && pending[0].size <= size) {
      const cp = pending.shift()!;
      if (cp.size === size) await checkpoint(cp, frontier.size === size ? frontier.root().toString('hex') : undefined);
      else await checkpointAgainstStore(cp);
    }
  }

  async function checkpoint(cp: Checkpoint, root: string | undefined): Promise<void> {
    if (cp.log_id !== logId) return raise({ logId, seq: cp.size, kind: 'wrong_log', detail: `a checkpoint for log ${cp.log_id} came in a batch for ${logId}` });
    if (!verifyCheckpoint(cp)) return raise({ logId, seq: cp.size, kind: 'bad_signature', detail: `the checkpoint at size ${cp.size} has a bad signature` });
    const mismatch = root !== undefined && root !== cp.root;
    if (mismatch) {
      await raise({ logId, seq: cp.size, kind: 'root_mismatch', detail: `the signed root at size ${cp.size} does not match the records held (the log was rewritten)` });
    }
    if (await tx.insertCheckpoint(logId, cp)) {
      // A checkpoint carries its own public key, so a valid signature proves nothing by itself: someone
      // who rewrote unshipped records without the log's key signs with one of their own. The log's
      // signer is pinned by its first checkpoint (trusted on first sight); another signer is alerted
      // once, then pinned in turn if its checkpoint is the newest, so that a rotation (rare: a log lives
      // as long as its task's volume) is one alert, not one a checkpoint. An older checkpoint (one a
      // reship brings) is judged by the checkpoints held around it: the key that signed the log then.
      const newest = cp.size >= head.checkpointSize;
      if (head.keyId !== undefined && head.keyId !== cp.key_id) {
        if (newest) {
          await raise({ logId, seq: cp.size, kind: 'key_changed', detail: `the checkpoint at size ${cp.size} is signed by key ${cp.key_id}, not by key ${head.keyId}, which signed the log's checkpoints before (a rewrite by someone without the log's key, or a rotation of it)` });
        } else {
          const around = await tx.checkpointKeysAround(logId, cp.size);
          if (around.below !== cp.key_id && around.above !== cp.key_id) {
            const held = [around.below, around.above].filter((k) => k !== undefined).join(' and ');
            await raise({ logId, seq: cp.size, kind: 'key_changed', detail: `the checkpoint at size ${cp.size}, older than the newest held, is signed by key ${cp.key_id}, unlike the checkpoints held around it (key ${held}): a rewrite by someone without the log's key` });
          }
        }
      }
      if (head.keyId === undefined || newest) head.keyId = cp.key_id;
      head.checkpointSize = Math.max(head.checkpointSize, cp.size);
      checkpointsHeld++;
      return;
    }
    // One is held for this size already: the same (a batch sent again), or a second history.
    const held = await tx.checkpointRoot(logId, cp.size);
    if (held === cp.root) checkpointsHeld++;
    else if (held !== undefined && !mismatch) {
      await raise({ logId, seq: cp.size, kind: 'root_mismatch', detail: `the checkpoint at size ${cp.size} differs from the one already held for that size (the log was rewritten)` });
    }
  }

  async function checkpointAgainstStore(cp: Checkpoint): Promise<void> {
    // A batch sent again (its answer was lost) brings checkpoints already held: checked when they
    // came, not re-checked by reading the log's leaves from the start. One that differs from the
    // checkpoint held for its size is a second history of the log.
    const held = cp.log_id === logId ? await tx.checkpointRoot(logId, cp.size) : undefined;
    if (held === cp.root) {
      checkpointsHeld++;
      return;
    }
    if (held !== undefined) {
      return raise({ logId, seq: cp.size, kind: 'root_mismatch', detail: `the checkpoint at size ${cp.size} differs from the one already held for that size (the log was rewritten)` });
    }
    // At the frontier's own size (the checkpoint just before a reshipped range) no leaf need be read.
    if (frontier.size === cp.size) return checkpoint(cp, frontier.root().toString('hex'));
    const leaves = frontier.size > cp.size ? await tx.leaves(logId, cp.size) : undefined;
    await checkpoint(cp, leaves && leaves.length === cp.size ? rootOf(leaves).toString('hex') : undefined);
  }

  /** Whether the record is what its sender hashed, for this log; alerts what is not. */
  async function wellFormed(seq: number, parsed: Record<string, any>, body: string): Promise<boolean> {
    let ok = true;
    if (canonicalize(parsed) !== body) {
      ok = false;
      await raise({ logId, seq, kind: 'not_canonical', detail: `record ${seq} is not in canonical form (altered)` });
    }
    if (parsed.log_id !== logId) {
      ok = false;
      await raise({ logId, seq, kind: 'wrong_log', detail: `record ${seq} names log ${JSON.stringify(parsed.log_id)}` });
    }
    return ok;
  }

  const gaps = new GapFiller({ tx, logId, fleet, frontier, limits: catchUpLimits, raise });
  // The highest seq this batch has brought so far: a record below it came out of order.
  let highest = 0;

  /**
   * A record refused for its place is kept apart as evidence (what the rewritten record said), and
   * alerted the first time it comes: a sender that retries it does not raise the alert again.
   */
  async function refuse(seq: number, leaf: Buffer, body: string, detail: string): Promise<void> {
    if (await tx.insertConflict(logId, seq, leaf, body, fleet)) await raise({ logId, seq, kind: 'conflict', detail });
  }

  const sizeBefore = head.size;
  // Checkpoints for sizes already held are checked against the stored leaves.
  await checkpointsUpTo(head.size);
  for (const body of batch.records) {
    let parsed: Record<string, any>;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new MalformedBatchError('a record is not JSON');
    }
    // parseBatch checked the text; a store called directly (tests, tools) may not have.
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MalformedBatchError('a record is not a JSON object');
    const seq = parsed.seq;
    if (!Number.isSafeInteger(seq) || seq < 1) throw new MalformedBatchError(`a record has no valid seq (${JSON.stringify(seq)})`);
    const leaf = leafHash(body);
    const inOrder = seq > highest;
    highest = Math.max(highest, seq);
    if (seq <= head.size) {
      const held = await tx.leafAt(logId, seq);
      if (held?.equals(leaf)) duplicates++;
      else if (held) await refuse(seq, leaf, body, `record ${seq} differs from the one already held: the log was rewritten, or truncated and regrown`);
      // A hole from an earlier batch is filled, in seq order (each fill is checked against the one
      // before it, and only the last of a run against the record after it); one this batch made by
      // sending records out of order (the shipper never does: two records swapped in the file) is not.
      else if (seq <= sizeBefore && inOrder) {
        await gaps.fill(seq, parsed, body, leaf, await wellFormed(seq, parsed, body));
        stored++;
      }
      else await refuse(seq, leaf, body, `record ${seq} arrived after records past it in the same batch (records reordered)`);
      continue;
    }
    let verified = await wellFormed(seq, parsed, body);
    if (seq > head.size + 1) {
      verified = false;
      await raise({ logId, seq, kind: 'gap', detail: `records ${head.size + 1}..${seq - 1} never arrived (deleted before shipping, or a batch the sidecar dead-lettered)` });
    }
    const expectedPrev = head.headLeaf ?? ZERO_HASH;
    if (seq === head.size + 1 && parsed.prev_hash !== expectedPrev) {
      verified = false;
      await raise({ logId, seq, kind: 'chain_break', detail: `record ${seq}'s prev_hash does not link to record ${seq - 1} (a record was altered, removed or reordered)` });
    }
    await tx.insertRecord({ logId, seq, ts: String(parsed.ts ?? ''), event: String(parsed.event ?? ''), leaf, body, parsed, verified }, fleet);
    stored++;
    // The frontier takes only a record that continues it: past a gap, roots wait for the gap to fill.
    if (frontier.size === seq - 1) frontier.append(leaf);
    head.size = seq;
    head.headLeaf = leaf.toString('hex');
    await checkpointsUpTo(head.size);
  }
  // Checkpoints past what is held attest to records the collector has not seen. A shipper sends each
  // checkpoint with the records it covers, never before them; kept, one could stand in for the real
  // checkpoint of that size (which would then be ignored as a duplicate) unchecked against any record.
  for (const cp of pending) {
    await raise({ logId, seq: cp.size, kind: 'checkpoint_ahead', detail: `a checkpoint at size ${cp.size} came before the records it covers (${head.size} held): not kept` });
  }
  if (gaps.filled > 0) await gaps.checkEnds();
  // Behind the log with no hole right after it: a fill just now, or a catch-up an earlier batch began.
  if (frontier.size < head.size && (gaps.filled > 0 || (await tx.leafAt(logId, frontier.size + 1)) !== undefined)) await gaps.catchUp(head.size);
  head.frontier = frontier.serialize();
  await tx.saveHead(head);
  return { committedThrough: head.size, stored, filled: gaps.filled, duplicates, checkpointsHeld, alerts, missing: await firstGap() };

  /** Where the held records first break off below the newest: the frontier stops at a gap, or at records a catch-up has yet to reach. */
  async function firstGap(): Promise<IngestResult['missing']> {
    if (frontier.size >= head.size) return undefined;
    const [next] = await tx.leavesAfter(logId, frontier.size, head.size, 1);
    return next && next.seq > frontier.size + 1 ? { from: frontier.size + 1, through: next.seq - 1 } : undefined;
  }
}
