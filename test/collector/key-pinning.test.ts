// A checkpoint carries its own public key, so its signature alone proves only that someone signed it.
// The collector pins each log's signer and raises a key_changed alert when another key signs, once a
// change; a store from before pinning takes each log's signer from its latest checkpoint on upgrade.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import { assertKeyChangesAlerted, checkpointedLog, ingestWith } from '../helpers/checkpointed-log.ts';
import { tempDataDir } from '../helpers/warden.ts';

test('SQLite store: a log signed by another key → one key_changed alert a change, never one a checkpoint', async () => {
  const k = await checkpointedLog();
  const store = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    assert.deepEqual(await ingestWith(store, k, 1, 100), []);
    await assertKeyChangesAlerted(store, k);
  } finally {
    await store.close();
  }
});

test('SQLite store from before key pinning: the upgrade pins each log to its latest checkpoint\'s signer', async () => {
  const k = await checkpointedLog();
  const path = join(tempDataDir(), 'collector.db');
  let store = openSqliteStore(path);
  assert.deepEqual(await ingestWith(store, k, 1, 100), []);
  await store.close();
  const db = new Database(path);
  db.exec('ALTER TABLE logs DROP COLUMN key_id');
  db.close();
  store = openSqliteStore(path);
  try {
    // Were the log not pinned on upgrade, the next checkpoint's signer would be taken as the log's, unalerted.
    await assertKeyChangesAlerted(store, k);
  } finally {
    await store.close();
  }
});
