// Encrypted fields are unreadable in the sidecar's SQLite files and at the collector, decrypt with the
// right key, fail cleanly with a wrong or retired one, and never stand in the way of verification.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { verifyAuditDb } from '../../../proxy/audit/verify.ts';
import { startFakeUpstream, type FakeUpstream } from '../../../proxy/demo/fake-upstream.ts';
import { PolicyError } from '../../../proxy/errors.ts';
import { startCollector, TOKEN, type TestCollector } from '../../helpers/collector.ts';
import { policyFor, startWarden, tempDataDir, tempFile, WARDEN_BIN } from '../../helpers/warden.ts';

const run = promisify(execFile);
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const SECRET = 'SECRET-PROMPT-4242';
let fake: FakeUpstream;
let collector: TestCollector;
let dataDir: string;
let policy: string;

async function decrypt(keys: string, ...args: string[]) {
  try {
    const r = await run(process.execPath, [WARDEN_BIN, 'audit', 'decrypt', '--db', join(dataDir, 'audit.db'), ...args], { env: { ...process.env, WARDEN_AUDIT_KEYS: keys }, encoding: 'utf8' });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

/** Every byte of every file in a directory (database, WAL and shared memory alike). */
function filesOf(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));
}

async function callsThroughSidecar(keys: string): Promise<void> {
  Object.assign(process.env, { WARDEN_AUDIT_KEYS: keys, WARDEN_AUDIT_HMAC_KEY: K2, WARDEN_COLLECTOR_URL: collector.url, WARDEN_COLLECTOR_TOKEN: TOKEN });
  const warden = await startWarden(policy, false, dataDir);
  try {
    for (const stream of [false, true]) {
      const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-warden-task': 'ticket-7', 'x-warden-session': 'conv-9' },
        body: JSON.stringify({ model: 'gpt-4o', stream, messages: [{ role: 'user', content: SECRET }] }),
      });
      assert.match(await res.body.text(), /SECRET-PROMPT-4242/, 'the agent itself gets the clear reply');
    }
  } finally {
    await warden.shutdown(); // ships what is left before closing
    for (const k of ['WARDEN_AUDIT_KEYS', 'WARDEN_AUDIT_HMAC_KEY', 'WARDEN_COLLECTOR_URL', 'WARDEN_COLLECTOR_TOKEN']) delete process.env[k];
  }
}

before(async () => {
  fake = await startFakeUpstream();
  collector = await startCollector();
  dataDir = tempDataDir();
  policy = tempFile('enc.yaml', policyFor(fake.url, `audit:
  encrypt: [request.text, response.text, response.value]
  mask: [{ path: task, as: hmac }, session]
`));
  await callsThroughSidecar(`k1:${K1}`);
});
after(async () => {
  await collector.close();
  await fake.close();
});

test('the prompt and the reply appear nowhere in the sidecar\'s files or the collector\'s', async () => {
  assert.equal(filesOf(dataDir).includes(SECRET), false, 'sidecar audit files');
  const logs = await collector.get<{ logs: { size: number }[] }>('/v1/logs');
  assert.ok(logs.logs[0].size >= 4, 'the records reached the collector');
  assert.equal(filesOf(dirname(collector.path)).includes(SECRET), false, 'collector files');
  const { records } = await collector.get<{ records: Record<string, any>[] }>('/v1/records?event=model_call');
  assert.equal(records[0].request.text.$enc, 'aes-256-gcm');
  assert.equal(records[0].request.text.kid, 'k1');
});

test('masking: an HMAC correlates equal values without revealing them; redaction replaces', () => {
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  const recs = (db.prepare("SELECT body FROM records WHERE event = 'model_call'").all() as { body: string }[]).map((r) => JSON.parse(r.body));
  db.close();
  assert.equal(recs.length, 2);
  assert.match(recs[0].task, /^hmac-sha256:[0-9a-f]{64}$/);
  assert.equal(recs[0].task, recs[1].task);
  assert.equal(recs[0].session, '[masked]');
});

test('verification needs no key', () => {
  assert.equal(verifyAuditDb(join(dataDir, 'audit.db')).problem, undefined);
});

test('decrypt: the right key reads the fields; a wrong key and a retired key fail cleanly', async () => {
  const ok = await decrypt(`k1:${K1}`);
  assert.equal(ok.code, 0, ok.err);
  const recs = ok.out.trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.event === 'model_call');
  assert.match(recs[0].request.text, new RegExp(SECRET));
  assert.match(JSON.parse(recs[0].response.text).choices[0].message.content, new RegExp(SECRET));
  assert.equal(recs[1].response.value.text, `You said: ${SECRET}`);
  const wrong = await decrypt(`k1:${K2}`);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /request\.text does not decrypt with key "k1" \(a wrong key/);
  const retired = await decrypt(`k2:${K2}`);
  assert.equal(retired.code, 1);
  assert.match(retired.err, /encrypted with key "k1", which is not in the keyring \(retired or destroyed\)/);
});

test('rotation: new records use the new key; old ones still decrypt while the old key is kept', async () => {
  await callsThroughSidecar(`k2:${K2},k1:${K1}`);
  const both = await decrypt(`k2:${K2},k1:${K1}`);
  assert.equal(both.code, 0, both.err);
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  const kids = (db.prepare("SELECT body FROM records WHERE event = 'model_call' ORDER BY seq").all() as { body: string }[]).map((r) => JSON.parse(r.body).request.text.kid);
  db.close();
  assert.deepEqual(kids, ['k1', 'k1', 'k2', 'k2']);
  assert.equal(verifyAuditDb(join(dataDir, 'audit.db')).problem, undefined);
});

test('a policy that asks for encryption without a key never starts', async () => {
  await assert.rejects(startWarden(policy, false, tempDataDir()), (err: Error) => err instanceof PolicyError && /audit\.encrypt is set, but there is no key/.test(err.message));
});
