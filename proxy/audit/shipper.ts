// Ships the audit log to the central collector, from the writer thread: contiguous seq ranges (at
// most 500 records and 1 MiB a batch), gzip'd, with an idempotency key, checkpoints alongside. It
// never gives up: 429, 5xx and network failures back off (full jitter, capped at 60 s, Retry-After
// honoured); a batch the collector rejects as malformed goes to a dead-letter table and raises an
// alert, and shipping moves on. Progress is the collector's own `committed_through`.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Db } from './store.ts';
import { getMeta } from './store.ts';

export interface ShipperOptions {
  db: Db;
  logId: string;
  url: string;
  token: string;
  maxRecords?: number;
  maxBytes?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  requestTimeoutMs?: number;
  report(event: ShipperEvent): void;
}

export type ShipperEvent =
  | { type: 'shipped'; through: number; unshipped: number }
  | { type: 'ship-failed'; reason: 'network' | 'throttled' | 'server' | 'unauthorized' | 'rejected'; detail: string; retryInMs?: number };

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export interface Shipper {
  /** Records were committed: ship soon. */
  notify(): void;
  /** Stops after at most `graceMs` more of trying to ship what is left. */
  stop(graceMs: number): Promise<void>;
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date); 0 when absent or unreadable. */
export function retryAfterMs(value: string | null): number {
  if (value === null) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : 0;
}

/** Starts the shipping loop. */
export function startShipper(o: ShipperOptions): Shipper {
  const maxRecords = o.maxRecords ?? 500;
  const maxBytes = o.maxBytes ?? 1024 * 1024;
  const base = o.backoffBaseMs ?? 250;
  const cap = o.backoffCapMs ?? 60_000;
  o.db.exec('CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, status INTEGER NOT NULL, response TEXT NOT NULL, at TEXT NOT NULL) STRICT');
  const setMeta = o.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  const nextRecords = o.db.prepare('SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?');
  const nextCheckpoints = o.db.prepare('SELECT body FROM checkpoints WHERE size > ? AND size <= ? ORDER BY size');
  const lastSeq = o.db.prepare('SELECT coalesce(max(seq), 0) AS n FROM records');
  const deadLetter = o.db.prepare('INSERT INTO dead_letters (first_seq, last_seq, status, response, at) VALUES (?, ?, ?, ?, ?)');
  let shipped = Number(getMeta(o.db, 'shipped_through') ?? 0);
  let checkpointsShipped = Number(getMeta(o.db, 'checkpoints_shipped_through') ?? 0);
  let wake: (() => void) | undefined;
  let stopping = false;
  let stopDeadline = Infinity;
  let attempt = 0;
  // Set once stop() gives up: a request still in flight must not touch the (closing) database.
  let halted = false;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  function nextBatch(): { first: number; last: number; records: string[]; checkpoints: unknown[] } | undefined {
    const rows = nextRecords.all(shipped, maxRecords) as { seq: number; body: string }[];
    const records: string[] = [];
    let bytes = 0;
    for (const r of rows) {
      if (records.length > 0 && bytes + r.body.length > maxBytes) break;
      records.push(r.body);
      bytes += r.body.length;
    }
    const last = records.length > 0 ? rows[records.length - 1].seq : shipped;
    const checkpoints = (nextCheckpoints.all(checkpointsShipped, last) as { body: string }[]).map((c) => JSON.parse(c.body));
    if (records.length === 0 && checkpoints.length === 0) return undefined;
    return { first: records.length > 0 ? rows[0].seq : last, last, records, checkpoints };
  }

  function backoff(retryAfter: string | null): number {
    // Full jitter (AWS architecture blog): spreads a fleet's retries after a shared outage.
    const jittered = Math.random() * Math.min(cap, base * 2 ** attempt);
    attempt = Math.min(attempt + 1, 30);
    const told = retryAfterMs(retryAfter);
    // Retry-After is the server's own word: honoured, up to five minutes.
    return told > 0 ? Math.min(Math.max(told, jittered), 300_000) : jittered;
  }

  async function send(batch: NonNullable<ReturnType<typeof nextBatch>>): Promise<number> {
    const payload = JSON.stringify({ log_id: o.logId, first_seq: batch.first, last_seq: batch.last, records: batch.records, checkpoints: batch.checkpoints });
    const digest = createHash('sha256').update(payload).digest('hex').slice(0, 32);
    let res: Response;
    try {
      res = await fetch(`${o.url.replace(/\/+$/, '')}/v1/ingest`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${o.token}`, 'content-type': 'application/json', 'content-encoding': 'gzip',
          'idempotency-key': `${o.logId}:${batch.first}:${batch.last}:${digest}`,
        },
        body: gzipSync(payload),
        signal: AbortSignal.timeout(o.requestTimeoutMs ?? 30_000),
      });
    } catch (err) {
      if (halted) return 0;
      const wait = backoff(null);
      o.report({ type: 'ship-failed', reason: 'network', detail: String((err as Error).cause ?? (err as Error).message), retryInMs: wait });
      return wait;
    }
    const text = await res.text().catch(() => '');
    if (halted) return 0;
    if (res.ok) {
      attempt = 0;
      let through = batch.last;
      try {
        through = Number(JSON.parse(text).committed_through);
      } catch { /* an old collector: take the batch as delivered */ }
      // The collector's word is what counts: if it holds less (restored from backup), resend from there.
      shipped = Number.isSafeInteger(through) ? through : batch.last;
      checkpointsShipped = Math.max(checkpointsShipped, ...batch.checkpoints.map((c) => (c as { size: number }).size));
      setMeta.run('shipped_through', String(shipped));
      setMeta.run('checkpoints_shipped_through', String(checkpointsShipped));
      o.report({ type: 'shipped', through: shipped, unshipped: Math.max(0, (lastSeq.get() as { n: number }).n - shipped) });
      return 0;
    }
    if (RETRYABLE.has(res.status) || res.status === 401 || res.status === 403) {
      const wait = backoff(res.headers.get('retry-after'));
      const reason = res.status === 429 ? 'throttled' : res.status === 401 || res.status === 403 ? 'unauthorized' : 'server';
      o.report({ type: 'ship-failed', reason, detail: `HTTP ${res.status}: ${text.slice(0, 200)}`, retryInMs: wait });
      return wait;
    }
    // Rejected as malformed: keep the evidence locally, say so loudly, and move on.
    deadLetter.run(batch.first, batch.last, res.status, text.slice(0, 4096), new Date().toISOString());
    shipped = batch.last;
    checkpointsShipped = Math.max(checkpointsShipped, batch.last);
    setMeta.run('shipped_through', String(shipped));
    setMeta.run('checkpoints_shipped_through', String(checkpointsShipped));
    o.report({ type: 'ship-failed', reason: 'rejected', detail: `records ${batch.first}..${batch.last} dead-lettered: HTTP ${res.status}: ${text.slice(0, 200)}` });
    return 0;
  }

  const loop = (async () => {
    while (!halted && !(stopping && Date.now() >= stopDeadline)) {
      const batch = nextBatch();
      if (!batch) {
        if (stopping) return;
        await sleep(1_000);
        continue;
      }
      const wait = await send(batch);
      if (wait > 0) {
        if (stopping) return;
        await sleep(wait);
      }
    }
  })();

  return {
    notify() {
      if (attempt === 0) wake?.();
    },
    async stop(graceMs) {
      stopping = true;
      stopDeadline = Date.now() + graceMs;
      wake?.();
      await Promise.race([loop, new Promise((r) => setTimeout(r, graceMs + 100))]);
      halted = true;
    },
  };
}
