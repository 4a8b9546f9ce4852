// What an operator sees: one structured log line per call (never a body), and the admin listener's
// liveness, readiness and semantic status, including while draining for shutdown.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { startSidecar, type Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let policyFile: string;
const lines: Record<string, any>[] = [];
const raw: string[] = [];

before(async () => {
  fake = await startFakeUpstream();
  policyFile = tempFile('o.yaml', policyFor(fake.url, `models:
  gpt-4o: { pin: gpt-4o-2024-11-20, price: { inputPerMTok: 2.5, outputPerMTok: 10 } }
`, 'obs-agent'));
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw.push(chunk.toString());
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  warden = await startSidecar({
    policyFile, listen: { host: '127.0.0.1', port: 0 }, adminListen: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 5_000, watchPolicy: false, dataDir: tempDataDir(), logger: pino({ level: 'info' }, sink),
  });
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

async function admin(path: string) {
  const res = await request(`${warden.adminUrl}${path}`);
  const text = await res.body.text();
  return { status: res.statusCode, text, json: res.headers['content-type']?.toString().includes('json') ? JSON.parse(text) : undefined };
}

test('one log line per call with identity, models, status, timings, tokens, cost and actions; no bodies', async () => {
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-warden-task': 'ticket-42', 'x-warden-session': 'conv-7' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'my card is 4111 1111 1111 1111' }] }),
  });
  const reply = await res.body.text();
  const id = res.headers['x-warden-request-id'];
  await waitFor(() => lines.some((l) => l.reqId === id), 2_000, 'the call line');
  const line = lines.find((l) => l.reqId === id)!;
  assert.equal(line.msg, 'call');
  assert.equal(lines.filter((l) => l.reqId === id).length, 1, 'exactly one line per call');
  assert.deepEqual(
    [line.agent, line.agentVersion, line.task, line.session, line.route, line.method, line.endpoint, line.modelAsked, line.modelServed, line.status, line.actions],
    ['obs-agent', '1.0.0', 'ticket-42', 'conv-7', 'openai', 'POST', 'openai.chat', 'gpt-4o', 'gpt-4o-2024-11-20', 200, ['model-pinned']],
  );
  for (const k of ['latencyMs', 'upstreamMs', 'tokensIn', 'tokensOut', 'costUsd']) assert.equal(typeof line[k], 'number', k);
  assert.ok(line.latencyMs >= line.upstreamMs);
  const everything = raw.join('');
  // The whole phrase: a bare 4111 can be part of a random port in the log's own lines.
  assert.doesNotMatch(everything, /my card is|4111 1111/, 'request text never reaches the log');
  assert.doesNotMatch(everything, new RegExp(JSON.parse(reply).choices[0].message.content.slice(0, 20)), 'response text never reaches the log');
});

test('names the caller puts in a path never become metric labels: undeclared upstreams and MCP servers are one route', async () => {
  for (let i = 0; i < 20; i++) {
    for (const path of [`/upstreams/made-up-${i}/chat/completions`, `/mcp/made-up-${i}`]) {
      const res = await request(`${warden.trafficUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.statusCode, 404);
      await res.body.text();
    }
  }
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.doesNotMatch(metrics, /made-up-/);
  assert.match(metrics, /^warden_requests_total\{route="none",model="none",status="404"\} (\d+)$/m);
});

test('/healthz, /readyz and /status: green, with the policy\'s identity and hash', async () => {
  assert.deepEqual((await admin('/healthz')).json, { ok: true });
  const ready = await admin('/readyz');
  assert.equal(ready.status, 200);
  const status = (await admin('/status')).json;
  assert.equal(status.state, 'green');
  assert.deepEqual(status.reasons, []);
  assert.equal(status.policy.agent, 'obs-agent');
  assert.equal(status.policy.sha256, createHash('sha256').update(readFileSync(policyFile)).digest('hex'));
  assert.equal(typeof status.uptimeSeconds, 'number');
  assert.match(status.version, /^\d+\.\d+\.\d+/);
  const missing = await admin('/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'WARDEN_ERR_ROUTE_NOT_FOUND');
});

test('an unset credential variable turns /status yellow and says which', async () => {
  const w = await startSidecar({
    policyFile: tempFile('y.yaml', policyFor(fake.url).replace(`baseUrl: "${fake.url}/v1" }`, `baseUrl: "${fake.url}/v1", apiKeyEnv: WARDEN_TEST_SURELY_UNSET }`)),
    listen: { host: '127.0.0.1', port: 0 }, adminListen: { host: '127.0.0.1', port: 0 }, shutdownGraceMs: 1_000, watchPolicy: false, dataDir: tempDataDir(),
    logger: pino({ level: 'silent' }),
  });
  try {
    const status = await (await request(`${w.adminUrl}/status`)).body.json() as { state: string; reasons: string[] };
    assert.equal(status.state, 'yellow');
    assert.match(status.reasons.join(), /WARDEN_TEST_SURELY_UNSET is not set/);
  } finally {
    await w.shutdown();
  }
});

test('while draining: /readyz 503, /status red, new calls 503; the call in flight completes', async () => {
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-scenario': 'words=10;event-delay-ms=60' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'slow' }] }),
  });
  const body = res.body.text();
  const stopping = warden.shutdown();
  const ready = await admin('/readyz');
  assert.equal(ready.status, 503);
  const status = (await admin('/status')).json;
  assert.equal(status.state, 'red');
  assert.match(status.reasons.join(), /draining/);
  assert.match(await body, /data: \[DONE\]/);
  await stopping;
});
