// Bad input and broken upstreams get a clear error in the provider's own shape, with a warden_ type,
// a stable code and the right status; never a crash and never a stack trace.
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Client, request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let dead: Server;

before(async () => {
  fake = await startFakeUpstream();
  // An upstream that hangs up on every connection: unreachable, and (unlike a port that was free a
  // moment ago) no other test's server can take its place while the tests run in parallel.
  dead = createNetServer((socket) => socket.destroy()).listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const deadPort = (dead.address() as AddressInfo).port;
  warden = await startWarden(tempFile('e.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: err-agent, version: "1" }
limits: { maxBodyBytes: 64KiB }
upstreams:
  openai: { baseUrl: "${fake.url}/v1", timeouts: { firstTokenMs: 300, idleMs: 300 } }
  anthropic: { baseUrl: "${fake.url}" }
  dead: { baseUrl: "http://127.0.0.1:${deadPort}/v1" }
`));
});
after(async () => {
  await warden.shutdown();
  await fake.close();
  dead.close();
});

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`${warden.trafficUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) };
}

function assertOpenAIError(r: { json: any; text: string }, code: string) {
  assert.equal(r.json.error.code, code);
  assert.match(r.json.error.type, /^warden_/);
  assert.equal(typeof r.json.error.message, 'string');
  assert.doesNotMatch(r.text, /\n\s+at /, 'no stack trace');
}

const chat = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

test('malformed JSON → 400 WARDEN_ERR_INVALID_JSON, in each provider\'s shape', async () => {
  const o = await post('/v1/chat/completions', '{"model": "gpt-4o", "messages": [');
  assert.equal(o.status, 400);
  assertOpenAIError(o, 'WARDEN_ERR_INVALID_JSON');
  const a = await post('/anthropic/v1/messages', 'nope');
  assert.equal(a.status, 400);
  assert.equal(a.json.type, 'error');
  assert.equal(a.json.error.code, 'WARDEN_ERR_INVALID_JSON');
  assert.equal(a.json.error.type, 'warden_invalid_request');
});

test('invalid UTF-8 and non-object bodies → 400', async () => {
  const bad = Buffer.concat([Buffer.from('{"model":"gpt-4o","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]);
  assertOpenAIError(await post('/v1/chat/completions', bad), 'WARDEN_ERR_INVALID_JSON');
  const arr = await post('/v1/chat/completions', '[1,2]');
  assert.equal(arr.status, 400);
  assertOpenAIError(arr, 'WARDEN_ERR_INVALID_REQUEST');
});

test('a body over the cap → 413, declared or streamed', async () => {
  const big = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] });
  const r = await post('/v1/chat/completions', big);
  assert.equal(r.status, 413);
  assertOpenAIError(r, 'WARDEN_ERR_BODY_TOO_LARGE');
  // Without a Content-Length, the cap is enforced while reading.
  const chunked = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: Readable.from((function* () { for (let i = 0; i < 100; i++) yield Buffer.alloc(1024, 0x20); })()),
  });
  assert.equal(chunked.statusCode, 413);
  await chunked.body.text();
});

test('deeply nested JSON is a clean 400 or a forwarded call, never a crash', async () => {
  const deep = `{"model":"gpt-4o","messages":[],"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
  const r = await request(`${warden.trafficUrl}/upstreams/nope/chat/completions`, { method: 'POST', body: deep });
  assert.ok([400, 404].includes(r.statusCode));
  await r.body.text();
  assert.equal((await post('/v1/chat/completions', chat)).status, 200, 'still serving');
});

test('unknown route and unknown upstream → 404', async () => {
  const r = await post('/v2/chat/completions', chat);
  assert.equal(r.status, 404);
  assertOpenAIError(r, 'WARDEN_ERR_ROUTE_NOT_FOUND');
  const u = await post('/upstreams/nope/chat/completions', chat);
  assert.equal(u.status, 404);
  assertOpenAIError(u, 'WARDEN_ERR_UNKNOWN_UPSTREAM');
});

test('/anthropic without a path answers in Anthropic\'s error shape', async () => {
  const bare = await post('/anthropic', chat);
  assert.equal(bare.status, 404);
  assert.equal(bare.json.type, 'error');
  assert.equal(bare.json.error.code, 'WARDEN_ERR_ROUTE_NOT_FOUND');
});

test('path traversal out of the upstream base path → 400', async () => {
  // undici's request() would normalise "/v1/../admin" to "/admin"; a Client sends the target verbatim.
  const client = new Client(warden.trafficUrl);
  try {
    for (const path of ['/v1/../admin', '/v1/%2e%2e/secrets', '/upstreams/openai/..%2f..%2fetc']) {
      const res = await client.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: chat });
      const text = await res.body.text();
      assert.equal(res.statusCode, 400, path);
      assertOpenAIError({ json: JSON.parse(text), text }, 'WARDEN_ERR_INVALID_REQUEST');
    }
  } finally {
    await client.close();
  }
});

test('upstream unreachable → 502', async () => {
  const r = await post('/upstreams/dead/chat/completions', chat);
  assert.equal(r.status, 502);
  assertOpenAIError(r, 'WARDEN_ERR_UPSTREAM_UNREACHABLE');
});

test('upstream slower than firstTokenMs → 504', async () => {
  const r = await post('/v1/chat/completions', chat, { 'x-fake-scenario': 'delay-ms=2000' });
  assert.equal(r.status, 504);
  assertOpenAIError(r, 'WARDEN_ERR_UPSTREAM_TIMEOUT');
});

test('a stream that resets mid-way ends with an in-band error event; one that stalls ends as a truncated answer', async () => {
  const body = JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a b c d e f g' }] });
  const reset = await request(`${warden.trafficUrl}/v1/chat/completions`, { method: 'POST', headers: { 'x-fake-scenario': 'reset-after=2' }, body });
  assert.equal(reset.statusCode, 200);
  const err = JSON.parse((await reset.body.text()).trim().split('\n\n').at(-1)!.replace(/^data: /, ''));
  assert.match(err.error.code, /WARDEN_ERR_UPSTREAM_UNREACHABLE/);
  // onStall defaults to return_partial: the agent's SDK sees a finished answer, cut short.
  const stall = await request(`${warden.trafficUrl}/v1/chat/completions`, { method: 'POST', headers: { 'x-fake-scenario': 'stall-after=2' }, body });
  const events = (await stall.body.text()).trim().split('\n\n');
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.equal(JSON.parse(events.at(-2)!.replace(/^data: /, '')).choices[0].finish_reason, 'length');
});

test('upstream error bodies and non-model routes pass through untouched', async () => {
  const models = await request(`${warden.trafficUrl}/v1/models`);
  assert.equal(models.statusCode, 200);
  assert.equal((await models.body.json() as { object: string }).object, 'list');
  const count = await post('/anthropic/v1/messages/count_tokens', JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(count.status, 200);
  assert.equal(typeof count.json.input_tokens, 'number');
});
