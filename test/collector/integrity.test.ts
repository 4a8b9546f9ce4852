// The collector checks what arrives: a log tampered with before shipping, or rewritten after it,
// raises integrity alerts. The shipper dead-letters what the collector rejects and honours Retry-After.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../proxy/audit/audit-log.ts';
import { reshipDeadLetters } from '../../proxy/audit/reship.ts';
import { pruneShipped } from '../../proxy/audit/retention.ts';
import { startShipper, type ShipperEvent } from '../../proxy/audit/shipper.ts';
import { loadSigningKey, signCheckpoint } from '../../proxy/audit/signing.ts';
import { collectorFront, startCollector, TOKEN, type TestCollector } from '../helpers/collector.ts';
import { tempDataDir, waitFor, WARDEN_BIN } from '../helpers/warden.ts';

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
  const db = new Database(path, { readonly: true });
  const last = (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
  db.close();
  const rejected = (events: ShipperEvent[]) => events.some((e) => e.type === 'ship-failed' && e.reason === 'rejected');
  return (await shipUntil(path, url, (events) => deliveredThrough(last)(events) || rejected(events), { backoffBaseMs: 50 })).events;
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
  // Alerted once, although the shipper sent the refused batch three times before dead-lettering it.
  assert.equal((await alertsFor(path)).filter((a) => a.kind === 'conflict' && a.seq === 16).length, 1);
  // And what the rewritten record said is kept apart, beside the record first shipped for seq 16.
  const logId = byHand(path).logId;
  const lines = (await (await fetch(`${collector.url}/v1/logs/${encodeURIComponent(logId)}/export`, { headers: { authorization: `Bearer ${TOKEN}` } })).text())
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const conflict = lines.find((l) => l.conflict && l.seq === 16);
  assert.ok(conflict, 'the refused record is in the export');
  assert.equal(JSON.parse(conflict.conflict).seq, 16);
  const held = lines.find((l) => l.record && JSON.parse(l.record).seq === 16);
  assert.notEqual(held.record, conflict.conflict);
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

/** A stand-in collector: `answer` gets each batch (first_seq, last_seq, record count) and says what to send back. */
async function standIn(answer: (batch: { first: number; last: number; records: number }, n: number) => { status: number; body: string; type?: string }) {
  const batches: { first: number; last: number; records: number }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const sent = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8'));
      const batch = { first: sent.first_seq, last: sent.last_seq, records: sent.records.length };
      batches.push(batch);
      const a = answer(batch, batches.length);
      res.writeHead(a.status, { 'content-type': a.type ?? 'application/json' }).end(a.body);
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, batches, close: () => server.close() };
}

/** Ships the log at `path` with `opts` until `done` holds of the events; returns the events and the log's shipping state. */
async function shipUntil(path: string, url: string, done: (events: ShipperEvent[]) => boolean, opts: { maxRecords?: number; backoffBaseMs?: number } = {}) {
  const db = new Database(path);
  const events: ShipperEvent[] = [];
  const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  const shipper = startShipper({ db, logId, url, token: TOKEN, backoffBaseMs: 20, ...opts, report: (e) => events.push(e) });
  shipper.notify();
  try {
    await waitFor(() => done(events), 15_000, 'shipping');
  } finally {
    await shipper.stop(0);
  }
  const shippedThrough = Number((db.prepare("SELECT value FROM meta WHERE key = 'shipped_through'").get() as { value: string } | undefined)?.value ?? 0);
  const dead = db.prepare('SELECT first_seq, last_seq, status FROM dead_letters').all();
  db.close();
  return { events, shippedThrough, dead };
}

const deliveredThrough = (last: number) => (events: ShipperEvent[]) => events.some((e) => e.type === 'shipped' && e.through >= last);

test('an unexpected answer (a 404, a 2xx that is not the collector\'s) is retried, never taken as delivered or dead-lettered', async () => {
  const collector = await standIn((batch, n) => n === 1 ? { status: 404, body: 'no such route', type: 'text/plain' }
    : n === 2 ? { status: 200, body: '<html>a login page</html>', type: 'text/html' }
    : { status: 200, body: JSON.stringify({ committed_through: batch.last }) });
  try {
    const { events, shippedThrough, dead } = await shipUntil(copy(), collector.url, deliveredThrough(30));
    assert.deepEqual(events.filter((e) => e.type === 'ship-failed').map((e) => e.type === 'ship-failed' && e.reason), ['server', 'server']);
    assert.equal(shippedThrough, 30);
    assert.deepEqual(dead, []);
    assert.equal(collector.batches.length, 3);
  } finally {
    collector.close();
  }
});

