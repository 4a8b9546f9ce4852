// The agent authenticates to Warden when the policy asks (auth.tokenEnv / auth.tokenFile): the
// official SDKs' own "API key" setting is the token, every traffic route (models, /tools, /mcp, and
// paths that match none) refuses a missing or wrong one with a 401 in the provider's error shape
// before anything else happens, the token never travels upstream, each refusal is counted by reason
// and recorded, and the admin listener needs no token.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import OpenAI from 'openai';
import { request } from 'undici';
import { checkPolicyText } from '../../policies/load.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { ConfigError } from '../../proxy/errors.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditRecords } from '../helpers/audit.ts';
import { startCrmServer, startOrderService, type CrmServer, type OrderService } from '../helpers/tools.ts';
import { startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';
import { replaceAtomically, secretValue } from './load.ts';

const TOKEN = secretValue('wt-agent');
const UPSTREAM_KEY = secretValue('sk-upstream');
let fake: FakeUpstream;
let orders: OrderService;
let crm: CrmServer;
let warden: Sidecar;
let dataDir: string;

function policy(auth: string): string {
  return `apiVersion: warden/v1
kind: Policy
agent: { id: auth-agent, version: 1.0.0, scopes: [customer_service] }
${auth}
upstreams:
  openai: { baseUrl: "${fake.url}/v1", apiKeyEnv: WARDEN_TEST_AUTH_UPSTREAM_KEY }
  anthropic: { baseUrl: "${fake.url}", apiKeyEnv: WARDEN_TEST_AUTH_UPSTREAM_KEY }
  open: { baseUrl: "${fake.url}/v1", passthroughAuth: true }
  crm: { baseUrl: "${crm.url}", provider: mcp }
tools:
  lookup_order:
    scope: customer_service
    http: { url: "${orders.url}/lookup", timeoutMs: 3000 }
  search_customers:
    scope: customer_service
    mcp: { server: crm }
`;
}

before(async () => {
  fake = await startFakeUpstream();
  orders = await startOrderService();
  crm = await startCrmServer({ json: true });
  process.env.WARDEN_TEST_AGENT_TOKEN = TOKEN;
  process.env.WARDEN_TEST_AUTH_UPSTREAM_KEY = UPSTREAM_KEY;
  dataDir = tempDataDir();
  warden = await startWarden(tempFile('auth.yaml', policy('auth: { tokenEnv: WARDEN_TEST_AGENT_TOKEN }')), false, dataDir);
});
after(async () => {
  delete process.env.WARDEN_TEST_AGENT_TOKEN;
  delete process.env.WARDEN_TEST_AUTH_UPSTREAM_KEY;
  await warden.shutdown();
  await Promise.all([fake.close(), orders.close(), crm.close()]);
});

const chat = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'hi' }] };

