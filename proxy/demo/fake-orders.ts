// A fake order service for `warden demo` and the tool tests: POST /lookup answers an order the way a
// real service does (irregular figures, real-looking ids), and a few order ids make it misbehave the
// way real services do. POST /refunds accepts a refund. Loopback only, dependency-free.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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
  // Placeholder-looking data that is nonetheless what the service holds: the same on every call.
  stubbed: 'ORD-424242',
  // Placeholder-looking data that changes on every call: a broken backend making things up.
  inventing: 'ORD-737373',
} as const;

/** Data that looks invented: round figures, a placeholder customer, a generic note. */
function placeholderOrder(id: string, variant: number): Record<string, unknown> {
  return {
    order_id: id, status: 'shipped', customer: 'John Doe', email: 'john.doe@example.com', phone: '555-0100',
    total: 100 * (variant + 1), items: [{ sku: 'SKU-001', qty: 1, price: 50 }, { sku: 'SKU-002', qty: 1, price: 50 }],
  };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString() || '{}');
  } catch {
    return {};
  }
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
    if (id === ORDERS.stubbed) return json(200, placeholderOrder(id, 0));
    if (id === ORDERS.inventing) return json(200, placeholderOrder(id, n));
    if (req.url === '/refunds') return json(200, { refund_id: `re_${randomUUID().slice(0, 12)}`, status: 'pending' });
    json(200, orderFor(id));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, close: () => closeServer(server) };
}

/** Closes a server and every connection on it. */
export function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}