test('413: the same records go again in halves until the collector takes them, none dead-lettered', async () => {
  const collector = await standIn((batch) => batch.records > 8 ? { status: 413, body: '{"error":{"message":"too large"}}' } : { status: 200, body: JSON.stringify({ committed_through: batch.last }) });
  try {
    const { shippedThrough, dead } = await shipUntil(copy(), collector.url, deliveredThrough(30));
    assert.equal(shippedThrough, 30);
    assert.deepEqual(dead, []);
    const taken = collector.batches.filter((b) => b.records <= 8);
    assert.deepEqual(taken.map((b) => [b.first, b.last]).flat()[0], 1);
    for (let i = 1; i < taken.length; i++) assert.equal(taken[i].first, taken[i - 1].last + 1, 'contiguous');
    assert.equal(taken.at(-1)!.last, 30);
  } finally {
    collector.close();
  }
});

test('a committed_through past what was sent counts only what was sent: nothing is skipped', async () => {
  const collector = await standIn((batch, n) => ({ status: 200, body: JSON.stringify({ committed_through: n === 1 ? 1_000 : batch.last }) }));
  try {
    const { shippedThrough } = await shipUntil(copy(), collector.url, deliveredThrough(30), { maxRecords: 10 });
    assert.equal(shippedThrough, 30);
    assert.deepEqual(collector.batches.map((b) => [b.first, b.last]), [[1, 10], [11, 20], [21, 30]]);
  } finally {
    collector.close();
  }
});

test('a collector that keeps taking none of a batch: backed off, then the batch is dead-lettered and shipping goes on', async () => {
  const collector = await standIn((batch) => batch.first === 11 ? { status: 200, body: JSON.stringify({ committed_through: 10 }) } : { status: 200, body: JSON.stringify({ committed_through: batch.last }) });
  try {
    const { events, shippedThrough, dead } = await shipUntil(copy(), collector.url, deliveredThrough(30), { maxRecords: 10 });
    assert.deepEqual(dead, [{ first_seq: 11, last_seq: 20, status: 200 }]);
    assert.equal(shippedThrough, 30);
    const stalledSends = collector.batches.filter((b) => b.first === 11).length;
    assert.equal(stalledSends, 3);
    assert.ok(events.some((e) => e.type === 'ship-failed' && e.reason === 'rejected'));
  } finally {
    collector.close();
  }
});

test('pruning never reaches a dead-lettered batch, and a record stamped in the future does not hold the rest up', () => {
  const soon = new Date(Date.now() + 1_000).toISOString();
  const refused = new Database(copy());
  refused.prepare("INSERT INTO meta(key, value) VALUES ('shipped_through', '30') ON CONFLICT(key) DO UPDATE SET value = excluded.value").run();
  refused.prepare("INSERT INTO dead_letters (first_seq, last_seq, status, response, at) VALUES (11, 20, 400, 'nope', ?)").run(soon);
  assert.equal(pruneShipped(refused, { before: soon }), 10);
  assert.equal((refused.prepare('SELECT min(seq) AS seq FROM records').get() as { seq: number }).seq, 11);
  refused.close();

  const skewed = new Database(copy());
  skewed.prepare("INSERT INTO meta(key, value) VALUES ('shipped_through', '30') ON CONFLICT(key) DO UPDATE SET value = excluded.value").run();
  skewed.prepare("UPDATE records SET ts = '2099-01-01T00:00:00.000Z' WHERE seq = 3").run();
  assert.equal(pruneShipped(skewed, { before: soon }), 30);
  skewed.close();
});

/** A log's records and checkpoints as shipped, and a way to post any part of them to the collector by hand. */
function byHand(path: string) {
  const db = new Database(path, { readonly: true });
  const logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  const records = (db.prepare('SELECT body FROM records ORDER BY seq').all() as { body: string }[]).map((r) => r.body);
  const checkpoints = (db.prepare('SELECT body FROM checkpoints ORDER BY size').all() as { body: string }[]).map((c) => JSON.parse(c.body));
  db.close();
  const post = (first: number, last: number, cps: unknown[]) => fetch(`${collector.url}/v1/ingest`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ log_id: logId, first_seq: first, last_seq: last, records: records.slice(first - 1, last), checkpoints: cps }),
  }).then((res) => res.status);
  return { logId, records, checkpoints, at: (size: number) => checkpoints.find((c) => c.size === size)!, post };
}

