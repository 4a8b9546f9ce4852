// The audit log as the agent's calls see it: one record per call, committed before the response is
// released (strict durability), a chain that verifies, and a 503, never an unrecorded answer, when
// the log cannot commit.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { verifyAuditDb } from '../../../proxy/audit/verify.ts';
import { startFakeUpstream, type FakeUpstream } from '../../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../../proxy/sidecar.ts';
import { policyFor, startWarden, tempDataDir, tempFile } from '../../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let dataDir: string;
let db: Database.Database;
const dispatcher = new Agent({ connections: 32 });

before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
  dataDir = tempDataDir();
  warden = await startWarden(tempFile('a.yaml', policyFor(fake.url, `models:
  gpt-4o: { pin: gpt-4o-2024-11-20, price: { inputPerMTok: 2.5, outputPerMTok: 10 } }
audit: { maxBodyBytes: 2KiB, checkpoint: { everyRecords: 1000 } }
`, 'audited-agent')), false, dataDir);
  db = new Database(join(dataDir, 'audit.db'), { readonly: true });
});
after(async () => {
  db.close();
  await dispatcher.close();
  await warden.shutdown();
  await fake.close();
});

const chat = (content: string, extra: object = {}) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }], ...extra });

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await request(`${warden.trafficUrl}${path}`, { method: 'POST', body, dispatcher, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, id: String(res.headers['x-warden-request-id']), text };
}

function recordOf(id: string): Record<string, any> | undefined {
  const row = db.prepare("SELECT body FROM records WHERE json_extract(body, '$.request_id') = ?").get(id) as { body: string } | undefined;
  return row && JSON.parse(row.body);
}

test('every response, JSON, streamed or error, has its record committed before the agent gets it', async () => {
  for (let i = 0; i < 10; i++) {
    const r = await post('/v1/chat/completions', chat(`question ${i}`), { 'x-warden-task': `t-${i}`, 'x-warden-session': 'conv-1' });
    const rec = recordOf(r.id);
    assert.ok(rec, `record for call ${i} exists when its response arrives`);
    assert.deepEqual([rec.event, rec.status, rec.agent, rec.task, rec.session, rec.model.asked, rec.model.served],
      ['model_call', 200, { id: 'audited-agent', version: '1.0.0' }, `t-${i}`, 'conv-1', 'gpt-4o', 'gpt-4o-2024-11-20']);
    assert.equal(rec.request.text, chat(`question ${i}`), 'the exact bytes the agent sent');
    assert.equal(JSON.parse(rec.response.text).choices[0].message.content, `You said: question ${i}`);
    assert.equal(typeof rec.cost_usd, 'number');
    assert.deepEqual(rec.actions, ['model-pinned']);
  }
  const stream = await post('/v1/chat/completions', chat('stream me', { stream: true }));
  assert.match(stream.text, /data: \[DONE\]/);
  assert.equal(recordOf(stream.id)?.response.value.text, 'You said: stream me');
  const claude = await post('/anthropic/v1/messages', JSON.stringify({ model: 'claude-x', max_tokens: 9, stream: true, messages: [{ role: 'user', content: 'hi' }] }));
  assert.match(claude.text, /message_stop/);
  assert.ok(recordOf(claude.id));
  const bad = await post('/v1/chat/completions', '{"model":');
  assert.equal(bad.status, 400);
  assert.deepEqual([recordOf(bad.id)?.status, recordOf(bad.id)?.error], [400, 'WARDEN_ERR_INVALID_JSON']);
  const lost = await post('/v9/nothing', '{}');
  assert.deepEqual([recordOf(lost.id)?.event, recordOf(lost.id)?.status], ['request', 404]);
  const upstreamError = await post('/v1/chat/completions', chat('x'), { 'x-fake-scenario': 'status=429' });
  assert.equal(recordOf(upstreamError.id)?.status, 429);
});

test('a body over audit.maxBodyBytes is kept as its size and SHA-256 only', async () => {
  const big = chat('y'.repeat(4096));
  const r = await post('/v1/chat/completions', big);
  const rec = recordOf(r.id)!;
  assert.equal(rec.request.text, undefined);
  assert.equal(rec.request.bytes, Buffer.byteLength(big));
  assert.match(rec.request.sha256, /^[0-9a-f]{64}$/);
});

