// A running sidecar whose collector refused a batch says so in /status, and stops saying so once
// `warden audit reship` (another process, on the same file) has delivered it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { collectorFront, startCollector, TOKEN } from '../helpers/collector.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor, WARDEN_BIN } from '../helpers/warden.ts';

test('a dead-lettered batch turns /status yellow until `warden audit reship` delivers it, with the sidecar running', async () => {
  const fake = await startFakeUpstream({ recordBodies: false });
  const collector = await startCollector();
  // In front of the collector: refuses every batch as malformed until told otherwise.
  const front = await collectorFront(collector.url);
  process.env.WARDEN_COLLECTOR_URL = front.url;
  process.env.WARDEN_COLLECTOR_TOKEN = TOKEN;
  const dataDir = tempDataDir();
  const warden = await startWarden(tempFile('r.yaml', policyFor(fake.url)), false, dataDir);
  delete process.env.WARDEN_COLLECTOR_URL;
  delete process.env.WARDEN_COLLECTOR_TOKEN;
  const status = async () => (await (await fetch(`${warden.adminUrl}/status`)).json()) as { state: string; reasons: string[] };
  try {
    const res = await fetch(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    await waitFor(async () => (await status()).reasons.some((r) => r.includes('dead_letters')), 10_000, 'the refusal in /status');
    assert.equal((await status()).state, 'yellow');
    front.refusing = false;
    const reship = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [WARDEN_BIN, 'audit', 'reship', '--db', join(dataDir, 'audit.db'), '--collector', front.url, '--token', TOKEN], { encoding: 'utf8', timeout: 30_000 },
        (err, out, errOut) => resolve({ code: err ? (err.code as number) : 0, out, err: errOut }));
    });
    assert.equal(reship.code, 0, reship.err);
    assert.match(reship.out, /records 1\.\.\d+: delivered/);
    await waitFor(async () => (await status()).state === 'green', 10_000, 'a green /status');
  } finally {
    await warden.shutdown();
    front.close();
    await collector.close();
    await fake.close();
  }
});