test('a checkpoint sent before the records it covers is reported and not kept: the real one, with its records, is checked', async () => {
  const path = await fresh();
  const log = byHand(path);
  // Records 1..5 with a checkpoint at 10 (the log's own, but ahead of what the collector holds).
  assert.equal(await log.post(1, 5, [log.at(10)]), 200);
  // Then the rest, each checkpoint with its records.
  assert.equal(await log.post(6, log.records.length, log.checkpoints), 200);
  const alerts = (await alertsFor(path)).map((a) => `${a.kind}@${a.seq}`);
  assert.deepEqual(alerts, ['checkpoint_ahead@10']);
});

test('a batch sent again is taken without a new alert; a second, validly signed checkpoint for a size held is a root_mismatch', async () => {
  const path = await fresh();
  await ship(path, collector.url);
  const log = byHand(path);
  assert.equal(await log.post(1, 10, [log.at(10)]), 200);
  assert.deepEqual(await alertsFor(path), []);
  // The same log's key signs another history of its first ten records.
  const other = signCheckpoint(loadSigningKey(keyDir, {}), { log_id: log.logId, size: 10, root: 'ab'.repeat(32), ts: new Date().toISOString() });
  assert.equal(await log.post(1, 10, [other]), 200);
  assert.deepEqual((await alertsFor(path)).map((a) => `${a.kind}@${a.seq}`), ['root_mismatch@10']);
});

test('a collector that keeps answering the same low committed_through cannot rewind shipping into what was dead-lettered', async () => {
  const collector = await standIn(() => ({ status: 200, body: JSON.stringify({ committed_through: 10 }) }));
  try {
    const { shippedThrough, dead } = await shipUntil(copy(), collector.url, (events) => events.filter((e) => e.type === 'ship-failed' && e.reason === 'rejected').length >= 2, { maxRecords: 10 });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(dead, [{ first_seq: 11, last_seq: 20, status: 200 }, { first_seq: 21, last_seq: 30, status: 200 }]);
    assert.equal(shippedThrough, 30);
    // Each refused batch was sent three times, and never again once dead-lettered.
    assert.deepEqual(collector.batches.map((b) => b.first), [1, 11, 11, 11, 21, 21, 21]);
  } finally {
    collector.close();
  }
});

test('a 413 halves the batches for good, and a single record refused as too large does not keep the rest at one a batch', async () => {
  // More than 8 records is too large, and so is record 13, alone or not.
  const collector = await standIn((batch) => batch.records > 8 || (batch.first <= 13 && 13 <= batch.last) ? { status: 413, body: '{}' } : { status: 200, body: JSON.stringify({ committed_through: batch.last }) });
  try {
    const { shippedThrough, dead } = await shipUntil(copy(), collector.url, deliveredThrough(30));
    assert.equal(shippedThrough, 30);
    assert.deepEqual(dead, [{ first_seq: 13, last_seq: 13, status: 413 }]);
    const refusedForSize = collector.batches.filter((b) => b.records > 8).length;
    assert.ok(refusedForSize <= 3, `${refusedForSize} batches refused for their size: ${JSON.stringify(collector.batches)}`);
  } finally {
    collector.close();
  }
});

test('after a gap, a second, different checkpoint for the size held is still a root_mismatch', async () => {
  const path = await fresh();
  const log = byHand(path);
  assert.equal(await log.post(1, 5, []), 200);
  assert.equal(await log.post(8, 10, [log.at(10)]), 200); // 6 and 7 never arrive: the frontier stops at 5
  const other = signCheckpoint(loadSigningKey(keyDir, {}), { log_id: log.logId, size: 10, root: 'cd'.repeat(32), ts: new Date().toISOString() });
  assert.equal(await log.post(8, 10, [other]), 200);
  assert.deepEqual((await alertsFor(path)).map((a) => `${a.kind}@${a.seq}`), ['gap@8', 'root_mismatch@10']);
});

