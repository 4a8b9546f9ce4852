// A real store failure (a full disk) is answered 503 for the sender to retry, and logged as itself:
// SQLite ends the transaction on its own on such errors, and a ROLLBACK after that used to throw
// "cannot rollback - no transaction is active", which was logged instead of the disk being full.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { request } from 'undici';
import { createCollectorServer } from '../../collector/server.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import { TOKEN } from '../helpers/collector.ts';
import { batchOf, signedLog } from '../helpers/dashboard-fixture.ts';
import { tempDataDir } from '../helpers/warden.ts';

test('an error that ends the SQLite transaction itself surfaces as that error, and the store goes on', async () => {
  const path = join(tempDataDir(), 'collector.db');
  const store = openSqliteStore(path);
  const lines: string[] = [];
  const log = pino({ level: 'error' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  const server = createCollectorServer({ store, tokens: new Map([[TOKEN, 'test-fleet']]), log });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/ingest`;
  const post = async (batch: unknown) => {
    const res = await request(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(batch) });
    return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as any };
  };
  try {
    const log1 = await signedLog([{ event: 'note', ts: '2025-06-15T00:00:00.000Z' }]);
    // Stands in for SQLITE_FULL: RAISE(ROLLBACK) fails the statement and ends the transaction, as a
    // full disk or an I/O error does. Made from another connection: the store's sees the schema change.
    const other = new Database(path);
    other.exec("CREATE TRIGGER disk_full BEFORE INSERT ON records BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END");
    await assert.rejects(store.ingest(batchOf(log1, 1, log1.records.length), 'test-fleet'), /database or disk is full/);
    const res = await post(batchOf(log1, 1, log1.records.length));
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'WARDEN_ERR_STORE_UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(lines.length, 1);
    assert.match(lines[0], /database or disk is full/);
    assert.doesNotMatch(lines[0], /no transaction is active/);
    // Space freed: the same batch goes in whole.
    other.exec('DROP TRIGGER disk_full');
    other.close();
    const ok = await post(batchOf(log1, 1, log1.records.length));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.committed_through, log1.records.length);
  } finally {
    server.close();
    server.closeAllConnections();
    await store.close();
  }
});
