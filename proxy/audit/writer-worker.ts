// The audit writer: a worker thread that owns the SQLite file, so fsyncs never stall the event loop
// that relays agent traffic. It numbers records gap-free, links each to the previous one's leaf hash,
// commits whatever has arrived as one transaction (group commit: under load one fsync covers many
// records; when idle a record commits at once), writes signed Merkle checkpoints, and keeps watch on
// the log's disk space, pruning what the collector holds once its retention has passed.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { hostname } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { canonicalize } from './canonical-json.ts';
import { leafHash, MerkleFrontier, type Hash } from './merkle.ts';
import { keyIdOf, signCheckpoint, type SigningKey } from './signing.ts';
import { protectRecord, type Keyring } from './field-protection.ts';
import { startShipper, type Shipper } from './shipper.ts';
import { DiskSpace, type SpaceLevel } from './disk-space.ts';
import { reshipDeadLetters, type ReshipOutcome } from './reship.ts';
import { pruneShipped } from './retention.ts';
import { getMeta, lastSigner, openAuditDb, prunedBase, SET_META } from './store.ts';
import { RECORD_VERSION, type AppendItem, type FromWriter, type SpaceConfig, type ToWriter, type WriterConfig } from './writer-protocol.ts';

const config = workerData as WriterConfig;
const port = parentPort!;
const ZERO = '0'.repeat(64);

const privateKey = createPrivateKey(config.signingKeyPem);
const publicKeyDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
const key: SigningKey = { privateKey, publicKeyDer, keyId: keyIdOf(publicKeyDer), source: 'worker' };

const protection = config.protection;
const keyring: Keyring | undefined = protection.keyring && {
  activeKid: protection.keyring.activeKid,
  keys: new Map(protection.keyring.keys.map(([kid, b64]) => [kid, Buffer.from(b64, 'base64')])),
};
const hmacKey = protection.hmacKey ? Buffer.from(protection.hmacKey, 'base64') : undefined;
const protecting = protection.encrypt.length > 0 || protection.mask.length > 0;

const db = openAuditDb(config.path, { synchronous: config.synchronous });
let logId = getMeta(db, 'log_id');
if (!logId) {
  logId = config.logId;
  db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run('log_id', logId);
  db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run('created_at', new Date().toISOString());
}

// Rebuild the chain head and the Merkle frontier from what is on disk (the log may have been cut
// short by a SIGKILL: whatever committed is there, whole, and the chain continues from it), starting
// from the pruned prefix's frontier when the front of the log has been pruned.
const base = prunedBase(db);
const frontier = base?.frontier.clone() ?? new MerkleFrontier();
let prevHash: Hash | undefined = base?.head;
let lastEvent: string | undefined;
for (const row of db.prepare('SELECT leaf, event FROM records ORDER BY seq').iterate() as Iterable<{ leaf: Buffer; event: string }>) {
  frontier.append(row.leaf);
  prevHash = row.leaf;
  lastEvent = row.event;
}
let checkpointed = (db.prepare('SELECT max(size) AS n FROM checkpoints').get() as { n: number | null }).n ?? 0;

const insert = db.prepare('INSERT INTO records(seq, ts, event, leaf, body) VALUES (?, ?, ?, ?, ?)');
const insertCheckpoint = db.prepare('INSERT OR IGNORE INTO checkpoints(size, root, body) VALUES (?, ?, ?)');
const setMeta = db.prepare(SET_META);
let signerNoted = false;

let queue: AppendItem[] = [];
let scheduled = false;
// This run's log_open when its commit failed: it goes first into the next batch.
let pendingOpen: AppendItem | undefined;

let spaceConfig: SpaceConfig = config.space;
const space = new DiskSpace(db, config.path, spaceConfig.quotaBytes);
let spaceLevel: SpaceLevel | undefined;

/** A record's canonical text, now that its place in the chain is known. */
function recordText(item: AppendItem, seq: number, prevHash: string): string {
  // CHAIN_MEMBERS in order: prev_hash (lowercase hex, so its JSON string needs no escapes), then seq.
  if ('around' in item) return `${item.around[0]}"${prevHash}"${item.around[1]}${seq}${item.around[2]}`;
  const record = { ...item.entry, v: RECORD_VERSION, log_id: logId, seq, prev_hash: prevHash };
  if (protecting) protectRecord(record, protection, keyring, hmacKey);
  return canonicalize(record);
}

function eventOf(item: AppendItem): string {
  return 'around' in item ? item.event : String(item.entry.event);
}

