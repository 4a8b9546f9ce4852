// Real tool peers on loopback: the demo's order service over HTTP, and a CRM over MCP built on the
// official SDK's low-level Server (so a test can make it break its own outputSchema, which McpServer forbids).
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { closeServer } from '../../proxy/demo/fake-orders.ts';

export { ORDERS, orderFor, startOrderService, type OrderService } from '../../proxy/demo/fake-orders.ts';

export interface CrmServer {
  /** The MCP endpoint. */
  url: string;
  /** tools/call requests that reached the server, by tool name. */
  calls: string[];
  close(): Promise<void>;
}

const CRM_TOOLS = [
  { name: 'search_customers', description: 'Find customers', inputSchema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] } },
  { name: 'delete_customer', description: 'Delete a customer', inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
  {
    name: 'get_account', description: 'An account\'s plan and balance',
    inputSchema: { type: 'object', properties: { account_id: { type: 'string' } }, required: ['account_id'] },
    outputSchema: { type: 'object', properties: { plan: { type: 'string' }, balance: { type: 'number' } }, required: ['plan', 'balance'] },
  },
  { name: 'export_all_customers', description: 'Not in any agent\'s policy', inputSchema: { type: 'object', properties: {} } },
];

function crmServer(calls: string[]): Server {
  const server = new Server({ name: 'crm', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: CRM_TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    const { name, arguments: args = {} } = req.params;
    calls.push(name);
    if (name === 'search_customers') {
      const hits = [{ id: 'cus_8f3k2m', name: 'Maria Keller', email: 'maria.keller@posteo.de' }];
      return { content: [{ type: 'text', text: JSON.stringify({ query: args.query, results: hits }) }] };
    }
    if (name === 'get_account') {
      // ACC-BAD breaks the declared outputSchema; ACC-NONE omits structuredContent altogether.
      if (args.account_id === 'ACC-BAD') return { content: [{ type: 'text', text: '{"plan":"pro"}' }], structuredContent: { plan: 'pro', balance: 'lots' } };
      if (args.account_id === 'ACC-NONE') return { content: [{ type: 'text', text: 'plan pro, balance 12.5' }] };
      const account = { plan: 'business', balance: 1843.17 };
      return { content: [{ type: 'text', text: JSON.stringify(account) }], structuredContent: account };
    }
    if (name === 'delete_customer') return { content: [{ type: 'text', text: `deleted ${args.id}` }] };
    return { content: [{ type: 'text', text: '[]' }] };
  });
  return server;
}

/** A stateful Streamable HTTP MCP server: one SDK transport per session. `json` answers POSTs as JSON instead of SSE. */
export async function startCrmServer(opts: { json?: boolean } = {}): Promise<CrmServer> {
  const calls: string[] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const http = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (!transport) {
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: opts.json ?? false,
        onsessioninitialized: (id) => void sessions.set(id, t),
      });
      await crmServer(calls).connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res);
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    calls,
    async close() {
      await Promise.all([...sessions.values()].map((t) => t.close()));
      await closeServer(http);
    },
  };
}
