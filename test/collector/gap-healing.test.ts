// A batch the collector once refused (the sidecar dead-letters it and moves on) leaves a gap; sent
// again with `warden audit reship`, its records fill the gap, are checked against both neighbours, the
// checkpoints that waited for them are checked at last, and the gap alert is resolved.
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import { assertGapHeals } from '../helpers/checkpointed-log.ts';
import { tempDataDir } from '../helpers/warden.ts';

test('SQLite store: a gap filled later is checked and resolved; a forged root or an altered late record shows', async () => {
  const store = openSqliteStore(join(tempDataDir(), 'collector.db'));
  try {
    await assertGapHeals(store);
  } finally {
    await store.close();
  }
});
