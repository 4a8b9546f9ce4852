// `warden audit` on inputs it cannot use: one line naming the problem and exit 2 when nothing could be
// checked (an unreadable file, an unreachable collector, a refused token, bad flags), exit 1 only when
// the check ran and found the log or the bundle bad; never a stack trace.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { before, test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../../proxy/audit/audit-log.ts';
import { loadSigningKey } from '../../../proxy/audit/signing.ts';
import { startCollector, TOKEN } from '../../helpers/collector.ts';
import { tempDataDir, WARDEN_BIN } from '../../helpers/warden.ts';

let dir: string;
let db: string;
let bundle: string;

/** The real CLI, without blocking this process (a collector in these tests answers from here). */
function warden(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [WARDEN_BIN, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, out, errText) => {
      resolve({ code: err ? (err as { code: number }).code : 0, out, err: errText });
    });
  });
}

/** Exactly one line on stderr, no stack trace. */
function oneLine(err: string): void {
  assert.equal(err.trim().split('\n').length, 1, err);
  assert.doesNotMatch(err, /\n\s+at /);
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

before(async () => {
  dir = tempDataDir();
  db = join(dir, 'audit.db');
  const log = await openAuditLog({ path: db, key: loadSigningKey(dir, {}), strict: true, openEntry: { event: 'log_open', ts: '2026-11-01T00:00:00.000Z' } });
  for (let i = 0; i < 10; i++) await log.append({ event: 'model_call', ts: '2026-11-02T12:00:00.000Z', agent: { id: 'a', version: '1' }, text: `call ${i}` });
  await log.close({ event: 'log_close', ts: '2026-11-05T00:00:00.000Z' });
  bundle = join(dir, 'bundle.jsonl');
  const r = await warden('audit', 'export', '--db', db, '--agent', 'a', '--from', '2026-11-01T00:00:00Z', '--to', '2026-11-03T00:00:00Z', '--out', bundle);
  assert.equal(r.code, 0, r.err);
});

test('verify --db on a file that is not a readable audit log: exit 2, one line naming it', async () => {
  const scratch = tempDataDir();
  const files: [string, (path: string) => void][] = [
    ['zero-bytes.db', (p) => writeFileSync(p, '')],
    ['text.db', (p) => writeFileSync(p, 'hello, not SQLite\n')],
    ['truncated.db', (p) => writeFileSync(p, readFileSync(db).subarray(0, 8192))],
    ['directory.db', (p) => mkdirSync(p)],
  ];
  for (const [name, make] of files) {
    const path = join(scratch, name);
    make(path);
    const r = await warden('audit', 'verify', '--db', path);
    assert.equal(r.code, 2, `${name}: ${r.err}`);
    assert.match(r.err, new RegExp(`^warden: .*${name}: cannot read it as a Warden audit log \\(.+\\); nothing was checked\\n$`));
  }
});

test('verify --db on an audit log whose records table was dropped: exit 1, the log is damaged', async () => {
  const path = join(tempDataDir(), 'dropped.db');
  copyFileSync(db, path);
  const conn = new Database(path);
  conn.exec('DROP TABLE records');
  conn.close();
  const r = await warden('audit', 'verify', '--db', path);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /dropped\.db: the log is damaged: no such table: records/);
  oneLine(r.err);
});

test('verify with an unreachable or malformed collector URL, or a missing checkpoint file: exit 2, one line', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  for (const args of [['--collector', url], ['--db', db, '--collector', url]]) {
    const r = await warden('audit', 'verify', ...args);
    assert.equal(r.code, 2, r.err);
    assert.equal(r.err, `warden: cannot reach the collector at ${url}: ECONNREFUSED\n`);
  }
  const notUrl = await warden('audit', 'verify', '--collector', 'notaurl');
  assert.equal(notUrl.code, 2);
  assert.match(notUrl.err, /^warden: --collector notaurl: not an http\(s\) URL/);
  assert.doesNotMatch(notUrl.err, /\n\s+at /);
  const missing = await warden('audit', 'verify', '--db', db, '--checkpoint', join(dir, 'nope.json'));
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^warden: --checkpoint .*nope\.json: cannot read it \(ENOENT/);
  oneLine(missing.err);
  const collector = await startCollector();
  try {
    const refused = await warden('audit', 'verify', '--collector', collector.url, '--token', 'wrong');
    assert.equal(refused.code, 2);
    assert.match(refused.err, /^warden: the collector at .* refused the token \(HTTP 401\)/);
    oneLine(refused.err);
  } finally {
    await collector.close();
  }
});

