// Irreversible tool calls per hour, counted where Warden executes them: an HTTP tool at /tools (the
// degradation protocol's result, or a 429 with Retry-After under onFailure: error) and an MCP
// tools/call (a JSON-RPC error, with the official SDK client); the refused call never reaches the tool,
// and tools of normal risk are not counted. Plus the policy checks that go with it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { request } from 'undici';
import { checkPolicyText } from '../../policies/load.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startCrmServer, startOrderService, type CrmServer, type OrderService } from '../helpers/tools.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let orders: OrderService;
let crm: CrmServer;
let warden: Sidecar;
let client: Client;

const TOOLS = (orders: string) => `tools:
  issue_refund: { risk: irreversible, http: { url: "${orders}/refunds" } }
  refund_strict: { risk: irreversible, http: { url: "${orders}/refunds" }, onFailure: { action: error } }
  lookup_order: { http: { url: "${orders}/lookup" } }
  delete_customer: { risk: irreversible, mcp: { server: crm } }
  search_customers: { mcp: { server: crm } }
`;

before(async () => {
  fake = await startFakeUpstream();
  orders = await startOrderService();
  crm = await startCrmServer();
  const extra = `  crm: { baseUrl: "${crm.url}", provider: mcp }
${TOOLS(orders.url)}limits: { irreversibleToolCallsPerHour: 3 }
`;
  warden = await startWarden(tempFile('tools.yaml', policyFor(fake.url, extra)));
  client = new Client({ name: 'limits-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${warden.trafficUrl}/mcp/crm`)));
});
after(async () => {
  await client.close();
  await warden.shutdown();
  await crm.close();
  await orders.close();
  await fake.close();
});

async function tool(name: string, args: unknown) {
  const res = await request(`${warden.trafficUrl}/tools/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args) });
  return { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, any> };
}

test('/tools: the hour\'s irreversible calls go; the next gets a retryable refusal and never reaches the tool', async () => {
  for (let i = 0; i < 2; i++) assert.equal((await tool('issue_refund', { order_id: `ORD-10000${i}`, amount: 5 })).status, 200);
  // Tools of normal risk are not counted.
  for (let i = 0; i < 5; i++) assert.equal((await tool('lookup_order', { order_id: 'ORD-271828' })).status, 200);
  await client.callTool({ name: 'delete_customer', arguments: { id: 'cus_1' } }); // the third, over MCP
  const r = await tool('issue_refund', { order_id: 'ORD-100009', amount: 5 });
  assert.equal(r.status, 200, 'onFailure: degrade hands the agent a result for its model');
  assert.equal(r.headers['x-warden-tool-outcome'], 'rate_limited');
  assert.equal(r.json.error.type, 'tool_blocked');
  assert.equal(r.json.error.retryable, true);
  assert.equal(r.json.error.code, 'WARDEN_ERR_RATE_LIMITED');
  assert.equal(r.json.error.retryAfterSeconds, 1_200, 'one call every 20 minutes at 3 an hour');
  assert.match(r.json.error.message, /^rate limit reached: limits\.irreversibleToolCallsPerHour is 3 \(irreversible tool calls per hour for agent test-agent, and the allowance is used up\); retry in 1200 s$/);
  assert.match(r.json.error.instruction, /tell the user it can be done in about 20 minutes/);
  assert.equal(orders.hits.get('ORD-100009'), undefined, 'the refund never reached the service');
});

test('/tools with onFailure: error: a 429 with Retry-After', async () => {
  const r = await tool('refund_strict', { order_id: 'ORD-100010', amount: 5 });
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '1200');
  assert.equal(r.json.error.code, 'WARDEN_ERR_RATE_LIMITED');
});

test('MCP: a tools/call over the limit is a JSON-RPC error and never reaches the server; normal tools go on', async () => {
  const before = crm.calls.filter((c) => c === 'delete_customer').length;
  const err = await client.callTool({ name: 'delete_customer', arguments: { id: 'cus_2' } }).catch((e) => e);
  assert.ok(err instanceof McpError, String(err));
  assert.match(err.message, /tools\/call delete_customer refused: rate limit reached: limits\.irreversibleToolCallsPerHour is 3 .*retry in 1200 s/);
  assert.deepEqual((err.data as Record<string, unknown>).retryAfterSeconds, 1_200);
  assert.equal(crm.calls.filter((c) => c === 'delete_customer').length, before, 'never reached the server');
  const ok = await client.callTool({ name: 'search_customers', arguments: { query: 'Keller' } });
  assert.match((ok.content as { text: string }[])[0].text, /Maria Keller/);
});

test('refusals are counted and recorded', async () => {
  const text = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.match(text, /^warden_rate_limited_total\{limit="irreversible_tools"\} 3$/m);
  assert.match(text, /^warden_tool_calls_total\{tool="issue_refund",outcome="rate_limited"\} 1$/m);
  assert.match(text, /^warden_tool_calls_total\{tool="delete_customer",outcome="rate_limited"\} 1$/m);
  assert.match(text, /^warden_violations_total\{kind="limit_exceeded",action="block"\} 3$/m);
});

test('policy: risk defaults to normal; an irreversible tool Warden never executes cannot be limited, and says so', () => {
  const base = policyFor('http://127.0.0.1:1');
  const ok = checkPolicyText('p.yaml', `${base}${TOOLS('http://127.0.0.1:2').replace(/^ {2}(delete|search).*\n/gm, '')}limits: { irreversibleToolCallsPerHour: 1, perTask: { requestsPerMinute: 5, tokensPerMinute: 1000, usdPerDay: 2 } }\n`);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.policy!.tools.lookup_order.risk, 'normal');
  assert.equal(ok.policy!.tools.issue_refund.risk, 'irreversible');
  assert.deepEqual(ok.policy!.limits.perTask, { requestsPerMinute: 5, tokensPerMinute: 1000, usdPerDay: 2 });
  const bad = checkPolicyText('p.yaml', `${base}tools:\n  wire_money: { risk: irreversible }\nlimits: { irreversibleToolCallsPerHour: 1 }\n`);
  assert.equal(bad.problems.length, 1);
  assert.match(bad.problems[0], /^p\.yaml:8:\d+: tools\.wire_money: limits\.irreversibleToolCallsPerHour counts the calls Warden executes, and this tool has no http or mcp target$/);
  const typo = checkPolicyText('p.yaml', `${base}tools:\n  t: { risk: dangerous }\n`);
  assert.equal(typo.problems.length, 1);
  const limits = checkPolicyText('p.yaml', `${base}limits: { requestsPerMinute: 60, tokensPerMinute: 100000, concurrent: 4, usdPerDay: 5 }\n`);
  assert.deepEqual(limits.notes, [], 'limits are enforced: no "not enforced yet" note');
});
