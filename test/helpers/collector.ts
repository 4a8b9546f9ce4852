// A collector in this process on a loopback port, over a SQLite store in a temporary directory.
import { once } from 'node:events';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import { request } from 'undici';
import { createCollectorServer } from '../../collector/server.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startWarden, tempDataDir } from './warden.ts';

export const TOKEN = 'test-fleet-token';

export interface TestCollector {
  url: string;
  /** The store's database file. */
  path: string;
  port: number;
  store: CollectorStore;
  /** Stops listening (connections cut) without closing the store: the collector is "down". */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  get<T = any>(path: string): Promise<T>;
  /** The size of the (first) log the collector holds, 0 before any. */
  logSize(): Promise<number>;
  /** Every seq the collector holds, in order, read back through the query API page by page. */
  seqs(): Promise<number[]>;
  close(): Promise<void>;
}

/** Starts a sidecar on `policyFile` that ships its audit log to `collector` (the collector settings come from the environment). */
export async function startShippingWarden(collector: TestCollector, policyFile: string, dataDir: string): Promise<Sidecar> {
  process.env.WARDEN_COLLECTOR_URL = collector.url;
  process.env.WARDEN_COLLECTOR_TOKEN = TOKEN;
  try {
    return await startWarden(policyFile, false, dataDir);
  } finally {
    delete process.env.WARDEN_COLLECTOR_URL;
    delete process.env.WARDEN_COLLECTOR_TOKEN;
  }
}

/** Starts a collector; `tokens` (token → fleet) defaults to TOKEN for the fleet "test-fleet"; `port` 0 picks one. */
export async function startCollector(path = join(tempDataDir(), 'collector.db'), tokens: ReadonlyMap<string, string> = new Map([[TOKEN, 'test-fleet']]), port = 0): Promise<TestCollector> {
  const store = openSqliteStore(path);
  let server: Server | undefined;
  async function up(): Promise<void> {
    server = createCollectorServer({ store, tokens, log: pino({ level: 'silent' }) });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  }
  async function down(): Promise<void> {
    const s = server!;
    server = undefined;
    const closed = new Promise((r) => s.close(r));
    s.closeAllConnections();
    await closed;
  }
  async function get<T>(path: string): Promise<T> {
    const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return res.body.json() as Promise<T>;
  }
  await up();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    path,
    store,
    down,
    up,
    get,
    async logSize() {
      const { logs } = await get<{ logs: { size: number }[] }>('/v1/logs');
      return logs[0]?.size ?? 0;
    },
    async seqs() {
      const seqs: number[] = [];
      let after = '';
      for (;;) {
        const page = await get<{ records: { seq: number }[]; next: string | null }>(`/v1/records?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        seqs.push(...page.records.map((r) => r.seq));
        if (!page.next) return seqs;
        after = page.next;
      }
    },
    async close() {
      if (server) await down();
      await store.close();
    },
  };
}

export interface CollectorFront {
  url: string;
  /** While true, every batch `refuses` picks is answered 400 (malformed) instead of reaching the collector. */
  refusing: boolean;
  close(): void;
}

/** A stand-in in front of `collectorUrl` that refuses the batches `refuses` picks (a collector bug, since fixed) and forwards the rest. */
export async function collectorFront(collectorUrl: string, refuses: (batch: { first_seq: number; last_seq: number }) => boolean = () => true): Promise<CollectorFront> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      if (front.refusing && refuses(JSON.parse(gunzipSync(body).toString('utf8')))) {
        return res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"malformed"}}');
      }
      const answer = await fetch(`${collectorUrl}/v1/ingest`, { method: 'POST', headers: req.headers as Record<string, string>, body });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const front: CollectorFront = { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, refusing: true, close: () => server.close() };
  return front;
}