test('10,000 calls leave 10,000 model_call records, one per response, and the chain verifies', { timeout: 120_000 }, async () => {
  const before = (db.prepare("SELECT count(*) AS n FROM records WHERE event = 'model_call'").get() as { n: number }).n;
  const ids = new Set<string>();
  let next = 0;
  await Promise.all(Array.from({ length: 25 }, async () => {
    while (next < 10_000) {
      const i = next++;
      const r = await post('/v1/chat/completions', chat(`load ${i}`));
      assert.equal(r.status, 200);
      ids.add(r.id);
    }
  }));
  assert.equal(ids.size, 10_000);
  const rows = db.prepare("SELECT json_extract(body, '$.request_id') AS id FROM records WHERE event = 'model_call'").all() as { id: string }[];
  assert.equal(rows.length - before, 10_000);
  const recorded = new Set(rows.map((r) => r.id));
  for (const id of ids) assert.ok(recorded.has(id), id);
  const result = verifyAuditDb(join(dataDir, 'audit.db'));
  assert.equal(result.problem, undefined);
  // A checkpoint follows the group commit that crosses each 1,000 records; with 25 calls in flight a
  // batch holds at most 25 records, so checkpoints are at most 1,025 apart.
  const sizes = (db.prepare('SELECT size FROM checkpoints ORDER BY size').all() as { size: number }[]).map((c) => c.size);
  assert.ok(sizes.length >= 9, `${sizes.length} checkpoints`);
  for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i] - sizes[i - 1] <= 1_025, `checkpoints at ${sizes[i - 1]} and ${sizes[i]}`);
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.match(metrics, new RegExp(`^warden_audit_records_total\\{event="model_call"\\} ${rows.length}$`, 'm'));
  assert.match(metrics, /^warden_audit_commit_duration_seconds_count [1-9]/m);
  assert.match(metrics, /^warden_audit_disk_bytes [1-9]/m);
});

test('a log that cannot commit answers 503 and releases nothing unrecorded; service resumes when it can', { timeout: 30_000 }, async () => {
  // Another connection holding the write lock makes every commit fail (after the 2 s busy timeout).
  const blocker = new Database(join(dataDir, 'audit.db'));
  blocker.exec('BEGIN EXCLUSIVE');
  const size = () => (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
  const sizeBefore = size();
  let r;
  try {
    r = await post('/v1/chat/completions', chat('while locked'));
  } finally {
    blocker.exec('COMMIT');
    blocker.close();
  }
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.text).error.code, 'WARDEN_ERR_AUDIT_UNAVAILABLE');
  assert.doesNotMatch(r.text, /You said/);
  assert.equal(recordOf(r.id), undefined);
  assert.equal(size(), sizeBefore, 'no seq was used by the failed commit');
  const ok = await post('/v1/chat/completions', chat('after'));
  assert.equal(ok.status, 200);
  assert.ok(recordOf(ok.id));
  assert.equal(verifyAuditDb(join(dataDir, 'audit.db')).problem, undefined);
});

test('a stream whose record cannot commit ends in an error event of its own, even after an upstream last event without its blank line', { timeout: 30_000 }, async () => {
  const lastChunk = 'data: {"id":"chatcmpl-s","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-11-20","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}';
  fake.setHandler((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"id":"chatcmpl-s","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-11-20","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n');
    res.end(lastChunk);
    return true;
  });
  const blocker = new Database(join(dataDir, 'audit.db'));
  blocker.exec('BEGIN EXCLUSIVE');
  let r;
  try {
    r = await post('/v1/chat/completions', chat('stream it', { stream: true }));
  } finally {
    blocker.exec('COMMIT');
    blocker.close();
    fake.setHandler(undefined);
  }
  assert.ok(r.text.includes(`${lastChunk}\n\ndata: {"error":`), `the error is an event of its own: ${r.text.slice(-400)}`);
  assert.match(r.text, /WARDEN_ERR_AUDIT_UNAVAILABLE/);
});
