// A batch the collector once refused (the sidecar dead-letters it and moves on) leaves a gap; sent
// again with `warden audit reship`, its records fill the gap, are checked against both neighbours, the
// checkpoints that waited for them are checked at last, and the gap alert is resolved.
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import assert from 'node:assert/strict';
import { assertGapHeals, checkpointedLog, ingestWith } from '../helpers/checkpointed-log.ts';
import { FLEET } from '../helpers/dashboard-fixture.ts';
import { tempDataDir } from '../helpers/warden.ts';

test('SQLite store: a gap filled later is checked and resolved; a forged root or an altered late record shows', async () => {
  const store = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    await assertGapHeals(store);
  } finally {
    await store.close();
  }
});

test('a catch-up longer than one batch may do goes on with the log\'s next batch, checking and resolving as it comes', async () => {
  // Pages of 10 leaves, two a batch: filling 11..20 lets the frontier take 20 leaves, to 40.
  const store = openSqliteStore(join(tempDataDir(), 'collector.db'), { page: 10, pages: 2 });
  try {
    const k = await checkpointedLog();
    assert.deepEqual(await ingestWith(store, k, 1, 10), []);
    assert.deepEqual(await ingestWith(store, k, 21, 150, [k.forged(50), k.forged(150)]), ['gap@21']);
    // The forged checkpoint at 50 is past where this batch's catch-up stops: not yet checked.
    assert.deepEqual(await ingestWith(store, k, 11, 20), []);
    const alerts = async () => (await store.alerts(FLEET)).filter((a) => a.logId === k.log.logId).map((a) => `${a.kind}@${a.seq}${a.resolvedAt ? ' (resolved)' : ''}`);
    assert.deepEqual(await alerts(), ['gap@21 (resolved)']);
    // The next batch, whatever it brings, goes on: 40 to 60 (the root at 50 fails), then to 80, and so on.
    assert.deepEqual(await ingestWith(store, k, 151, 160), ['root_mismatch@50']);
    for (let seq = 161; seq <= 164; seq++) assert.deepEqual(await ingestWith(store, k, seq, seq), []);
    // The fifth, from 140 to 160, reaches the forged root at 150.
    assert.deepEqual(await ingestWith(store, k, 165, 165), ['root_mismatch@150']);
    assert.deepEqual(await alerts(), ['gap@21 (resolved)', 'root_mismatch@50', 'root_mismatch@150']);
  } finally {
    await store.close();
  }
});
