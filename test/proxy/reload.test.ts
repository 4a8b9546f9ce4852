// Hot reload: a changed policy takes effect without a restart; a broken one never does, and the
// sidecar keeps serving on the last good policy while /status and /metrics say what happened.
import assert from 'node:assert/strict';
import { writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let file: string;

const pinned = (snapshot: string) => `models:\n  gpt-4o: { pin: ${snapshot} }\n`;

before(async () => {
  fake = await startFakeUpstream();
  file = tempFile('policy.yaml', policyFor(fake.url, pinned('gpt-4o-2024-05-13')));
  warden = await startWarden(file, true);
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

async function servedModel(): Promise<string> {
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.statusCode, 200);
  return ((await res.body.json()) as { model: string }).model;
}

async function adminJson(path: string): Promise<any> {
  return (await request(`${warden.adminUrl}${path}`)).body.json();
}

/** Replaces the file atomically, as editors and config-map updates do. */
function replace(text: string): void {
  const tmp = join(dirname(file), '.policy.tmp');
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

test('a valid change to the file is picked up without a restart', async () => {
  assert.equal(await servedModel(), 'gpt-4o-2024-05-13');
  replace(policyFor(fake.url, pinned('gpt-4o-2024-08-06')));
  await waitFor(async () => (await servedModel()) === 'gpt-4o-2024-08-06', 5_000, 'the new pin');
  assert.equal((await adminJson('/status')).state, 'green');
});

test('a broken policy keeps the last good one serving; /status turns yellow and names the problem', async () => {
  replace(policyFor(fake.url, pinned('gpt-4o-2024-11-20')).replace('kind: Policy', 'kind: Policy\nmode: enforcing'));
  await waitFor(async () => (await adminJson('/status')).state === 'yellow', 5_000, '/status to turn yellow');
  const status = await adminJson('/status');
  assert.match(status.reasons.join('\n'), /policy reload failed/);
  assert.match(status.reasons.join('\n'), /policy\.yaml:\d+:\d+: .*mode/);
  assert.equal(await servedModel(), 'gpt-4o-2024-08-06', 'still on the last good policy');
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /^warden_policy_reloads_total\{result="error"\} [1-9]/m);
  assert.equal((await request(`${warden.adminUrl}/readyz`)).statusCode, 200);
});

test('SIGHUP and POST /policy/reload reload on demand; a fixed file turns /status green again', async () => {
  writeFileSync(file, policyFor(fake.url, pinned('gpt-4o-2024-11-20')));
  process.kill(process.pid, 'SIGHUP');
  await waitFor(async () => (await servedModel()) === 'gpt-4o-2024-11-20', 5_000, 'the reload after SIGHUP');
  const res = await request(`${warden.adminUrl}/policy/reload`, { method: 'POST' });
  assert.equal(res.statusCode, 200);
  await res.body.text();
  assert.equal((await adminJson('/status')).state, 'green');
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /^warden_policy_reloads_total\{result="ok"\} [2-9]/m);
});

test('a call waiting to retry when the policy is reloaded sends its retry on the pools it began with, and they close after it', async () => {
  let asked = 0;
  fake.setHandler((req, res) => {
    if (!req.path.endsWith('/chat/completions') || asked++ > 0) return false;
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limited' } }));
    return true;
  });
  try {
    const call = request(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await waitFor(() => asked === 1, 5_000, 'the first attempt');
    const previous = warden.ctx.runtime;
    replace(policyFor(fake.url, pinned('gpt-4o-2024-05-13')));
    await waitFor(() => warden.ctx.runtime !== previous, 5_000, 'the reload');
    assert.equal(asked, 1, 'the reload came while the call waited to retry');
    const res = await call;
    const body = await res.body.text();
    assert.equal(res.statusCode, 200, body);
    assert.equal(asked, 2, 'the retry reached the upstream');
    assert.equal(JSON.parse(body).model, 'gpt-4o-2024-11-20', 'under the policy it began with');
    // The replaced runtime's pools close once that call has ended: a request on them now is refused.
    await waitFor(async () => {
      try {
        const up = await previous.upstreams.get('openai')!.send({ method: 'GET', path: '/v1/models', headers: {}, signal: AbortSignal.timeout(1_000) });
        up.body.resume();
        return false;
      } catch {
        return true;
      }
    }, 5_000, 'the old pools to close');
  } finally {
    fake.setHandler(undefined);
  }
});