test('verify --bundle: a missing file exits 2; a cut line, a record without proof or with a body that is not JSON is a bad bundle, exit 1 naming the line', async () => {
  const missing = await warden('audit', 'verify', '--bundle', join(dir, 'nope.jsonl'));
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^warden: --bundle .*nope\.jsonl: cannot read it \(ENOENT/);
  oneLine(missing.err);
  const lines = readFileSync(bundle, 'utf8').trim().split('\n');
  const last = JSON.parse(lines.at(-1)!);
  const n = lines.length;
  const { proof: _, ...noProof } = last;
  const variants: [string, string[], RegExp][] = [
    ['cut', [...lines.slice(0, -1), lines.at(-1)!.slice(0, 40)], new RegExp(`: line ${n}: not JSON`)],
    ['no-proof', [...lines.slice(0, -1), JSON.stringify(noProof)], new RegExp(`: line ${n}: record ${last.seq}: it has no inclusion proof`)],
    ['bad-body', [...lines.slice(0, -1), JSON.stringify({ ...last, body: 'not json{' })], new RegExp(`: line ${n}: record ${last.seq}: its body is not a record`)],
  ];
  for (const [name, text, message] of variants) {
    const path = join(dir, `${name}.jsonl`);
    writeFileSync(path, `${text.join('\n')}\n`);
    const r = await warden('audit', 'verify', '--bundle', path);
    assert.equal(r.code, 1, `${name}: ${r.err}`);
    assert.match(r.err, message);
    oneLine(r.err);
  }
});

test('reship to an unreachable collector or with a wrong token: exit 2, one line, the ranges left dead-lettered', async () => {
  const path = join(tempDataDir(), 'dead.db');
  copyFileSync(db, path);
  const conn = new Database(path);
  conn.prepare("INSERT INTO dead_letters (first_seq, last_seq, status, response, at) VALUES (1, 5, 400, '{}', ''), (6, 9, 400, '{}', '')").run();
  conn.close();
  const url = `http://127.0.0.1:${await closedPort()}`;
  const down = await warden('audit', 'reship', '--db', path, '--collector', url, '--token', TOKEN);
  assert.equal(down.code, 2, down.err);
  assert.equal(down.err, `warden: cannot reach the collector at ${url}: ECONNREFUSED (2 dead-lettered ranges left for the next reship)\n`);
  const collector = await startCollector();
  try {
    const wrong = await warden('audit', 'reship', '--db', path, '--collector', collector.url, '--token', 'wrong');
    assert.equal(wrong.code, 2, wrong.err);
    assert.match(wrong.err, /^warden: the collector at .* refused the token \(HTTP 401\): give --token T .*\(2 dead-lettered ranges left for the next reship\)\n$/);
    oneLine(wrong.err);
    const left = new Database(path, { readonly: true });
    assert.equal(left.prepare('SELECT count(*) FROM dead_letters').pluck().get(), 2);
    left.close();
    // A server that is no collector (here, the collector's own /healthz as a base: no ingest route there).
    const elsewhere = await warden('audit', 'reship', '--db', path, '--collector', `${collector.url}/healthz`, '--token', TOKEN);
    assert.equal(elsewhere.code, 2, elsewhere.err);
    assert.match(elsewhere.err, /^warden: http:\/\/.*\/healthz is not a Warden collector \(HTTP 40\d/);
    oneLine(elsewhere.err);
    const notUrl = await warden('audit', 'reship', '--db', path, '--collector', 'notaurl');
    assert.equal(notUrl.code, 2);
    assert.match(notUrl.err, /^warden: --collector notaurl: not an http\(s\) URL/);
    // With the right token, the collector takes them (a refusal on the merits stays exit 1: test/collector/integrity.test.ts).
    const ok = await warden('audit', 'reship', '--db', path, '--collector', collector.url, '--token', TOKEN);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /records 1\.\.5: delivered/);
  } finally {
    await collector.close();
  }
});