function commit(batch: AppendItem[]): void {
  const started = performance.now();
  const leaves: Hash[] = [];
  const events: Record<string, number> = {};
  let head = prevHash;
  let seq = frontier.size;
  try {
    db.transaction(() => {
      for (const item of batch) {
        seq++;
        const body = recordText(item, seq, head ? head.toString('hex') : ZERO);
        const leaf = leafHash(body);
        const event = eventOf(item);
        insert.run(seq, 'around' in item ? item.ts : String(item.entry.ts), event, leaf, body);
        leaves.push(leaf);
        head = leaf;
        events[event] = (events[event] ?? 0) + 1;
      }
    })();
  } catch (err) {
    // The transaction rolled back: no seq was used, the chain head is unchanged, nothing is half-written.
    const e = err as { code?: string; message?: string };
    if (e.code === 'SQLITE_FULL') space.noteFull();
    // The level first, so the sidecar refuses new calls before it answers these ones.
    watchSpace(false);
    // The run's log_open (id 0, which no call waits on) goes first into the next commit of records
    // instead (never alone, so a log that cannot commit is not retried in a loop): every record of a
    // run must follow it, since it names the key that signs the run's checkpoints.
    const open = batch.find((p) => p.id === 0);
    if (open) pendingOpen = open;
    post({ type: 'failed', ids: batch.filter((p) => p !== open).map((p) => p.id), code: e.code ?? 'UNKNOWN', message: e.message ?? String(err) });
    return;
  }
  for (const leaf of leaves) frontier.append(leaf);
  prevHash = head;
  lastEvent = eventOf(batch[batch.length - 1]);
  // Checkpoint before acknowledging, so a caller that awaited its record also sees the checkpoint.
  if (frontier.size - checkpointed >= config.checkpointEveryRecords) checkpoint();
  watchSpace(false);
  post({ type: 'committed', ids: batch.map((p) => p.id), through: frontier.size, seconds: (performance.now() - started) / 1000, events });
  shipper?.notify();
}

/** Tells the sidecar when the log's space level changes (a few pragmas: cheap enough after each commit). */
function watchSpace(measureVolume: boolean): void {
  if (!measureVolume && !space.watching) return;
  const report = space.report(measureVolume);
  if (report.level !== spaceLevel || measureVolume) {
    spaceLevel = report.level;
    post({ type: 'space', report });
  }
}

// Pruning holds up commits while it runs, so each turn is bounded in records and in time.
const PRUNE_BATCH = 5_000;
const PRUNE_BUDGET_MS = 100;

const countDeadLetters = db.prepare('SELECT count(*) AS n FROM dead_letters').pluck();
let deadLetters: number | undefined;

/** Tells the sidecar how many refused batches wait in dead_letters: earlier runs' too, and none once `warden audit reship` cleared them. */
function watchDeadLetters(): void {
  let count: number;
  try {
    count = countDeadLetters.get() as number;
  } catch {
    return; // the database busy a moment: the next second's look will tell
  }
  if (count === deadLetters) return;
  deadLetters = count;
  post({ type: 'dead-letters', count });
}

/** Once a second: prune what the collector holds and retention lets go, and measure the volume. */
function housekeeping(): void {
  watchDeadLetters();
  if (config.collector) {
    const started = performance.now();
    let pruned = 0;
    try {
      const before = new Date(Date.now() - spaceConfig.retainShippedMs).toISOString();
      let n: number;
      do {
        n = pruneShipped(db, { before, maxRecords: PRUNE_BATCH });
        pruned += n;
      } while (n === PRUNE_BATCH && performance.now() - started < PRUNE_BUDGET_MS);
    } catch (err) {
      post({ type: 'warning', message: `pruning the audit log failed: ${(err as Error).message}` });
    }
    if (pruned > 0) post({ type: 'pruned', records: pruned });
  }
  watchSpace(true);
}

function checkpoint(): void {
  // Not before this run's log_open is in the log: it names the key this checkpoint is signed with.
  if (frontier.size === checkpointed || pendingOpen) return;
  const root = frontier.root();
  const cp = signCheckpoint(key, { log_id: logId!, size: frontier.size, root: root.toString('hex'), ts: new Date().toISOString() });
  try {
    db.transaction(() => {
      insertCheckpoint.run(cp.size, root, canonicalize(cp));
      // The log's signer so far, for the next run to compare its key with once checkpoints are pruned.
      if (!signerNoted) setMeta.run('signing_key', key.keyId);
    })();
    signerNoted = true;
    checkpointed = cp.size;
    post({ type: 'checkpoint', size: cp.size });
  } catch (err) {
    // A checkpoint that cannot be written now is written later; records are what must not be lost.
    post({ type: 'warning', message: `checkpoint at ${cp.size} failed: ${(err as Error).message}` });
  }
}

