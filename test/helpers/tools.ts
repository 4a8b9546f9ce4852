// Real tool peers on loopback: an order service over HTTP, and a CRM over MCP built on the official
// SDK's low-level Server (so a test can make it break its own outputSchema, which McpServer forbids).
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

export interface OrderService {
  url: string;
  /** Requests per order id. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

// Order ids that make the service misbehave, the way real services do.
export const ORDERS = {
  html500: 'ORD-500500', // a proxy's HTML error page
  slow: 'ORD-999999', // never answers within the tool's timeout
  missingStatus: 'ORD-000404', // a result without its required status field
  flaky: 'ORD-503503', // 503 twice, then fine
} as const;

async function readJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString() || '{}');
}

/** What the order service says about an order: irregular, like real data. */
export function orderFor(id: string): Record<string, unknown> {
  const n = Number(id.slice(4)) || 7;
  return {
    order_id: id,
    status: ['shipped', 'delivered', 'pending'][n % 3],
    delivery_date: `2026-12-${String((n % 27) + 1).padStart(2, '0')}`,
    carrier: 'UPS',
    tracking: `1Z9${(n * 7919).toString(36).toUpperCase()}0441`,
    items: [{ sku: `SKU-${(n * 31) % 9973}`, qty: 1 + (n % 3), price: Math.round(((n * 37) % 9000) + 133) / 100 }],
  };
}

export async function startOrderService(): Promise<OrderService> {
  const hits = new Map<string, number>();
  const server = createServer(async (req, res) => {
    const args = await readJson(req);
    const id = String(args.order_id);
    const n = (hits.get(id) ?? 0) + 1;
    hits.set(id, n);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (id === ORDERS.html500) {
      res.writeHead(500, { 'content-type': 'text/html' });
      return res.end('<html><body><h1>500 Internal Server Error</h1><hr>nginx</body></html>');
    }
    if (id === ORDERS.slow) return void setTimeout(() => json(200, orderFor(id)), 5_000).unref();
    if (id === ORDERS.missingStatus) return json(200, { order_id: id, delivery_date: '2026-12-01' });
    if (id === ORDERS.flaky && n <= 2) return json(503, { error: 'overloaded' });
    if (req.url === '/refunds') return json(200, { refund_id: `re_${randomUUID().slice(0, 12)}`, status: 'pending' });
    json(200, orderFor(id));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, close: () => closeServer(server) };
}

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

function closeServer(server: HttpServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}
