// Export bundles prove each record's place in the signed log offline; `verify --collector` checks the
// collector's copy of every log.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../../proxy/audit/audit-log.ts';
import { startShipper } from '../../../proxy/audit/shipper.ts';
import { loadSigningKey } from '../../../proxy/audit/signing.ts';
import { startCollector, TOKEN } from '../../helpers/collector.ts';
import { tempDataDir, waitFor, WARDEN_BIN } from '../../helpers/warden.ts';

const run = promisify(execFile);
let dir: string;
let db: string;

/** Runs the real CLI without blocking this process (the collector in these tests lives here). */
async function warden(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [WARDEN_BIN, ...args], { encoding: 'utf8' });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

before(async () => {
  dir = tempDataDir();
  db = join(dir, 'audit.db');
  const log = await openAuditLog({ path: db, key: loadSigningKey(dir, {}), strict: true, openEntry: { event: 'log_open', ts: '2026-11-01T00:00:00.000Z' } });
  for (let i = 0; i < 40; i++) {
    const day = String(1 + (i % 4)).padStart(2, '0');
    await log.append({ event: 'model_call', ts: `2026-11-${day}T12:00:00.000Z`, agent: { id: i % 2 ? 'refund-bot' : 'support-bot', version: '1' }, text: `call ${i}` });
  }
  await log.close({ event: 'log_close', ts: '2026-11-05T00:00:00.000Z' });
});

test('export: one agent in a window, each record with an inclusion proof that verifies offline', async () => {
  const bundle = join(dir, 'bundle.jsonl');
  const r = await warden('audit', 'export', '--db', db, '--agent', 'support-bot', '--from', '2026-11-02T00:00:00Z', '--to', '2026-11-04T00:00:00Z', '--out', bundle);
  assert.equal(r.code, 0, r.err);
  const lines = readFileSync(bundle, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const records = lines.filter((l) => l.type === 'record').map((l) => JSON.parse(l.body));
  assert.equal(records.length, 10);
  assert.ok(records.every((rec) => rec.agent.id === 'support-bot' && rec.ts >= '2026-11-02' && rec.ts < '2026-11-04'));
  const ok = await warden('audit', 'verify', '--bundle', bundle);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /ok: 10 records/);
  // A bundle carries its signer's public key: only --key says whether that signer is the fleet's.
  const own = loadSigningKey(dir, {}).publicKeyDer.toString('base64');
  assert.equal((await warden('audit', 'verify', '--bundle', bundle, '--key', own)).code, 0);
  const stranger = await warden('audit', 'verify', '--bundle', bundle, '--key', loadSigningKey(tempDataDir(), {}).publicKeyDer.toString('base64'));
  assert.equal(stranger.code, 1);
  assert.match(stranger.err, /: seq 42: the checkpoint is signed by key [0-9a-f]{32}, which is not one of the keys given to trust/);
});

test('an edited ts column does not move a record out of an export\'s window (the window is read from the hashed records)', async () => {
  const copy = join(dir, 'ts-edited.db');
  copyFileSync(db, copy);
  const edit = new Database(copy);
  const moved = edit.prepare("SELECT seq FROM records WHERE json_extract(body, '$.agent.id') = 'support-bot' AND ts >= '2026-11-02' AND ts < '2026-11-04' LIMIT 1").pluck().get() as number;
  edit.prepare("UPDATE records SET ts = '1999-01-01T00:00:00.000Z' WHERE seq = ?").run(moved);
  edit.close();
  const bundle = join(dir, 'ts-edited.jsonl');
  assert.equal((await warden('audit', 'export', '--db', copy, '--agent', 'support-bot', '--from', '2026-11-02T00:00:00Z', '--to', '2026-11-04T00:00:00Z', '--out', bundle)).code, 0);
  const seqs = readFileSync(bundle, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'record').map((l) => l.seq);
  assert.equal(seqs.length, 10);
  assert.ok(seqs.includes(moved));
});

test('a bundle with an altered or invented record fails, naming the seq', async () => {
  const bundle = join(dir, 'b2.jsonl');
  await warden('audit', 'export', '--db', db, '--agent', 'refund-bot', '--from', '2026-11-01T00:00:00Z', '--to', '2026-12-01T00:00:00Z', '--out', bundle);
  const text = readFileSync(bundle, 'utf8');
  const altered = join(dir, 'altered.jsonl');
  writeFileSync(altered, text.replace('call 3\\"', 'call 33\\"'));
  const r = await warden('audit', 'verify', '--bundle', altered);
  assert.equal(r.code, 1);
  assert.match(r.err, /seq 5: the record is not in the signed log/);
  const lines = text.trim().split('\n');
  const last = JSON.parse(lines.at(-1)!);
  const invented = join(dir, 'invented.jsonl');
  // A record the log never held, placed after the checkpoint with a borrowed proof.
  writeFileSync(invented, `${text}${JSON.stringify({ ...last, seq: 43, body: last.body.replace(/"seq":\d+/, '"seq":43') })}\n`);
  const r2 = await warden('audit', 'verify', '--bundle', invented);
  assert.equal(r2.code, 1);
  assert.match(r2.err, /seq 43: the record is not in the signed log/);
  const doubled = join(dir, 'doubled.jsonl');
  writeFileSync(doubled, `${text}${lines.at(-1)}\n`);
  const r3 = await warden('audit', 'verify', '--bundle', doubled);
  assert.equal(r3.code, 1);
  assert.match(r3.err, /appears twice/);
});