async function metric(line: string): Promise<number> {
  const text = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  const m = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test('openai SDK: its API key is the token; the upstream gets the upstream key and never the token', async () => {
  const client = new OpenAI({ apiKey: TOKEN, baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
  const r = await client.chat.completions.create(chat);
  assert.match(r.choices[0].message.content ?? '', /You said: hi/);
  const rec = fake.requests.at(-1)!;
  assert.equal(rec.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.ok(!JSON.stringify(rec.headers).includes(TOKEN));
});

test('openai SDK: a wrong or missing token is a 401 in OpenAI\'s error shape, counted, recorded, and nothing goes upstream', async () => {
  const before = { upstream: fake.requests.length, invalid: await metric('warden_auth_failures_total{reason="invalid"}'), missing: await metric('warden_auth_failures_total{reason="missing"}') };
  const client = new OpenAI({ apiKey: `${TOKEN}x`, baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
  const err = await client.chat.completions.create(chat).catch((e) => e);
  assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
  assert.equal(err.status, 401);
  assert.equal(err.code, 'WARDEN_ERR_UNAUTHORIZED');
  assert.equal(err.type, 'warden_unauthorized');
  assert.match(err.message, /not valid/);
  const bare = await request(`${warden.trafficUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat) });
  assert.equal(bare.statusCode, 401);
  assert.equal(bare.headers['www-authenticate'], 'Bearer realm="warden"');
  const body = await bare.body.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'WARDEN_ERR_UNAUTHORIZED');
  assert.match(body.error.message, /send it as the SDK's API key/);
  assert.equal(fake.requests.length, before.upstream, 'nothing reached the upstream');
  assert.equal(await metric('warden_auth_failures_total{reason="invalid"}'), before.invalid + 1);
  assert.equal(await metric('warden_auth_failures_total{reason="missing"}'), before.missing + 1);
  await waitFor(() => auditRecords(dataDir, 'request').filter((r) => r.error === 'WARDEN_ERR_UNAUTHORIZED').length >= 2, 2_000, 'the refusals\' records');
  const refused = auditRecords(dataDir, 'request').filter((r) => r.error === 'WARDEN_ERR_UNAUTHORIZED');
  assert.deepEqual(refused.map((r) => [r.status, r.path]).slice(-2), [[401, '/v1/chat/completions'], [401, '/v1/chat/completions']]);
});

test('anthropic SDK: x-api-key carries the token; a wrong one is a 401 in Anthropic\'s error shape', async () => {
  const ok = new Anthropic({ apiKey: TOKEN, baseURL: `${warden.trafficUrl}/anthropic`, maxRetries: 0 });
  const msg = await ok.messages.create({ model: 'claude-x', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(msg.type, 'message');
  assert.equal(fake.requests.at(-1)!.headers['x-api-key'], UPSTREAM_KEY);
  const bad = new Anthropic({ apiKey: 'sk-ant-not-the-token', baseURL: `${warden.trafficUrl}/anthropic`, maxRetries: 0 });
  const err = await bad.messages.create({ model: 'claude-x', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
  assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
  const body = err.error as { type: string; error: { type: string } };
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'warden_unauthorized');
});

test('x-warden-token leaves the agent\'s own credential to a passthroughAuth upstream; a token in authorization never travels', async () => {
  let res = await request(`${warden.trafficUrl}/upstreams/open/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-agents-own-provider-key', 'x-warden-token': TOKEN }, body: JSON.stringify(chat),
  });
  assert.equal(res.statusCode, 200);
  await res.body.text();
  assert.equal(fake.requests.at(-1)!.headers.authorization, 'Bearer sk-agents-own-provider-key');
  assert.equal(fake.requests.at(-1)!.headers['x-warden-token'], undefined);
  res = await request(`${warden.trafficUrl}/upstreams/open/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(chat),
  });
  assert.equal(res.statusCode, 200);
  await res.body.text();
  assert.equal(fake.requests.at(-1)!.headers.authorization, undefined, 'the token is Warden\'s, not the provider\'s');
  // With x-warden-token present it alone is checked, so a right key elsewhere does not help a wrong token.
  res = await request(`${warden.trafficUrl}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}`, 'x-warden-token': 'wrong' } });
  assert.equal(res.statusCode, 401);
  await res.body.text();
});

test('/tools, /mcp and unknown paths ask for the token too; an unauthenticated caller learns nothing about routes', async () => {
  const tool = (headers: Record<string, string>) => request(`${warden.trafficUrl}/tools/lookup_order`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ order_id: 'ORD-123456' }),
  });
  let res = await tool({});
  assert.equal(res.statusCode, 401);
  await res.body.text();
  res = await tool({ authorization: `Bearer ${TOKEN}` });
  assert.equal(res.statusCode, 200);
  await res.body.text();

  res = await request(`${warden.trafficUrl}/mcp/crm`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.equal(res.statusCode, 401);
  assert.match(await res.body.text(), /WARDEN_ERR_UNAUTHORIZED/);
  const client = new Client({ name: 'auth-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${warden.trafficUrl}/mcp/crm`), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
  try {
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['search_customers']);
  } finally {
    await client.close();
  }

  for (const path of ['/nowhere', '/upstreams/undeclared/x']) {
    res = await request(`${warden.trafficUrl}${path}`);
    assert.equal(res.statusCode, 401, `${path} without a token`);
    await res.body.text();
  }
});

test('the admin listener needs no token', async () => {
  for (const path of ['/healthz', '/readyz', '/status', '/metrics']) {
    const res = await request(`${warden.adminUrl}${path}`);
    assert.equal(res.statusCode, 200, path);
    await res.body.text();
  }
});

test('auth.tokenFile: the token rotates with the file, within a second', async () => {
  const first = secretValue('wt-file-one');
  const second = secretValue('wt-file-two');
  const tokenFile = tempFile('warden-token', `${first}\n`);
  const w = await startWarden(tempFile('tf.yaml', policy(`auth: { tokenFile: "${tokenFile}" }`)), true);
  const status = (token: string) => request(`${w.trafficUrl}/v1/models`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => (await r.body.text(), r.statusCode));
  try {
    assert.equal(await status(first), 200);
    assert.equal(await status(second), 401);
    const at = Date.now();
    replaceAtomically(tokenFile, second);
    await waitFor(async () => (await status(second)) === 200, 1_000, 'the new token');
    assert.ok(Date.now() - at < 1_000);
    assert.equal(await status(first), 401, 'the old token stops working');
  } finally {
    await w.shutdown();
  }
});

test('a policy that asks for a token without one to be had never starts; a short token turns /status yellow', async () => {
  await assert.rejects(startWarden(tempFile('nt.yaml', policy('auth: { tokenEnv: WARDEN_TEST_SURELY_UNSET_TOKEN }'))), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /asks agents for a token, but environment variable WARDEN_TEST_SURELY_UNSET_TOKEN is not set/);
    return true;
  });
  const w = await startWarden(tempFile('st.yaml', policy(`auth: { tokenFile: "${tempFile('short', 'abc')}" }`)));
  try {
    const s = await (await request(`${w.adminUrl}/status`)).body.json() as { state: string; reasons: string[] };
    assert.equal(s.state, 'yellow');
    assert.match(s.reasons.join(), /agent token: shorter than 16 characters/);
  } finally {
    await w.shutdown();
  }
});

test('policy check: auth takes tokenEnv or tokenFile, exactly one', () => {
  for (const auth of ['auth: {}', 'auth: { tokenEnv: A, tokenFile: /b }']) {
    const { problems } = checkPolicyText('p.yaml', policy(auth));
    assert.match(problems.join('\n'), /p\.yaml:4:\d+: auth: set tokenEnv or tokenFile \(exactly one\)/, auth);
  }
  assert.match(checkPolicyText('p.yaml', policy('auth: { tokenEnv: "bad name" }')).problems.join('\n'), /tokenEnv/);
  assert.deepEqual(checkPolicyText('p.yaml', policy('auth: { tokenFile: /run/secrets/warden-token }')).problems, []);
});