test('export and checkpoint on a file that is not an audit log, or export to a place it cannot write: exit 2, one line', async () => {
  const text = join(tempDataDir(), 'text.db');
  writeFileSync(text, 'hello, not SQLite\n');
  for (const args of [['export', '--agent', 'a', '--from', '2026-11-01', '--to', '2026-11-03'], ['checkpoint']]) {
    const r = await warden('audit', ...args, '--db', text);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /cannot read it as a Warden audit log/);
    oneLine(r.err);
  }
  const out = await warden('audit', 'export', '--db', db, '--agent', 'a', '--from', '2026-11-01', '--to', '2026-11-03', '--out', join(tempDataDir(), 'no', 'such', 'dir', 'b.jsonl'));
  assert.equal(out.code, 2, out.err);
  assert.match(out.err, /^warden: cannot write --out .*b\.jsonl: ENOENT/);
  oneLine(out.err);
});

test('export takes ISO 8601 dates and date-times only, and a window whose start is before its end: exit 2 otherwise', async () => {
  const range = (from: string, to: string) => warden('audit', 'export', '--db', db, '--agent', 'a', '--from', from, '--to', to);
  for (const [from, to, message] of [
    ['2026-11-03T00:00:00Z', '2026-11-01T00:00:00Z', /--from 2026-11-03T00:00:00Z must be before --to 2026-11-01T00:00:00Z/],
    ['2026-11-01', '2026-11-01', /must be before/],
    ['1', '2', /--from "1": not an ISO 8601 date or date-time/],
    ['Nov 25 2026', '2026-12-01', /--from "Nov 25 2026": not an ISO 8601/],
    ['2026-02-30', '2026-03-05', /--from "2026-02-30": not an ISO 8601/],
    ['2026-11-01', '2026-11-01T24:30Z', /--to "2026-11-01T24:30Z": not an ISO 8601/],
  ] as const) {
    const r = await range(from, to);
    assert.equal(r.code, 2, `${from} ${to}: ${r.err}`);
    assert.match(r.err, message);
    assert.equal(r.out, '', 'no bundle written');
  }
  // A date alone, and a date-time without an offset, are UTC, as the log's times are.
  for (const [from, to] of [['2026-11-02', '2026-11-03'], ['2026-11-02T00:00', '2026-11-02T23:00:00.5+00:00']]) {
    const r = await range(from, to);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^exported 10 records\n/);
  }
});

test('decrypt --seq: a malformed seq exits 2, a seq the log does not hold exits 1 saying which it holds', async () => {
  for (const seq of ['abc', '0', '1.5', '']) {
    const r = await warden('audit', 'decrypt', '--db', db, '--seq', seq);
    assert.equal(r.code, 2, `${seq}: ${r.err}`);
    assert.match(r.err, /--seq ".*": not a record's sequence number/);
    assert.equal(r.out, '');
  }
  const missing = await warden('audit', 'decrypt', '--db', db, '--seq', '99');
  assert.equal(missing.code, 1, missing.err);
  assert.match(missing.err, /audit\.db: no record 99 \(it holds records 1\.\.12\)\n$/);
  assert.equal(missing.out, '');
  const one = await warden('audit', 'decrypt', '--db', db, '--seq', '3');
  assert.equal(one.code, 0, one.err);
  assert.equal(JSON.parse(one.out).seq, 3);
});

test('export says on stderr how many matching records it left out for want of a checkpoint, and why', async () => {
  const path = join(tempDataDir(), 'unproven.db');
  copyFileSync(db, path);
  // The records after the checkpoint at 12: appended by hand, so no checkpoint covers them.
  const conn = new Database(path);
  conn.exec('DELETE FROM checkpoints');
  conn.close();
  const none = await warden('audit', 'export', '--db', path, '--agent', 'a', '--from', '2026-11-01', '--to', '2026-11-03');
  assert.equal(none.code, 0, none.err);
  assert.equal(JSON.parse(none.out.split('\n')[0]).unproven_after_checkpoint, 10);
  assert.match(none.err, /^exported 0 records\n10 matching records were left out: the log has no checkpoint yet, so no checkpoint covers them .*`warden audit verify --db` checks them by chain/m);
});
