// A checkpoint carries its own public key, so its signature alone proves only that someone signed it.
// The collector pins each log's signer and raises a key_changed alert when another key signs, once a
// change; a store from before pinning takes each log's signer from its earliest checkpoint on upgrade.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import { leafHash, rootOf } from '../../proxy/audit/merkle.ts';
import { loadSigningKey, signCheckpoint } from '../../proxy/audit/signing.ts';
import { NOW } from '../helpers/dashboard-fixture.ts';
import { assertKeyChangesAlerted, checkpointedLog, ingestWith } from '../helpers/checkpointed-log.ts';
import { tempDataDir } from '../helpers/warden.ts';

/** A SQLite store given to `use`, then closed. */
async function withStore(use: (store: CollectorStore) => Promise<void>, path = join(tempDataDir(), 'collector.db')): Promise<void> {
  const store = openSqliteStore(path);
  try {
    await use(store);
  } finally {
    await store.close();
  }
}

/** A store filled by `before`, taken back to the schema from before pinning by `downgrade`, then opened (upgraded) for `after`. */
async function acrossUpgrade(before: (store: CollectorStore) => Promise<void>, downgrade: string, after: (store: CollectorStore) => Promise<void>): Promise<void> {
  const path = join(tempDataDir(), 'collector.db');
  await withStore(before, path);
  const db = new Database(path);
  db.exec(downgrade);
  db.close();
  await withStore(after, path);
}

test('SQLite store: a log signed by another key → one key_changed alert a change, never one a checkpoint', async () => {
  const k = await checkpointedLog();
  await withStore(async (store) => {
    assert.deepEqual(await ingestWith(store, k, 1, 100), []);
    await assertKeyChangesAlerted(store, k);
  });
});

test('SQLite store from before key pinning: the upgrade pins each log to its checkpoints\' signer', async () => {
  const k = await checkpointedLog();
  await acrossUpgrade(
    async (store) => assert.deepEqual(await ingestWith(store, k, 1, 100), []),
    'ALTER TABLE logs DROP COLUMN key_id',
    // Were the log not pinned on upgrade, the next checkpoint's signer would be taken as the log's, unalerted.
    (store) => assertKeyChangesAlerted(store, k),
  );
});

test('a checkpoint older than the newest held is judged by the checkpoints around it, and never moves the pin', async () => {
  const k = await checkpointedLog();
  await withStore(async (store) => {
    const own = k.log.checkpoints.find((c) => c.size === 50)!;
    // Records 1..100 without the checkpoint at 50; then the signer changes at 150.
    assert.deepEqual(await ingestWith(store, k, 1, 100, k.log.checkpoints.filter((c) => c.size === 100)), []);
    assert.deepEqual(await ingestWith(store, k, 101, 150, [k.resigned(150)]), ['key_changed@150']);
    // The old key's checkpoint at 50 comes late (a reship): the key that signed the log then, no alert.
    assert.deepEqual(await ingestWith(store, k, 1, 50, [own]), []);
    // One at 75 by a third key, between two by the old one: alerted.
    const leaves = k.log.records.slice(0, 75).map((r) => leafHash(r));
    const stranger = signCheckpoint(loadSigningKey(tempDataDir(), {}), { log_id: k.log.logId, size: 75, root: rootOf(leaves).toString('hex'), ts: NOW.toISOString() });
    assert.deepEqual(await ingestWith(store, k, 1, 100, [stranger]), ['key_changed@75']);
    // The pin is still the newest signer's.
    assert.deepEqual(await ingestWith(store, k, 151, 200, [k.resigned(200)]), []);
  });
});

test('the upgrade pins a log whose checkpoints already changed signer to its first signer, so the change is still alerted', async () => {
  const k = await checkpointedLog();
  await acrossUpgrade(
    async (store) => void (await ingestWith(store, k, 1, 150, [...k.log.checkpoints.filter((c) => c.size <= 100), k.resigned(150)])),
    // As a store from before pinning: no signer kept, and no alert for the change it never noticed.
    "ALTER TABLE logs DROP COLUMN key_id; DELETE FROM alerts WHERE kind = 'key_changed'",
    async (store) => assert.deepEqual(await ingestWith(store, k, 151, 200, [k.resigned(200)]), ['key_changed@200']),
  );
});
