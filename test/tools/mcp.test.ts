// MCP through /mcp/{server}, with the official SDK client and server: tools/list shows only what the
// agent may call, a forbidden tools/call never reaches the server, an outputSchema violation is caught,
// over SSE and over JSON responses alike.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { request } from 'undici';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startCrmServer, type CrmServer } from '../helpers/tools.ts';
import { ROOT, startWarden, tempFile } from '../helpers/warden.ts';

for (const json of [false, true]) {
  describe(`MCP with ${json ? 'JSON' : 'SSE'} responses`, () => {
    let crm: CrmServer;
    let warden: Sidecar;
    let client: Client;

    before(async () => {
      crm = await startCrmServer({ json });
      process.env.CRM_MCP_URL = crm.url;
      warden = await startWarden(tempFile('support.yaml', readFileSync(join(ROOT, 'policies/examples/support-agent.yaml'), 'utf8')));
      delete process.env.CRM_MCP_URL;
      client = new Client({ name: 'support-agent', version: '2.3.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${warden.trafficUrl}/mcp/crm`)));
    });
    after(async () => {
      await client.close();
      await warden.shutdown();
      await crm.close();
    });

    test('tools/list shows only the tools this agent may call', async () => {
      const { tools } = await client.listTools();
      // delete_customer needs crm_admin; export_all_customers is declared nowhere.
      assert.deepEqual(tools.map((t) => t.name).sort(), ['get_account', 'search_customers']);
    });

    test('a forbidden tools/call is refused with a JSON-RPC error and never reaches the server', async () => {
      const err = await client.callTool({ name: 'delete_customer', arguments: { id: 'cus_8f3k2m' } }).catch((e) => e);
      assert.ok(err instanceof McpError, String(err));
      assert.match(err.message, /tools\/call delete_customer refused by policy: scope_violation: "delete_customer" needs scope "crm_admin"/);
      const undeclared = await client.callTool({ name: 'export_all_customers', arguments: {} }).catch((e) => e);
      assert.match(undeclared.message, /unknown_tool: "crm\/export_all_customers" is not a tool this agent's policy declares/);
      const badArgs = await client.callTool({ name: 'search_customers', arguments: { query: 'x' } }).catch((e) => e);
      assert.match(badArgs.message, /invalid_arguments: .*\/query must NOT have fewer than 2 characters/);
      assert.deepEqual(crm.calls, [], 'no refused call reached the server');
    });

    test('calls Warden could not pair with their results are refused: a tools/call without an id, ids used twice in a batch; Tools/Call is judged as tools/call', async () => {
      const post = async (body: unknown) => {
        const res = await request(`${warden.trafficUrl}/mcp/crm`, {
          method: 'POST', body: JSON.stringify(body),
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': (client.transport as StreamableHTTPClientTransport).sessionId ?? '' },
        });
        return { status: res.statusCode, text: await res.body.text() };
      };
      const notification = await post({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'delete_customer', arguments: { id: 'x' } } });
      assert.equal(notification.status, 400);
      assert.match(notification.text, /a tools\/call must carry an id/);
      const inBatch = await post([{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', method: 'tools/call', params: { name: 'delete_customer', arguments: { id: 'x' } } }]);
      assert.equal(inBatch.status, 400);
      const twice = await post([
        { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'get_account', arguments: { account_id: 'ACC-BAD' } } },
        { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'search_customers', arguments: { query: 'Keller' } } },
      ]);
      assert.equal(twice.status, 400);
      assert.match(twice.text, /the id 7 is used twice in one batch/);
      const cased = await post({ jsonrpc: '2.0', id: 8, method: 'Tools/Call', params: { name: 'delete_customer', arguments: { id: 'x' } } });
      assert.match(cased.text, /delete_customer refused by policy: scope_violation/);
      assert.deepEqual(crm.calls, [], 'none reached the server');
    });

    test('an allowed call passes through untouched', async () => {
      const res = await client.callTool({ name: 'search_customers', arguments: { query: 'Keller' } });
      assert.match((res.content as { text: string }[])[0].text, /Maria Keller/);
      const account = await client.callTool({ name: 'get_account', arguments: { account_id: 'ACC-7731' } });
      assert.deepEqual(account.structuredContent, { plan: 'business', balance: 1843.17 });
    });

    test('an outputSchema violation, or missing structuredContent, becomes the structured degradation result', async () => {
      for (const id of ['ACC-BAD', 'ACC-NONE']) {
        const res = await client.callTool({ name: 'get_account', arguments: { account_id: id } });
        assert.equal(res.isError, true);
        const degraded = JSON.parse((res.content as { text: string }[])[0].text);
        assert.equal(degraded.error.type, 'tool_invalid_result');
        assert.match(degraded.error.message, id === 'ACC-BAD' ? /structuredContent does not match the tool's outputSchema: \/balance must be number/ : /returned no structuredContent/);
        assert.match(degraded.error.instruction, /do not quote a balance/);
      }
      const text = await (await request(`${warden.adminUrl}/metrics`)).body.text();
      assert.match(text, /^warden_violations_total\{kind="invalid_result",action="block"\} 2$/m);
      assert.match(text, /^warden_tool_calls_total\{tool="get_account",outcome="invalid_result"\} 2$/m);
    });
  });
}

test('a client that calls a tool without listing first is still held to the server\'s inputSchema', async () => {
  const crm = await startCrmServer();
  process.env.CRM_MCP_URL = crm.url;
  const warden = await startWarden(tempFile('support.yaml', readFileSync(join(ROOT, 'policies/examples/support-agent.yaml'), 'utf8')));
  delete process.env.CRM_MCP_URL;
  const client = new Client({ name: 'support-agent', version: '2.3.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(`${warden.trafficUrl}/mcp/crm`)));
    // get_account has no args schema in the policy; the server's requires account_id.
    const err = await client.callTool({ name: 'get_account', arguments: {} }).catch((e) => e);
    assert.match(String(err.message), /invalid_arguments: .*missing required property "account_id"/);
    assert.deepEqual(crm.calls, []);
  } finally {
    await client.close();
    await warden.shutdown();
    await crm.close();
  }
});

test('an MCP stream whose last message lacks its blank line: that message stays last, after the held responses, as it came', async () => {
  const { createServer } = await import('node:http');
  const response = 'data: {"jsonrpc":"2.0","id":7,"result":{}}\n\n';
  const tail = 'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"done"}}';
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(response);
      res.end(tail);
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  process.env.CRM_MCP_URL = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
  const warden = await startWarden(tempFile('support.yaml', readFileSync(join(ROOT, 'policies/examples/support-agent.yaml'), 'utf8')));
  delete process.env.CRM_MCP_URL;
  try {
    const res = await request(`${warden.trafficUrl}/mcp/crm`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' }),
    });
    assert.equal(await res.body.text(), response + tail);
  } finally {
    await warden.shutdown();
    server.close();
  }
});