function flush(): void {
  scheduled = false;
  if (queue.length === 0) return;
  let batch = queue.length > config.maxBatch ? queue.splice(0, config.maxBatch) : queue;
  if (batch === queue) queue = [];
  if (pendingOpen) {
    batch = [pendingOpen, ...batch];
    pendingOpen = undefined;
  }
  commit(batch);
  if (queue.length > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  // setImmediate lets every message already waiting on the port join this batch.
  setImmediate(flush);
}

function post(msg: FromWriter): void {
  port.postMessage(msg);
}

const timer = setInterval(checkpoint, config.checkpointEveryMs);
const housekeepingTimer = setInterval(housekeeping, 1_000);
let shipper: Shipper | undefined;
let reshipping: Promise<ReshipOutcome[]> | undefined;
let closing = false;

// How long shutdown waits for the collector to take what is left; the rest ships on the next start.
const SHUTDOWN_SHIP_GRACE_MS = 2_000;

port.on('message', (msg: ToWriter) => {
  if (msg.type === 'append') {
    for (const item of msg.items) queue.push(item);
    schedule();
  } else if (msg.type === 'reship') {
    // Here rather than from another connection: this thread owns the file and knows the collector.
    if (!config.collector) return post({ type: 'reshipped', id: msg.id, reason: 'no_collector', error: 'no collector is configured (WARDEN_COLLECTOR_URL)' });
    if (closing) return post({ type: 'reshipped', id: msg.id, reason: 'closing', error: 'the audit log is closing' });
    // One at a time: a request while one runs gets its outcome, rather than sending everything twice.
    reshipping ??= reshipDeadLetters({ db, logId: logId!, url: config.collector.url, token: config.collector.token })
      .finally(() => {
        reshipping = undefined;
        if (!closing) watchDeadLetters();
      });
    reshipping.then(
      (outcomes) => post({ type: 'reshipped', id: msg.id, outcomes }),
      (err: Error) => post({ type: 'reshipped', id: msg.id, reason: 'failed', error: err.message }),
    );
  } else if (msg.type === 'configure') {
    spaceConfig = msg.space;
    space.setQuota(spaceConfig.quotaBytes);
    housekeeping();
  } else if (msg.type === 'close') {
    closing = true;
    clearInterval(timer);
    clearInterval(housekeepingTimer);
    queue.push({ id: msg.id, entry: msg.entry });
    flush();
    while (queue.length > 0) flush();
    checkpoint();
    // A reship in flight gets the shipper's grace too; past it, its next use of the closed database fails it.
    const reshipped = reshipping?.then(() => undefined, () => undefined) ?? Promise.resolve();
    const grace = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_SHIP_GRACE_MS).unref());
    void Promise.all([shipper?.stop(SHUTDOWN_SHIP_GRACE_MS), Promise.race([reshipped, grace])]).finally(() => {
      db.close();
      // The sidecar terminates this thread once it has read 'closed'; closing the port here could drop it.
      post({ type: 'closed' });
    });
  }
});

// Verifiers and the collector take a checkpoint by another key than the log's so far for a rewrite
// unless told of a rotation, so a new key is said in the chain and in the sidecar's log.
const previousKeyId = lastSigner(db);
const rotated = previousKeyId !== undefined && previousKeyId !== key.keyId;
// Records a crash left past the last checkpoint were never signed: this run's first checkpoint signs
// them as they now are, which is all a verifier can know of them (their chain is the only protection
// they had), so the run says which they are.
const signedThrough = Math.max(checkpointed, base?.size ?? 0);

// The first record of every run says where the log picks up, whether the last run ended cleanly,
// which key signs its checkpoints, and which records no checkpoint covered when it began.
queue.push({
  id: 0,
  entry: {
    ...config.openEntry,
    host: hostname(),
    resumed_at: frontier.size,
    ...(frontier.size > 0 ? { previous_run: lastEvent === 'log_close' ? 'closed' : 'unclean' } : {}),
    signing_key: key.keyId,
    ...(rotated ? { previous_signing_key: previousKeyId } : {}),
    ...(frontier.size > signedThrough ? { unsigned_from: signedThrough + 1 } : {}),
  },
});
flush();
post({ type: 'ready', logId, size: frontier.size, checkpointed, shippedThrough: config.collector ? Number(getMeta(db, 'shipped_through') ?? 0) : undefined });
watchDeadLetters();
if (rotated) {
  post({ type: 'warning', message: `the audit signing key (${key.keyId}) is not the one that signed this log's checkpoints so far (${previousKeyId}): verifiers and the collector will report the change (key_changed) unless both keys are trusted (warden audit verify --key)` });
}
watchSpace(true);
if (config.collector) {
  shipper = startShipper({
    db, logId, url: config.collector.url, token: config.collector.token,
    report: (event) => {
      post({ type: 'ship', event });
      if (event.type === 'ship-failed' && event.reason === 'rejected') watchDeadLetters();
    },
  });
}
