// A signed log with checkpoints at known sizes, cut into batches as a collector store sees them, for
// what every store must do alike: pin each log's signer and alert each change of it once (a rewrite of
// unshipped records by someone without the log's key, or a rotation), and fill a gap when the records
// it missed arrive later (a batch the sidecar dead-lettered, sent again), checking them and the
// checkpoints that waited for them.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { CollectorStore } from '../../collector/store.ts';
import { loadSigningKey, signCheckpoint, type Checkpoint } from '../../proxy/audit/signing.ts';
import { openAuditLog } from '../../proxy/audit/audit-log.ts';
import { canonicalize } from '../../proxy/audit/canonical-json.ts';
import { batchOf, FLEET, NOW, readLog, type SignedLog } from './dashboard-fixture.ts';
import { tempDataDir } from './warden.ts';

export interface CheckpointedLog {
  log: SignedLog;
  /** The log's checkpoint at `size` (signed by its own key) re-signed by another key: same log, size and root. */
  resigned(size: number): Checkpoint;
  /** A checkpoint at `size` signed by the log's own key over another root (a second history). */
  forged(size: number): Checkpoint;
}

/** A signed log of 202 records (log_open, 200 calls, log_close) with checkpoints at 50, 100, 150, 200 and 202, and a second key. */
export async function checkpointedLog(): Promise<CheckpointedLog> {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const own = loadSigningKey(dir, {});
  const audit = await openAuditLog({ path, key: own, strict: true, checkpointEveryRecords: 50, checkpointEveryMs: 600_000, openEntry: { event: 'log_open', ts: NOW.toISOString() } });
  // One at a time, so that each commits alone and the checkpoints land exactly every 50 records.
  for (let n = 0; n < 200; n++) await audit.append({ event: 'model_call', ts: NOW.toISOString(), agent: { id: 'alpha', version: '1' }, n });
  await audit.close({ event: 'log_close', ts: NOW.toISOString() });
  const log = readLog(path);
  assert.deepEqual(log.checkpoints.map((c) => c.size), [50, 100, 150, 200, 202]);
  const other = loadSigningKey(tempDataDir(), {});
  return {
    log,
    resigned(size) {
      const cp = log.checkpoints.find((c) => c.size === size)!;
      return signCheckpoint(other, { log_id: cp.log_id, size: cp.size, root: cp.root, ts: cp.ts });
    },
    forged(size) {
      return signCheckpoint(own, { log_id: log.logId, size, root: 'ab'.repeat(32), ts: NOW.toISOString() });
    },
  };
}

/** Records first..last, with `checkpoints` instead of the log's own. */
export async function ingestWith(store: CollectorStore, { log }: CheckpointedLog, first: number, last: number, checkpoints?: Checkpoint[]): Promise<string[]> {
  const batch = batchOf(log, first, last);
  const result = await store.ingest({ ...batch, checkpoints: checkpoints ?? batch.checkpoints }, FLEET);
  return result.alerts.map((a) => `${a.kind}@${a.seq}`);
}

/** The whole story on a store that has held the log's first 100 records (signed by its own key at 50 and 100). */
export async function assertKeyChangesAlerted(store: CollectorStore, k: CheckpointedLog): Promise<void> {
  // Another signer at 150: alerted once, with both key ids.
  const other = k.resigned(150);
  assert.deepEqual(await ingestWith(store, k, 101, 150, [other]), ['key_changed@150']);
  const alert = (await store.alerts(FLEET)).find((a) => a.kind === 'key_changed');
  assert.ok(alert?.detail.includes(other.key_id) && alert.detail.includes(k.log.checkpoints[0].key_id), alert?.detail);
  // The same batch sent again (its answer lost): nothing new.
  assert.deepEqual(await ingestWith(store, k, 101, 150, [other]), []);
  // The new signer goes on: no alert for each of its checkpoints.
  assert.deepEqual(await ingestWith(store, k, 151, 200, [k.resigned(200)]), []);
  // And back to the log's own key: a change again.
  assert.deepEqual(await ingestWith(store, k, 201, 202), ['key_changed@202']);
}

/** The log's alerts as `kind@seq`, with `(resolved)` on those resolved. */
async function alertsOf(store: CollectorStore, logId: string): Promise<string[]> {
  return (await store.alerts(FLEET)).filter((a) => a.logId === logId).map((a) => `${a.kind}@${a.seq}${a.resolvedAt ? ' (resolved)' : ''}`);
}

