// A model call cannot slip past the stages by spelling its path differently: every spelling a lenient
// upstream reads as chat completions (percent-encoded letters or slash, a trailing slash, a path
// parameter, doubled slashes) is a chat completion to Warden too, pinned and sanitized, and is sent
// on as the agent spelt it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;

before(async () => {
  fake = await startFakeUpstream();
  fake.setHandler((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-2024-11-20', choices: [{ index: 0, message: { role: 'assistant', content: 'Write to alice@example.com' }, finish_reason: 'stop' }] }));
    return true;
  });
  const policy = policyFor(fake.url, `models:
  gpt-4o: { pin: gpt-4o-2024-11-20 }
sanitize: { detectors: [email] }
`).replace('upstreams:\n', `upstreams:\n  vllm: { baseUrl: "${fake.url}/v1" }\n`);
  warden = await startWarden(tempFile('paths.yaml', policy));
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

const SPELLINGS = [
  '/v1/chat/completions',
  '/v1/chat/completions/',
  '/v1/%63hat/completions',
  '/v1/chat%2Fcompletions',
  '/v1/chat/completions;x=1',
  '/v1/chat//completions',
  '/v1/Chat/Completions',
  '/v1/chat/completions/?api-version=1',
  '/upstreams/vllm/%63hat/completions',
];

for (const path of SPELLINGS) {
  test(`${path} is a chat completion: pinned and sanitized, sent on as spelt`, async () => {
    const before = fake.requests.length;
    const res = await request(`${warden.trafficUrl}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = await res.body.text();
    assert.equal(res.statusCode, 200, body);
    assert.doesNotMatch(body, /alice@example\.com/, 'the answer was sanitized');
    const sent = fake.requests[before];
    assert.equal(JSON.parse(sent.body.toString()).model, 'gpt-4o-2024-11-20', 'the model was pinned');
    assert.equal(sent.path, `/v1${path.replace(/^\/(v1|upstreams\/vllm)/, '')}`);
  });
}

test('a path with a fragment (which an upstream may cut off, reading another path) is refused', async () => {
  const before = fake.requests.length;
  const res = await rawRequest(warden.trafficUrl, 'POST /v1/chat/completions#x HTTP/1.1\r\ncontent-type: application/json', '{}');
  assert.equal(res.status, 400, res.body);
  assert.match(res.body, /must not contain a fragment/);
  assert.equal(fake.requests.length, before);
});
