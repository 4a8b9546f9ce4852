// SIGKILL during steady load: every call whose response reached the agent has its record, the log
// picks up after restart with a log_open that says the last run ended uncleanly, and it verifies.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { verifyAuditDb } from '../../../proxy/audit/verify.ts';
import { startFakeUpstream, type FakeUpstream } from '../../../proxy/demo/fake-upstream.ts';
import { policyFor, spawnWarden, tempDataDir, tempFile } from '../../helpers/warden.ts';

let fake: FakeUpstream;

before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
});
after(() => fake.close());

const body = (i: number) => JSON.stringify({ model: 'gpt-4o', stream: i % 3 === 0, messages: [{ role: 'user', content: `call ${i}` }] });

test('SIGKILL mid-load loses no record of an answered call; the chain continues and verifies', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  const policy = tempFile('p.yaml', policyFor(fake.url));
  const w = await spawnWarden(policy, { WARDEN_DATA_DIR: dataDir });
  const dispatcher = new Agent({ connections: 16 });
  const answered: string[] = [];
  let stop = false;
  let n = 0;
  const loops = Array.from({ length: 16 }, async () => {
    while (!stop) {
      try {
        const res = await request(`${w.trafficUrl}/v1/chat/completions`, { method: 'POST', body: body(n++), dispatcher, headers: { 'content-type': 'application/json' } });
        const text = await res.body.text();
        // Answered means the agent got the whole response: a status 200 and, for streams, the end.
        if (res.statusCode === 200 && (!text.startsWith('data:') || text.includes('[DONE]'))) answered.push(String(res.headers['x-warden-request-id']));
      } catch {
        return; // the sidecar is gone
      }
    }
  });
  const deadline = Date.now() + 10_000;
  while (answered.length < 1_500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  w.proc.kill('SIGKILL');
  stop = true;
  await w.exited;
  await Promise.all(loops);
  await dispatcher.close();
  assert.ok(answered.length >= 1_000, `only ${answered.length} calls answered before the kill`);

  const again = await spawnWarden(policy, { WARDEN_DATA_DIR: dataDir });
  const after = await request(`${again.trafficUrl}/v1/chat/completions`, { method: 'POST', body: body(1), headers: { 'content-type': 'application/json' } });
  assert.equal(after.statusCode, 200);
  await after.body.text();
  again.proc.kill('SIGTERM');
  assert.equal(await again.exited, 0);

  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  try {
    const ids = new Set((db.prepare("SELECT json_extract(body, '$.request_id') AS id FROM records").all() as { id: string }[]).map((r) => r.id));
    const missing = answered.filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered calls have no record`);
    const opens = (db.prepare("SELECT body FROM records WHERE event = 'log_open' ORDER BY seq").all() as { body: string }[]).map((r) => JSON.parse(r.body));
    assert.equal(opens.length, 2);
    assert.equal(opens[1].previous_run, 'unclean');
    assert.ok(opens[1].resumed_at >= answered.length);
    const last = JSON.parse((db.prepare('SELECT body FROM records ORDER BY seq DESC LIMIT 1').get() as { body: string }).body);
    assert.equal(last.event, 'log_close');
  } finally {
    db.close();
  }
  const result = verifyAuditDb(join(dataDir, 'audit.db'));
  assert.equal(result.problem, undefined, result.problem?.reason);
});
