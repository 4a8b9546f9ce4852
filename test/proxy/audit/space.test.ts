// The audit log running out of room: the policy's quota (a warning at 70%, new calls refused at 100%,
// nothing sent upstream), SQLITE_FULL from the hard cap, a real full volume (a small tmpfs), pruning
// of what the collector holds, and service resuming without a restart once there is room again.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { openAuditLog } from '../../../proxy/audit/audit-log.ts';
import { exportBundle, verifyBundle } from '../../../proxy/audit/bundle.ts';
import { loadSigningKey } from '../../../proxy/audit/signing.ts';
import { verifyAuditDb } from '../../../proxy/audit/verify.ts';
import { startFakeUpstream, type FakeUpstream } from '../../../proxy/demo/fake-upstream.ts';
import { AuditUnavailableError } from '../../../proxy/errors.ts';
import type { Sidecar } from '../../../proxy/sidecar.ts';
import { startCollector, TOKEN, type TestCollector } from '../../helpers/collector.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor, WARDEN_BIN } from '../../helpers/warden.ts';

const execFileAsync = promisify(execFile);
let fake: FakeUpstream;
const dispatcher = new Agent({ connections: 8 });

before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
});
after(async () => {
  await dispatcher.close();
  await fake.close();
});

// About 2 KiB a record: the request and the echoed answer.
const chat = (i: number) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `question ${i} ${'x'.repeat(800)}` }] });

async function call(warden: Sidecar, i: number) {
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, { method: 'POST', body: chat(i), dispatcher, headers: { 'content-type': 'application/json' } });
  const text = await res.body.text();
  return { status: res.statusCode, id: String(res.headers['x-warden-request-id']), retryAfter: res.headers['retry-after'], body: text };
}

async function admin(warden: Sidecar, path: string, method = 'GET'): Promise<string> {
  const res = await request(`${warden.adminUrl}${path}`, { method, dispatcher });
  return res.body.text();
}

function metric(text: string, line: string): number {
  const m = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test('SQLITE_FULL at the hard cap fails those commits cleanly, and a larger quota lets the log go on', async () => {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const log = await openAuditLog({
    path, key: loadSigningKey(dir), strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() },
    space: { quotaBytes: 64 * 1024, retainShippedMs: 0 },
  });
  // No gate here: 300 records of 8 KiB overrun the quota plus its 1 MiB headroom.
  const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => log.append({ event: 'model_call', ts: new Date().toISOString(), n: i, pad: 'p'.repeat(8192) })));
  const failed = results.filter((r) => r.status === 'rejected');
  assert.ok(failed.length > 0, 'some commits hit the cap');
  for (const f of failed) {
    assert.ok(f.reason instanceof AuditUnavailableError);
    assert.match(f.reason.message, /SQLITE_FULL/);
  }
  assert.equal(log.stats().space?.level, 'full');
  assert.equal(log.hasRoom(), false);

  log.configure({ quotaBytes: 64 * 1024 * 1024, retainShippedMs: 0 });
  await waitFor(() => log.hasRoom(), 5_000, 'room after the quota grew');
  await log.append({ event: 'model_call', ts: new Date().toISOString(), n: 'after' });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const committed = results.length - failed.length;
  const v = verifyAuditDb(path);
  assert.equal(v.problem, undefined);
  // log_open, the records that committed, the one after, log_close: no failed batch left a trace.
  assert.equal(v.size, 1 + committed + 1 + 1);
});

test('a run whose log_open cannot commit (the log over its cap at start) writes it first once there is room', async () => {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  // A large log_open, so that it needs pages of its own rather than the room left in the last one.
  const open = (quotaBytes: number) => openAuditLog({
    path, key: loadSigningKey(dir), strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString(), pad: 'o'.repeat(16384) }, space: { quotaBytes, retainShippedMs: 0 },
  });
  let log = await open(64 * 1024 * 1024);
  for (let i = 0; i < 200; i++) await log.append({ event: 'model_call', ts: new Date().toISOString(), n: i, pad: 'p'.repeat(8192) });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  // Reopened with a cap below what the file holds: its log_open fails with SQLITE_FULL.
  log = await open(64 * 1024);
  await assert.rejects(log.append({ event: 'model_call', ts: new Date().toISOString(), n: 'refused' }), /SQLITE_FULL/);
  log.configure({ quotaBytes: 64 * 1024 * 1024, retainShippedMs: 0 });
  await waitFor(() => log.hasRoom(), 5_000, 'room after the quota grew');
  await log.append({ event: 'model_call', ts: new Date().toISOString(), n: 'after' });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const db = new Database(path, { readonly: true });
  const events = (db.prepare('SELECT event FROM records WHERE seq > 202 ORDER BY seq').pluck().all() as string[]);
  db.close();
  assert.deepEqual(events, ['log_open', 'model_call', 'log_close']);
  assert.equal(verifyAuditDb(path).problem, undefined);

  // Still no room when it closes: the failed log_open is not retried in a loop, and close returns.
  let failures = 0;
  log = await openAuditLog({
    path, key: loadSigningKey(dir), strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString(), pad: 'o'.repeat(16384) },
    space: { quotaBytes: 64 * 1024, retainShippedMs: 0 }, observer: { failed: () => failures++ },
  });
  await new Promise((r) => setTimeout(r, 300));
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  assert.ok(failures <= 2, `${failures} failed commits`);
});

