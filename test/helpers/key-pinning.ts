// One log's checkpoints signed by its own key, then by another (a rewrite of unshipped records by
// someone without the log's key, or a rotation), as a collector store sees them: the stores pin the
// first signer and must alert each change of it once, whatever the store.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { CollectorStore } from '../../collector/store.ts';
import { loadSigningKey, signCheckpoint, type Checkpoint } from '../../proxy/audit/signing.ts';
import { openAuditLog } from '../../proxy/audit/audit-log.ts';
import { batchOf, FLEET, NOW, readLog, type SignedLog } from './dashboard-fixture.ts';
import { tempDataDir } from './warden.ts';

export interface KeyChangeLog {
  log: SignedLog;
  /** The log's checkpoint at `size` (signed by its own key) re-signed by another key: same log, size and root. */
  resigned(size: number): Checkpoint;
}

/** A signed log of 202 records (log_open, 200 calls, log_close) with checkpoints at 50, 100, 150, 200 and 202, and a second key. */
export async function keyChangeLog(): Promise<KeyChangeLog> {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const audit = await openAuditLog({ path, key: loadSigningKey(dir, {}), strict: true, checkpointEveryRecords: 50, checkpointEveryMs: 600_000, openEntry: { event: 'log_open', ts: NOW.toISOString() } });
  // One at a time, so that each commits alone and the checkpoints land exactly every 50 records.
  for (let n = 0; n < 200; n++) await audit.append({ event: 'model_call', ts: NOW.toISOString(), agent: { id: 'alpha', version: '1' }, n });
  await audit.close({ event: 'log_close', ts: NOW.toISOString() });
  const log = readLog(path);
  assert.deepEqual(log.checkpoints.map((c) => c.size), [50, 100, 150, 200, 202]);
  const other = loadSigningKey(tempDataDir(), {});
  return {
    log,
    resigned(size) {
      const own = log.checkpoints.find((c) => c.size === size)!;
      return signCheckpoint(other, { log_id: own.log_id, size: own.size, root: own.root, ts: own.ts });
    },
  };
}

/** Records first..last, with `checkpoints` instead of the log's own. */
export async function ingestWith(store: CollectorStore, { log }: KeyChangeLog, first: number, last: number, checkpoints?: Checkpoint[]): Promise<string[]> {
  const batch = batchOf(log, first, last);
  const result = await store.ingest({ ...batch, checkpoints: checkpoints ?? batch.checkpoints }, FLEET);
  return result.alerts.map((a) => `${a.kind}@${a.seq}`);
}

/** The whole story on a store that has held the log's first 100 records (signed by its own key at 50 and 100). */
export async function assertKeyChangesAlerted(store: CollectorStore, k: KeyChangeLog): Promise<void> {
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