test('a batch dead-lettered by a collector since mended: `warden audit reship` sends it again, the gap fills and its alert resolves', async () => {
  // A collector that refuses records 11..20 as malformed for a while (a bug since fixed) and takes the rest.
  const front = await collectorFront(collector.url, (batch) => batch.first_seq <= 11 && 11 <= batch.last_seq);
  const frontUrl = front.url;
  const path = await fresh();
  try {
    const { dead } = await shipUntil(path, frontUrl, deliveredThrough(30), { maxRecords: 10 });
    assert.deepEqual(dead, [{ first_seq: 11, last_seq: 20, status: 400 }]);
    assert.deepEqual((await alertsFor(path)).map((a) => `${a.kind}@${a.seq}`), ['gap@21']);
    // Not spawnSync: the collector and its front answer from this process.
    const cli = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [WARDEN_BIN, 'audit', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => resolve({ status: err ? (err.code as number) : 0, stdout, stderr }));
    });
    // Still refused: the range stays dead-lettered, and the command says so.
    const refused = await cli('reship', '--db', path, '--collector', frontUrl, '--token', TOKEN);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /records 11\.\.20: refused: HTTP 400/);
    front.refusing = false;
    const r = await cli('reship', '--db', path, '--collector', frontUrl, '--token', TOKEN);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /records 11\.\.20: delivered: the collector holds them all/);
    const db = new Database(path, { readonly: true });
    assert.deepEqual(db.prepare('SELECT * FROM dead_letters').all(), []);
    db.close();
    const alerts = await alertsFor(path);
    assert.deepEqual(alerts.map((a) => `${a.kind}@${a.seq}`), ['gap@21']);
    assert.ok((alerts[0] as { resolvedAt?: string }).resolvedAt, 'the gap alert is resolved');
    assert.equal((await cli('reship', '--db', path, '--collector', frontUrl, '--token', TOKEN)).stdout, 'no dead-lettered batches: the collector has been sent everything\n');
    // And the collector's copy of the log verifies whole, the resolved gap named but not failing it.
    const verified = await cli('verify', '--collector', collector.url, '--token', TOKEN);
    const line = verified.stdout.split('\n').find((l) => l.includes('gap, settled (resolved'));
    assert.ok(line, verified.stdout + verified.stderr);
  } finally {
    front.close();
  }
});

test('reship sends the checkpoints a refused batch carried (the one just before its records, or one alone), which pruning keeps till then', async () => {
  const path = await fresh();
  const log = byHand(path);
  // The collector holds records 1..10 and 21..30 and none of the log's checkpoints (10, 20, 30): the
  // batch of 11..20 (with the checkpoint at 10, taken after 1..10 went, and the one at 20) and one of
  // the checkpoint at 30 alone were refused.
  assert.equal(await log.post(1, 10, []), 200);
  assert.equal(await log.post(21, 30, []), 200);
  const db = new Database(path);
  db.prepare("INSERT INTO meta(key, value) VALUES ('shipped_through', '30'), ('checkpoints_shipped_through', '30')").run();
  db.prepare("INSERT INTO dead_letters (first_seq, last_seq, status, response, at) VALUES (11, 20, 400, '{}', ''), (31, 30, 400, '{}', '')").run();
  // Everything is shipped and old enough; the refused records and those checkpoints must stay.
  pruneShipped(db, { before: new Date(Date.now() + 86_400_000).toISOString() });
  assert.deepEqual(db.prepare('SELECT size FROM checkpoints ORDER BY size').pluck().all(), [10, 20, 30]);
  const logId = log.logId;
  const outcomes = await reshipDeadLetters({ db, logId, url: collector.url, token: TOKEN });
  db.close();
  assert.deepEqual(outcomes.map((o) => [o.first, o.last, o.result]), [[11, 20, 'delivered'], [31, 30, 'delivered']]);
  const held = (await (await fetch(`${collector.url}/v1/logs/${encodeURIComponent(logId)}/export`, { headers: { authorization: `Bearer ${TOKEN}` } })).text())
    .split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.checkpoint).map((l) => l.checkpoint.size);
  assert.deepEqual(held, [10, 20, 30]);
  // The records filled the gap, every checkpoint held checks out, and the gap alert is resolved.
  const alerts = await alertsFor(path) as { kind: string; seq: number; resolvedAt?: string }[];
  assert.deepEqual(alerts.map((a) => [a.kind, a.seq, Boolean(a.resolvedAt)]), [['gap', 21, true]]);
});

test('reship counts a checkpoint alone as delivered only when the collector keeps it (not one ahead of its records)', async () => {
  const path = await fresh();
  const log = byHand(path);
  assert.equal(await log.post(1, 20, []), 200);
  const db = new Database(path);
  db.prepare("INSERT INTO dead_letters (first_seq, last_seq, status, response, at) VALUES (31, 30, 400, '{}', '')").run();
  const [outcome] = await reshipDeadLetters({ db, logId: log.logId, url: collector.url, token: TOKEN });
  assert.deepEqual([outcome.result, outcome.detail], ['refused', 'the collector did not keep it (1 integrity alerts: see its /v1/alerts)']);
  assert.equal(db.prepare('SELECT count(*) FROM dead_letters').pluck().get(), 1);
  // Once the records it covers are there, the same checkpoint is kept, and the row goes.
  assert.equal(await log.post(21, 30, []), 200);
  const [again] = await reshipDeadLetters({ db, logId: log.logId, url: collector.url, token: TOKEN });
  db.close();
  assert.equal(again.result, 'delivered');
});