test('no checkpoint is signed while the run\'s log_open waits to commit: it names the key that signs them', async () => {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const [first, second] = [loadSigningKey(dir), loadSigningKey(tempDataDir())];
  let log = await openAuditLog({ path, key: first, strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() }, space: { quotaBytes: 64 * 1024 * 1024, retainShippedMs: 0 } });
  for (let i = 0; i < 200; i++) await log.append({ event: 'model_call', ts: new Date().toISOString(), n: i, pad: 'p'.repeat(8192) });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  // As a crash before the closing checkpoint would leave it: records no checkpoint covers.
  const db = new Database(path);
  db.exec('DELETE FROM checkpoints');
  db.close();
  // A new key, no room for the run's log_open, and a checkpoint timer that fires while it waits.
  log = await openAuditLog({
    path, key: second, strict: true, checkpointEveryMs: 50, openEntry: { event: 'log_open', ts: new Date().toISOString(), pad: 'o'.repeat(16384) },
    space: { quotaBytes: 64 * 1024, retainShippedMs: 0 },
  });
  log.configure({ quotaBytes: 64 * 1024 * 1024, retainShippedMs: 0 });
  await waitFor(() => log.hasRoom(), 5_000, 'room after the quota grew');
  await new Promise((r) => setTimeout(r, 300));
  await log.append({ event: 'model_call', ts: new Date().toISOString(), n: 'after' });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  assert.equal(verifyAuditDb(path, { trustedKeys: [first.publicKeyDer, second.publicKeyDer] }).problem, undefined);
});

test('quota: a warning at 70%, a 503 at 100% with nothing sent upstream, and pruning what the collector holds resumes service without a restart', async () => {
  const collector = await startCollector();
  const dataDir = tempDataDir();
  const policy = (retain: string) => policyFor(fake.url, `audit: { quotaBytes: 160KiB, retainShipped: ${retain} }\n`, 'quota-agent');
  const file = tempFile('q.yaml', policy('1h'));
  process.env.WARDEN_COLLECTOR_URL = collector.url;
  process.env.WARDEN_COLLECTOR_TOKEN = TOKEN;
  let warden = await startWarden(file, false, dataDir);
  try {
    let warned = false;
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    let ok = 0;
    for (let i = 0; i < 500 && !refused; i++) {
      const r = await call(warden, i);
      if (r.status === 200) ok++;
      else refused = r;
      if (!warned && warden.ctx.audit!.stats().space?.level === 'warn') {
        warned = true;
        const status = JSON.parse(await admin(warden, '/status'));
        assert.equal(status.state, 'yellow');
        assert.ok(status.reasons.some((x: string) => /of its 0.16 MiB quota/.test(x)), status.reasons.join('; '));
        assert.ok(metric(await admin(warden, '/metrics'), 'warden_audit_quota_used_ratio') >= 0.7);
      }
    }
    assert.ok(warned, 'the 70% warning came before the quota was reached');
    assert.ok(refused, 'the quota was reached');
    assert.ok(ok > 20, `${ok} calls fit`);
    assert.equal(refused.status, 503);
    assert.equal(refused.retryAfter, '30');
    assert.equal(JSON.parse(refused.body).error.code, 'WARDEN_ERR_AUDIT_FULL');
    assert.match(JSON.parse(refused.body).error.message, /quota \(audit\.quotaBytes\)/);
    const upstreamBefore = fake.requests.length;
    assert.equal((await call(warden, 1000)).status, 503);
    assert.equal(fake.requests.length, upstreamBefore, 'a refused call never reaches the upstream');
    const status = JSON.parse(await admin(warden, '/status'));
    assert.equal(status.state, 'red');
    assert.ok(metric(await admin(warden, '/metrics'), 'warden_audit_full_calls_total{outcome="refused"}') >= 2);

    // Everything reached the collector, but retention keeps it for an hour. Shorten it: the shipped
    // records are pruned, their pages handed back, and calls flow again, with no restart.
    await waitFor(() => warden.ctx.audit!.stats().unshipped === 0, 10_000, 'all shipped');
    writeFileSync(file, policy('0s'));
    assert.match(await admin(warden, '/policy/reload', 'POST'), /"ok":true/);
    await waitFor(async () => (await call(warden, 2000)).status === 200, 10_000, 'service to resume');
    assert.ok(metric(await admin(warden, '/metrics'), 'warden_audit_pruned_records_total') > 20);
    assert.ok(warden.ctx.audit!.stats().space!.usedBytes < 160 * 1024 * 0.7);

    // The pruned log verifies on its own, against the collector's checkpoints, and after a restart.
    await warden.shutdown();
    warden = await startWarden(file, false, dataDir);
    assert.equal((await call(warden, 3000)).status, 200);
    await warden.shutdown();
    const path = join(dataDir, 'audit.db');
    const local = verifyAuditDb(path);
    assert.equal(local.problem, undefined);
    assert.ok(local.pruned > 20, `pruned ${local.pruned}`);
    // (Not execFileSync: the collector answering it lives in this process.)
    const { stdout: out } = await execFileAsync(process.execPath, [WARDEN_BIN, 'audit', 'verify', '--db', path, '--collector', collector.url, '--token', TOKEN], { encoding: 'utf8' });
    assert.match(out, /ok: .* pruned after shipping/);
    assert.deepEqual(await collector.get('/v1/alerts'), { alerts: [] });
    // A bundle of what is still local proves its records against the latest checkpoint.
    const lines = exportBundle(path, { agent: 'quota-agent', from: '2000-01-01T00:00:00.000Z', to: '2100-01-01T00:00:00.000Z' });
    assert.equal(JSON.parse(lines[0]).pruned_through, local.pruned);
    const bundle = verifyBundle(lines.join('\n'));
    assert.equal(bundle.problem, undefined);
    assert.ok(bundle.records > 0);
  } finally {
    delete process.env.WARDEN_COLLECTOR_URL;
    delete process.env.WARDEN_COLLECTOR_TOKEN;
    await warden.shutdown();
    await collector.close();
  }
});

