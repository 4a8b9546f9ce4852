// A collector in this process on a loopback port, over a SQLite store in a temporary directory.
import { once } from 'node:events';
import { join } from 'node:path';
import type { Server } from 'node:http';
import pino from 'pino';
import { request } from 'undici';
import { createCollectorServer } from '../../collector/server.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import { tempDataDir } from './warden.ts';

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
  close(): Promise<void>;
}

/** Starts a collector; `tokens` (token → fleet) defaults to TOKEN for the fleet "test-fleet". */
export async function startCollector(path = join(tempDataDir(), 'collector.db'), tokens: ReadonlyMap<string, string> = new Map([[TOKEN, 'test-fleet']])): Promise<TestCollector> {
  const store = openSqliteStore(path);
  let server: Server | undefined;
  let port = 0;
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
    async close() {
      if (server) await down();
      await store.close();
    },
  };
}