test('verify --collector: intact logs pass; a record deleted before shipping fails with its seq; a tail truncated after shipping fails against the collector\'s checkpoints', { timeout: 60_000 }, async () => {
  const collector = await startCollector();
  try {
    const ship = async (path: string) => {
      const conn = new Database(path);
      const logId = (conn.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
      const last = (conn.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
      let through = 0;
      const s = startShipper({ db: conn, logId, url: collector.url, token: TOKEN, report: (e) => e.type === 'shipped' && (through = e.through) });
      await waitFor(() => through >= last, 10_000, 'shipping');
      await s.stop(0);
      conn.close();
    };
    await ship(db);
    const ok = await warden('audit', 'verify', '--collector', collector.url, '--token', TOKEN);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /ok: 42 records/);
    const other = join(tempDataDir(), 'audit.db');
    const log = await openAuditLog({ path: other, key: loadSigningKey(dir, {}), strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
    for (let i = 0; i < 9; i++) await log.append({ event: 'model_call', ts: new Date().toISOString(), n: i });
    await log.close({ event: 'log_close', ts: new Date().toISOString() });
    const conn = new Database(other);
    conn.prepare('DELETE FROM records WHERE seq = 4').run();
    conn.close();
    await ship(other);
    const bad = await warden('audit', 'verify', '--collector', collector.url, '--token', TOKEN);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /seq 4: record 4 is missing/);
    assert.match(bad.err, /integrity alert gap/);
    assert.equal((await warden('audit', 'verify', '--collector', collector.url, '--token', 'wrong')).code, 2);
    // A tail cut from the local file together with its checkpoints: the collector's checkpoints tell.
    const cut = new Database(db);
    cut.prepare('DELETE FROM records WHERE seq > 30').run();
    cut.prepare('DELETE FROM checkpoints WHERE size > 30').run();
    cut.close();
    assert.equal((await warden('audit', 'verify', '--db', db)).code, 0, 'alone, the shortened file is self-consistent');
    const truncated = await warden('audit', 'verify', '--db', db, '--collector', collector.url, '--token', TOKEN);
    assert.equal(truncated.code, 1);
    assert.match(truncated.err, /seq 31: the log ends at record 30, but a checkpoint .* attests 42 records \(the tail was truncated\)/);
  } finally {
    await collector.close();
  }
});

test('verify --collector: a log whose signing key was rotated fails on its key_changed alert, and passes with both keys given', { timeout: 60_000 }, async () => {
  const collector = await startCollector();
  try {
    const path = join(tempDataDir(), 'audit.db');
    const [first, second] = [loadSigningKey(tempDataDir(), {}), loadSigningKey(tempDataDir(), {})];
    for (const key of [first, second]) {
      const log = await openAuditLog({ path, key, strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
      for (let i = 0; i < 3; i++) await log.append({ event: 'model_call', ts: new Date().toISOString(), n: i });
      await log.close({ event: 'log_close', ts: new Date().toISOString() });
    }
    const conn = new Database(path);
    const logId = (conn.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
    let through = 0;
    const shipper = startShipper({ db: conn, logId, url: collector.url, token: TOKEN, report: (e) => e.type === 'shipped' && (through = e.through) });
    await waitFor(() => through >= 10, 10_000, 'shipping');
    await shipper.stop(0);
    conn.close();
    const alone = await warden('audit', 'verify', '--collector', collector.url, '--token', TOKEN);
    assert.equal(alone.code, 1);
    assert.match(alone.err, new RegExp(`${logId}: seq 10: integrity alert key_changed: the checkpoint at size 10 is signed by key ${second.keyId}, not by key ${first.keyId}`));
    const [a, b] = [first, second].map((k) => k.publicKeyDer.toString('base64'));
    const both = await warden('audit', 'verify', '--collector', collector.url, '--token', TOKEN, '--key', a, '--key', b);
    assert.equal(both.code, 0, both.err);
    assert.match(both.out, /seq 10: key_changed, settled \(both keys trusted\)/);
    assert.match(both.out, /ok: 10 records, 2 checkpoints verified/);
    assert.equal((await warden('audit', 'verify', '--collector', collector.url, '--token', TOKEN, '--key', a)).code, 1, 'the second key is not trusted');
  } finally {
    await collector.close();
  }
});