test('research mode with onFull: failOpen lets calls through unrecorded, counted and shown red', async () => {
  const warden = await startWarden(tempFile('r.yaml', policyFor(fake.url, 'mode: research\naudit: { quotaBytes: 48KiB, onFull: failOpen }\n', 'open-agent')));
  try {
    for (let i = 0; i < 200 && warden.ctx.audit!.hasRoom(); i++) assert.equal((await call(warden, i)).status, 200);
    assert.equal(warden.ctx.audit!.hasRoom(), false);
    for (let i = 0; i < 3; i++) assert.equal((await call(warden, i)).status, 200);
    // (At least: under relaxed durability a commit can land just after the loop's last look.)
    assert.ok(metric(await admin(warden, '/metrics'), 'warden_audit_full_calls_total{outcome="failed_open"}') >= 3);
    assert.equal(JSON.parse(await admin(warden, '/status')).state, 'red');
  } finally {
    await warden.shutdown();
  }
});

// A real full volume: a 3 MiB tmpfs, mostly taken by a filler file. Needs root to mount (CI is root).
const canMount = process.getuid?.() === 0;

test('a full disk: calls get a 503, never an unrecorded answer; freeing space resumes service', { skip: !canMount && 'mounting a tmpfs needs root' }, async () => {
  const mnt = tempDataDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
  let warden: Sidecar | undefined;
  try {
    const dataDir = join(mnt, 'data');
    mkdirSync(dataDir);
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(1536 * 1024));
    warden = await startWarden(tempFile('d.yaml', policyFor(fake.url, '', 'disk-agent')), false, dataDir);
    const answered: string[] = [];
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 2000 && !refused; i++) {
      const r = await call(warden, i);
      if (r.status === 200) answered.push(r.id);
      else refused = r;
    }
    assert.ok(refused, 'the volume filled up');
    assert.equal(refused.status, 503);
    assert.match(JSON.parse(refused.body).error.code, /^WARDEN_ERR_AUDIT_(FULL|UNAVAILABLE)$/);
    await waitFor(() => warden!.ctx.audit!.stats().space?.level === 'full', 5_000, 'the log to report full');
    assert.equal((await call(warden, 5000)).status, 503);
    assert.equal(JSON.parse(await admin(warden, '/status')).state, 'red');

    rmSync(join(mnt, 'filler'));
    await waitFor(async () => {
      const r = await call(warden!, 6000);
      if (r.status === 200) answered.push(r.id);
      return r.status === 200;
    }, 10_000, 'service to resume');
    await warden.shutdown();
    warden = undefined;
    const path = join(dataDir, 'audit.db');
    assert.equal(verifyAuditDb(path).problem, undefined);
    const db = new Database(path, { readonly: true });
    const recorded = new Set((db.prepare("SELECT json_extract(body, '$.request_id') AS id FROM records WHERE event = 'model_call' AND json_extract(body, '$.status') = 200").all() as { id: string }[]).map((r) => r.id));
    db.close();
    for (const id of answered) assert.ok(recorded.has(id), `the answered call ${id} has its record`);
  } finally {
    await warden?.shutdown();
    spawnSync('umount', [mnt]);
  }
});
