// Where a person's approval applies: a model's call to an `approval: human` tool that Warden executes
// reaches the agent (it is held when the agent runs it), while one to a tool that runs outside Warden
// is refused, since nothing could hold it; an MCP tools/call is held like an HTTP one, released with
// the arguments the person approved, or refused with a JSON-RPC error; monitor mode only records; a
// rule that says escalate holds a call, one that says block refuses it without asking anyone.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { startJsonTool } from '../helpers/escalation.ts';
import { startCrmServer } from '../helpers/tools.ts';
import { ROOT, startWarden, tempFile, waitFor } from '../helpers/warden.ts';

const TOOLS = `tools:
  issue_refund:
    approval: human
    args: { type: object, properties: { order_id: { type: string }, amount: { type: number } } }
    http: { url: "http://127.0.0.1:9/refunds" }
  wire_money:
    approval: human
    external: true
`;

test('the model side: a call to a held tool reaches the agent; one to a tool outside Warden is refused; monitor mode records only', async () => {
  const fake = await startFakeUpstream();
  const tools = ['issue_refund', 'wire_money'].map((name) => ({ type: 'function' as const, function: { name, parameters: { type: 'object' } } }));
  try {
    for (const mode of ['enforce', 'monitor']) {
      const w = await startWarden(tempFile('m.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: model-agent, version: 1.0.0 }
mode: ${mode}
upstreams:
  openai: { baseUrl: "${fake.url}/v1" }
${TOOLS}`));
      try {
        const client = new OpenAI({ baseURL: `${w.trafficUrl}/v1`, apiKey: 'k', maxRetries: 0 });
        const res = await client.chat.completions.create({
          model: 'gpt-4o', tools,
          messages: [{ role: 'user', content: '[[call issue_refund {"order_id":"ORD-1","amount":5}]] [[call wire_money {"to":"x"}]]' }],
        });
        const msg = res.choices[0].message;
        const upstreamTools = (JSON.parse(fake.requests.at(-1)!.body.toString()) as { tools: { function: { name: string } }[] }).tools.map((t) => t.function.name);
        if (mode === 'enforce') {
          assert.deepEqual(msg.tool_calls!.map((c) => (c as { function: { name: string } }).function.name), ['issue_refund']);
          assert.match(msg.content!, /wire_money was refused by policy \(approval_required\): .*only a call Warden executes \(an http or mcp target\) can be held/);
        } else {
          assert.equal(msg.tool_calls!.length, 2);
        }
        // Approval is not scope: both stay in the tool list (a refusal says why; a vanished tool would not).
        assert.deepEqual(upstreamTools, ['issue_refund', 'wire_money']);
        // Counted as the call ends, just after its response.
        const expected = mode === 'enforce' ? ['action="block"} 1', 'action="escalate"} 1'] : ['action="log"} 2'];
        await waitFor(async () => {
          const text = await (await request(`${w.adminUrl}/metrics`)).body.text();
          return expected.every((e) => text.includes(`warden_violations_total{kind="approval_required",${e}`));
        }, 5_000, `approval_required violations counted as ${expected.join(', ')}`);
      } finally {
        await w.shutdown();
      }
    }
  } finally {
    await fake.close();
  }
});

test('MCP: a held tools/call is released with the approved arguments, or refused with a JSON-RPC error', async () => {
  const crm = await startCrmServer();
  process.env.CRM_MCP_URL = crm.url;
  const text = readFileSync(join(ROOT, 'policies/examples/support-agent.yaml'), 'utf8')
    .replace('    scope: crm_admin\n    mcp: { server: crm }', '    scope: customer_service\n    approval: human\n    mcp: { server: crm }');
  const w = await startWarden(tempFile('support.yaml', `${text}\nescalation: { timeoutMs: 60000 }\n`));
  delete process.env.CRM_MCP_URL;
  const client = new Client({ name: 'support-agent', version: '2.3.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${w.trafficUrl}/mcp/crm`)));
  const q = w.ctx.services.escalations;
  const heldOne = async () => {
    let id = '';
    await waitFor(() => !!(id = q.list({ state: 'pending' })[0]?.id ?? ''), 5_000, 'a held tools/call');
    return id;
  };
  try {
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'delete_customer'), 'a tool a person may approve is listed');
    const deleting = client.callTool({ name: 'delete_customer', arguments: { id: 'cus_8f3k2m' } });
    const id = await heldOne();
    assert.deepEqual(q.get(id)!.args, { id: 'cus_8f3k2m' });
    assert.deepEqual(crm.calls, [], 'held: not sent yet');
    q.approve(id, { by: 'hal', args: { id: 'cus_0000aa' } });
    const res = await deleting;
    assert.equal((res.content as { text: string }[])[0].text, 'deleted cus_0000aa', 'the server ran the approved arguments');
    assert.deepEqual(crm.calls, ['delete_customer']);

    const refused = client.callTool({ name: 'delete_customer', arguments: { id: 'cus_8f3k2m' } }).catch((e) => e);
    q.reject(await heldOne(), { by: 'hal', note: 'not this one' });
    const err = await refused;
    assert.ok(err instanceof McpError, String(err));
    assert.match(err.message, /tools\/call delete_customer was not approved: a person rejected the call .*not this one/);
    assert.equal((err.data as { code: string }).code, 'WARDEN_ERR_ESCALATION_REJECTED');
    assert.deepEqual(crm.calls, ['delete_customer']);
  } finally {
    await client.close();
    await w.shutdown();
    await crm.close();
  }
});

test('a rule that says escalate holds the call; a person may fix its arguments; a rule that says block still blocks at once', async () => {
  const tool = await startJsonTool('{"order_id":"ORD-123456","status":"shipped","carrier":"DHL"}');
  const w = await startWarden(tempFile('r.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: rules-agent, version: 1.0.0, scopes: [support] }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:9/v1" }
tools:
  lookup_order:
    scope: support
    args: { type: object, required: [order_id], properties: { order_id: { type: string, pattern: "^ORD-[0-9]{6}$" } } }
    http: { url: "${tool.url}/lookup" }
  close_account:
    scope: admin
    http: { url: "${tool.url}/close" }
rules: { invalid_arguments: escalate, scope_violation: block }
`));
  const call = async (tool: string, args: object) => {
    const r = await request(`${w.trafficUrl}/tools/${tool}`, { method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json' } });
    return { outcome: r.headers['x-warden-tool-outcome'], actions: r.headers['x-warden-actions'], json: (await r.body.json()) as any };
  };
  try {
    const q = w.ctx.services.escalations;
    const blocked = await call('close_account', { id: 'a1' });
    assert.deepEqual([blocked.outcome, blocked.json.error.type], ['blocked', 'tool_blocked']);
    assert.deepEqual(q.list(), [], 'nothing to ask a person about');

    const held = call('lookup_order', { order_id: '123456' });
    let id = '';
    await waitFor(() => !!(id = q.list({ state: 'pending' })[0]?.id ?? ''), 5_000, 'a held call');
    assert.match(q.get(id)!.reason, /^invalid_arguments: .*\/order_id must match pattern/);
    q.approve(id, { by: 'ivy', args: { order_id: 'ORD-123456' } });
    const r = await held;
    assert.deepEqual([r.outcome, r.json.status, r.actions], ['ok', 'shipped', 'escalation-approved-edited']);
    assert.deepEqual(tool.received, [{ order_id: 'ORD-123456' }]);
  } finally {
    await w.shutdown();
    await tool.close();
  }
});