/** A gap (records 51..100 refused once) filled later: kept, checked, the waiting checkpoints checked, the gap resolved. */
export async function assertGapHeals(store: CollectorStore): Promise<void> {
  const k = await checkpointedLog();
  assert.deepEqual(await ingestWith(store, k, 1, 50), []);
  assert.deepEqual(await ingestWith(store, k, 101, 202), ['gap@101']);
  const late = await store.ingest(batchOf(k.log, 51, 100), FLEET);
  assert.deepEqual([late.stored, late.filled, late.duplicates, late.alerts], [50, 50, 0, []]);
  assert.deepEqual(await alertsOf(store, k.log.logId), ['gap@101 (resolved)']);
  // Sent once more (its answer lost): duplicates, nothing new.
  const again = await store.ingest(batchOf(k.log, 51, 100), FLEET);
  assert.deepEqual([again.stored, again.duplicates, again.alerts.length], [0, 50, 0]);

  // Two holes: filling the first resolves its alert and checks the checkpoints up to the second.
  const h = await checkpointedLog();
  assert.deepEqual(await ingestWith(store, h, 1, 50), []);
  assert.deepEqual(await ingestWith(store, h, 71, 120, [h.forged(100)]), ['gap@71']);
  assert.deepEqual(await ingestWith(store, h, 141, 202), ['gap@141']);
  assert.deepEqual(await ingestWith(store, h, 51, 70), ['root_mismatch@100']);
  assert.deepEqual(await alertsOf(store, h.log.logId), ['gap@71 (resolved)', 'gap@141', 'root_mismatch@100']);
  assert.deepEqual(await ingestWith(store, h, 121, 140), []);
  assert.deepEqual(await alertsOf(store, h.log.logId), ['gap@71 (resolved)', 'gap@141 (resolved)', 'root_mismatch@100']);

  // The checkpoints that came while the gap was open are checked once it fills: a forged root shows.
  const f = await checkpointedLog();
  assert.deepEqual(await ingestWith(store, f, 1, 50), []);
  assert.deepEqual(await ingestWith(store, f, 101, 202, [f.forged(150), ...f.log.checkpoints.filter((c) => c.size > 150)]), ['gap@101']);
  assert.deepEqual(await ingestWith(store, f, 51, 100), ['root_mismatch@150']);

  // Fills out of order in one batch are refused like any reordered records: a forged 51 sent after
  // the real 52 would otherwise be checked against neither.
  const o = await checkpointedLog();
  assert.deepEqual(await ingestWith(store, o, 1, 50), []);
  assert.deepEqual(await ingestWith(store, o, 53, 202), ['gap@53']);
  const forged51 = canonicalize({ ...JSON.parse(o.log.records[50]), n: 'forged' });
  const reordered = await store.ingest({ log_id: o.log.logId, first_seq: 51, last_seq: 52, records: [o.log.records[51], forged51], checkpoints: [] }, FLEET);
  assert.deepEqual(reordered.alerts.map((a) => `${a.kind}@${a.seq}`), ['conflict@51']);
  assert.deepEqual(await alertsOf(store, o.log.logId), ['gap@53', 'conflict@51']);
  // So is a fill after a record past it that the collector already holds.
  const afterHeld = await store.ingest({ log_id: o.log.logId, first_seq: 51, last_seq: 53, records: [o.log.records[52], o.log.records[50]], checkpoints: [] }, FLEET);
  assert.deepEqual(afterHeld.alerts.map((a) => `${a.kind}@${a.seq}`), ['conflict@51']);

  // A late record is checked against both neighbours: one altered no longer links to the next.
  const t = await checkpointedLog();
  assert.deepEqual(await ingestWith(store, t, 1, 50), []);
  assert.deepEqual(await ingestWith(store, t, 52, 202), ['gap@52']);
  const altered = canonicalize({ ...JSON.parse(t.log.records[50]), n: 'forged' });
  const result = await store.ingest({ log_id: t.log.logId, first_seq: 51, last_seq: 51, records: [altered], checkpoints: [] }, FLEET);
  assert.deepEqual(result.alerts.map((a) => `${a.kind}@${a.seq}`), ['chain_break@52', 'root_mismatch@100', 'root_mismatch@150', 'root_mismatch@200', 'root_mismatch@202']);
}
