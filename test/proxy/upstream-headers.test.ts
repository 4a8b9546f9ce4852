// What crosses Warden in headers: the agent's credential is swapped for the upstream's own (env var
// or mounted file, in the provider's or the policy's header), hop-by-hop fields stop at Warden (RFC
// 9110 §7.6.1), Warden's own x-warden-* headers are not leaked upstream nor taken from it, and connections are pooled.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
const chat = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

before(async () => {
  fake = await startFakeUpstream();
  process.env.WARDEN_TEST_UPSTREAM_KEY = 'sk-upstream-secret';
  const keyFile = tempFile('anthropic-key', 'sk-ant-from-file\n');
  warden = await startWarden(tempFile('h.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: header-agent, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "${fake.url}/v1", apiKeyEnv: WARDEN_TEST_UPSTREAM_KEY }
  anthropic: { baseUrl: "${fake.url}", apiKeyFile: "${keyFile}" }
  azure:
    baseUrl: "${fake.url}/v1?api-version=2024-10-21"
    apiKeyEnv: WARDEN_TEST_UPSTREAM_KEY
    auth: { header: api-key }
    headers: { X-Extra: "yes" }
  open: { baseUrl: "${fake.url}/v1", passthroughAuth: true }
`));
});
after(async () => {
  delete process.env.WARDEN_TEST_UPSTREAM_KEY;
  await warden.shutdown();
  await fake.close();
});

async function post(path: string, headers: Record<string, string>, body = chat): Promise<{ status: number; rec: RecordedRequest; headers: Record<string, unknown> }> {
  const res = await request(`${warden.trafficUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  await res.body.text();
  return { status: res.statusCode, rec: fake.requests.at(-1)!, headers: res.headers };
}

test('openai: the agent key is replaced by the upstream key from the env var; x-warden-* stay in Warden', async () => {
  const r = await post('/v1/chat/completions', { authorization: 'Bearer sk-agent-own', 'x-api-key': 'sk-ant-agent', 'x-warden-task': 't1', 'x-warden-session': 's1', 'openai-beta': 'assistants=v2' });
  assert.equal(r.status, 200);
  assert.equal(r.rec.headers.authorization, 'Bearer sk-upstream-secret');
  assert.equal(r.rec.headers['x-api-key'], undefined, 'another SDK\'s key the agent also carries does not go to OpenAI');
  assert.equal(r.rec.headers['x-warden-task'], undefined);
  assert.equal(r.rec.headers['x-warden-session'], undefined);
  assert.equal(r.rec.headers['openai-beta'], 'assistants=v2', 'end-to-end headers pass');
  assert.match(String(r.headers['x-warden-request-id']), /^[0-9a-f-]{36}$/);
});

test('anthropic: x-api-key comes from the mounted file; the agent\'s x-api-key and authorization are stripped', async () => {
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  const r = await post('/anthropic/v1/messages', { 'x-api-key': 'sk-ant-agent', authorization: 'Bearer also-agent', 'api-key': 'azure-agent', 'anthropic-version': '2023-06-01', 'anthropic-beta': 'prompt-caching-2024-07-31' }, body);
  assert.equal(r.status, 200);
  assert.equal(r.rec.headers['x-api-key'], 'sk-ant-from-file');
  assert.equal(r.rec.headers.authorization, undefined);
  assert.equal(r.rec.headers['api-key'], undefined);
  assert.equal(r.rec.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
});

test('a declared upstream: base path and query kept, credential in the policy\'s header, extra headers added', async () => {
  const r = await post('/upstreams/azure/chat/completions?foo=1', { authorization: 'Bearer sk-agent-own', 'api-key': 'agent-azure-key' });
  assert.equal(r.rec.path, '/v1/chat/completions?foo=1&api-version=2024-10-21');
  assert.equal(r.rec.headers['api-key'], 'sk-upstream-secret');
  assert.equal(r.rec.headers.authorization, undefined);
  assert.equal(r.rec.headers['x-extra'], 'yes');
});

test('passthroughAuth forwards the agent\'s own credential untouched', async () => {
  const r = await post('/upstreams/open/chat/completions', { authorization: 'Bearer sk-agent-own' });
  assert.equal(r.rec.headers.authorization, 'Bearer sk-agent-own');
});

test('hop-by-hop request headers, and any the Connection header names, stop at Warden', async () => {
  const res = await rawRequest(warden.trafficUrl, [
    'POST /v1/chat/completions HTTP/1.1', 'content-type: application/json', 'connection: keep-alive, x-hop-only',
    'x-hop-only: 1', 'keep-alive: timeout=5', 'te: trailers', 'proxy-authorization: Basic eDp5', 'x-end-to-end: 1',
  ].join('\r\n'), chat);
  assert.equal(res.status, 200, res.body);
  const sent = fake.requests.at(-1)!.headers;
  for (const h of ['x-hop-only', 'keep-alive', 'te', 'proxy-authorization']) assert.equal(sent[h], undefined, h);
  assert.equal(sent['x-end-to-end'], '1');
});

test('hop-by-hop response headers, and any the upstream\'s Connection header names, stop at Warden', async () => {
  fake.setHandler((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-upstream-hop', 'x-upstream-hop': '1', 'x-kept': '1', 'proxy-authenticate': 'Basic', 'x-warden-actions': 'redacted:0,all-clear' });
    res.end('{"object":"list","data":[]}');
    return true;
  });
  try {
    const res = await request(`${warden.trafficUrl}/v1/models`);
    await res.body.text();
    assert.equal(res.headers['x-upstream-hop'], undefined);
    assert.equal(res.headers['proxy-authenticate'], undefined);
    assert.equal(res.headers['x-kept'], '1');
    assert.equal(res.headers['x-warden-actions'], undefined, 'an upstream cannot speak for this sidecar');
  } finally {
    fake.setHandler(undefined);
  }
});

test('upstream connections are pooled and kept alive across calls', async () => {
  const ports = new Set<number>();
  fake.setHandler((_req, res) => {
    ports.add(res.socket!.remotePort!);
    return false; // record, then let the fake answer as usual
  });
  try {
    for (let i = 0; i < 20; i++) assert.equal((await post('/v1/chat/completions', {})).status, 200);
  } finally {
    fake.setHandler(undefined);
  }
  assert.ok(ports.size <= 2, `20 sequential calls used ${ports.size} upstream connections`);
});
