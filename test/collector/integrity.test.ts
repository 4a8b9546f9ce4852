// The collector checks what arrives: a log tampered with before shipping, or rewritten after it,
// raises integrity alerts. The shipper dead-letters what the collector rejects and honours Retry-After.
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../proxy/audit/audit-log.ts';
import { startShipper, type ShipperEvent } from '../../proxy/audit/shipper.ts';
import { loadSigningKey } from '../../proxy/audit/signing.ts';
import { startCollector, TOKEN, type TestCollector } from '../helpers/collector.ts';
import { tempDataDir, waitFor } from '../helpers/warden.ts';

let original: string;
let keyDir: string;

async function writeLog(path: string, records: number): Promise<void> {
  const log = await openAuditLog({ path, key: loadSigningKey(keyDir, {}), strict: true, checkpointEveryRecords: 10, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
  for (let i = 0; i < records; i++) await log.append({ event: 'model_call', ts: new Date().toISOString(), text: `reply number ${i}` });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
}

before(async () => {
  keyDir = tempDataDir();
  original = join(keyDir, 'audit.db');
  await writeLog(original, 28);
});

/** A copy of the intact log (same log id: only for senders other than the real collector). */
function copy(): string {
  const path = join(tempDataDir(), 'audit.db');
  copyFileSync(original, path);
  return path;
}

/** A new log of its own (its own log id, so the collector sees each tampering alone), then changed. */
async function fresh(mutate?: (db: Database.Database) => void): Promise<string> {
  const path = join(tempDataDir(), 'audit.db');
  await writeLog(path, 28);
  const db = new Database(path);
  mutate?.(db);
  db.close();
  return path;
}

/** Ships the whole log at `path` to `url` and returns every event the shipper reported. */
async function ship(path: string, url: string): Promise<ShipperEvent[]> {
  const db = new Database(path);
  const events: ShipperEvent[] = [];
  const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  const last = (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
  const shipper = startShipper({ db, logId, url, token: TOKEN, backoffBaseMs: 50, report: (e) => events.push(e) });
  shipper.notify();
  try {
    await waitFor(() => events.some((e) => e.type === 'shipped' && e.through >= last) || events.some((e) => e.type === 'ship-failed' && e.reason === 'rejected'), 15_000, 'shipping');
  } finally {
    await shipper.stop(0);
    db.close();
  }
  return events;
}

let collector: TestCollector;
before(async () => {
  collector = await startCollector();
});
after(() => collector.close());

async function alertsFor(path: string): Promise<{ kind: string; seq: number; logId: string }[]> {
  const db = new Database(path, { readonly: true });
  const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  db.close();
  return (await collector.get('/v1/alerts')).alerts.filter((a: { logId: string }) => a.logId === logId);
}

test('an intact log ships with no alert', async () => {
  const path = await fresh();
  await ship(path, collector.url);
  assert.deepEqual(await alertsFor(path), []);
});

test('a record changed before shipping → a chain_break alert at the next seq', async () => {
  const path = await fresh((db) => {
    db.prepare("UPDATE records SET body = replace(body, 'reply number 5', 'reply number 9') WHERE seq = 7").run();
  });
  await ship(path, collector.url);
  const kinds = (await alertsFor(path)).map((a) => `${a.kind}@${a.seq}`);
  assert.ok(kinds.includes('chain_break@8'), kinds.join());
});

test('a deleted record → a gap alert', async () => {
  const path = await fresh((db) => {
    db.prepare('DELETE FROM records WHERE seq = 12').run();
  });
  await ship(path, collector.url);
  assert.ok((await alertsFor(path)).some((a) => a.kind === 'gap' && a.seq === 13));
});

test('two swapped records → alerts at the swap', async () => {
  const path = await fresh((db) => {
    const a = db.prepare('SELECT body, leaf FROM records WHERE seq = 5').get() as { body: string; leaf: Buffer };
    const b = db.prepare('SELECT body, leaf FROM records WHERE seq = 6').get() as { body: string; leaf: Buffer };
    db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = 5').run(b.body, b.leaf);
    db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = 6').run(a.body, a.leaf);
  });
  await ship(path, collector.url);
  const kinds = (await alertsFor(path)).map((a) => a.kind);
  assert.ok(kinds.includes('gap') && kinds.includes('conflict'), kinds.join());
});

test('a tail truncated after shipping and regrown → conflict alerts against what the collector holds', async () => {
  const path = await fresh();
  await ship(path, collector.url);
  const db = new Database(path);
  db.prepare('DELETE FROM records WHERE seq > 15').run();
  db.prepare('DELETE FROM checkpoints WHERE size > 15').run();
  // The tamperer rewinds the shipping position too, so the rewritten records do get sent.
  db.prepare("UPDATE meta SET value = '15' WHERE key IN ('shipped_through', 'checkpoints_shipped_through')").run();
  db.close();
  const log = await openAuditLog({ path, key: loadSigningKey(keyDir, {}), strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
  for (let i = 0; i < 5; i++) await log.append({ event: 'model_call', ts: new Date().toISOString(), text: `rewritten ${i}` });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  await ship(path, collector.url);
  assert.ok((await alertsFor(path)).some((a) => a.kind === 'conflict' && a.seq === 16));
});

test('a batch the collector rejects (400) is dead-lettered locally and reported, never dropped', async () => {
  const rejecting = createServer((req, res) => {
    req.resume();
    res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"nope"}}');
  }).listen(0, '127.0.0.1');
  await new Promise((r) => rejecting.once('listening', r));
  const path = copy();
  try {
    const events = await ship(path, `http://127.0.0.1:${(rejecting.address() as { port: number }).port}`);
    assert.ok(events.some((e) => e.type === 'ship-failed' && e.reason === 'rejected'));
  } finally {
    rejecting.close();
  }
  const db = new Database(path, { readonly: true });
  const dead = db.prepare('SELECT first_seq, last_seq, status FROM dead_letters').all();
  db.close();
  assert.deepEqual(dead, [{ first_seq: 1, last_seq: 30, status: 400 }]);
});

test('429 with Retry-After: the shipper waits as told, then delivers', async () => {
  const times: number[] = [];
  const throttling = createServer((req, res) => {
    times.push(Date.now());
    req.resume();
    if (times.length === 1) return void res.writeHead(429, { 'retry-after': '1' }).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"committed_through":30}');
  }).listen(0, '127.0.0.1');
  await new Promise((r) => throttling.once('listening', r));
  try {
    const events = await ship(copy(), `http://127.0.0.1:${(throttling.address() as { port: number }).port}`);
    assert.ok(events.some((e) => e.type === 'ship-failed' && e.reason === 'throttled'));
    assert.ok(times.length >= 2 && times[1] - times[0] >= 1_000, `retried after ${times[1] - times[0]} ms`);
  } finally {
    throttling.close();
  }
});
