// A running sidecar whose collector refused a batch says so in /status, and stops saying so once the
// batch is delivered: by `warden audit reship` (another process, on the same file), or by the admin
// route POST /audit/reship (the writer thread, with the admin token).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { collectorFront, startCollector, TOKEN, type CollectorFront } from '../helpers/collector.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor, WARDEN_BIN } from '../helpers/warden.ts';

const ADMIN_TOKEN = 'admin-token-for-reship-tests';

/** A sidecar shipping through a front that refuses every batch, after one call whose batches it refused. */
async function withRefusedBatch(run: (s: { warden: Sidecar; front: CollectorFront; dataDir: string; status(): Promise<{ state: string; reasons: string[] }> }) => Promise<void>): Promise<void> {
  const fake = await startFakeUpstream({ recordBodies: false });
  const collector = await startCollector();
  const front = await collectorFront(collector.url);
  Object.assign(process.env, { WARDEN_COLLECTOR_URL: front.url, WARDEN_COLLECTOR_TOKEN: TOKEN, WARDEN_ADMIN_TOKEN: ADMIN_TOKEN });
  const dataDir = tempDataDir();
  const warden = await startWarden(tempFile('r.yaml', policyFor(fake.url)), false, dataDir);
  for (const name of ['WARDEN_COLLECTOR_URL', 'WARDEN_COLLECTOR_TOKEN', 'WARDEN_ADMIN_TOKEN']) delete process.env[name];
  const status = async () => (await (await fetch(`${warden.adminUrl}/status`)).json()) as { state: string; reasons: string[] };
  try {
    const res = await fetch(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    await waitFor(async () => (await status()).reasons.some((r) => r.includes('dead_letters')), 10_000, 'the refusal in /status');
    assert.equal((await status()).state, 'yellow');
    await run({ warden, front, dataDir, status });
  } finally {
    await warden.shutdown();
    front.close();
    await collector.close();
    await fake.close();
  }
}

test('a dead-lettered batch turns /status yellow until `warden audit reship` delivers it, with the sidecar running', async () => {
  await withRefusedBatch(async ({ front, dataDir, status }) => {
    front.refusing = false;
    const reship = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [WARDEN_BIN, 'audit', 'reship', '--db', join(dataDir, 'audit.db'), '--collector', front.url, '--token', TOKEN], { encoding: 'utf8', timeout: 30_000 },
        (err, out, errOut) => resolve({ code: err ? (err.code as number) : 0, out, err: errOut }));
    });
    assert.equal(reship.code, 0, reship.err);
    assert.match(reship.out, /records 1\.\.\d+: delivered/);
    await waitFor(async () => (await status()).state === 'green', 10_000, 'a green /status');
  });
});

test('POST /audit/reship on the admin port: the admin token, then each range\'s outcome, and /status green once delivered', async () => {
  await withRefusedBatch(async ({ warden, front, status }) => {
    const reship = (token?: string) => fetch(`${warden.adminUrl}/audit/reship`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} })
      .then(async (r) => ({ status: r.status, body: (await r.json()) as { delivered?: boolean; outcomes?: { first: number; last: number; result: string; detail: string }[] } }));
    assert.equal((await reship()).status, 401);
    assert.equal((await reship('wrong-token-of-some-length')).status, 401);
    // Still refused: nothing leaves dead_letters.
    const refused = await reship(ADMIN_TOKEN);
    assert.equal(refused.status, 200);
    assert.equal(refused.body.delivered, false);
    assert.ok(refused.body.outcomes!.length > 0 && refused.body.outcomes!.every((o) => o.result === 'refused' && /HTTP 400/.test(o.detail)), JSON.stringify(refused.body));
    assert.equal((await status()).state, 'yellow');
    front.refusing = false;
    const delivered = await reship(ADMIN_TOKEN);
    assert.equal(delivered.status, 200);
    assert.equal(delivered.body.delivered, true, JSON.stringify(delivered.body));
    await waitFor(async () => (await status()).state === 'green', 10_000, 'a green /status');
  });
});
