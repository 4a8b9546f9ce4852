// The collector's HTTP API. Ingest takes gzip'd batches from sidecars (bearer token per fleet) and
// answers with how far it holds each log; queries read records, cost and integrity alerts, each of
// the token's own fleet only. The process keeps no state of its own beyond its store, so replicas
// can share one database.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { fleetOfBearer } from './dashboard/auth.ts';
import { isoOf } from './dashboard/range.ts';
import { dashboardRoute } from './dashboard/routes.ts';
import { MalformedBatchError, parseBatch } from './batch-shape.ts';
import { ForeignLogError } from './ingest.ts';
import type { CollectorStore } from './store.ts';

const gunzipAsync = promisify(gunzip);

/**
 * The largest batch body taken, sent and after gunzip, unless --max-body-bytes says otherwise. A
 * batch is at most 1 MiB of records, but a record too big for that is sent alone, and one research-mode
 * record holds a request and a response body of up to 16 MiB each, escaped in the record and again in
 * the batch: ~68 MiB for bodies of JSON that itself holds escaped JSON (tool arguments). Refused, it
 * would be dead-lettered for good; anything past this is a broken or hostile sender.
 */
export const DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024;

/** A --max-body-bytes value: a positive whole number of bytes, else an Error naming what is wrong. */
export function parseMaxBodyBytes(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--max-body-bytes must be a positive whole number of bytes, got "${text}"`);
  return n;
}

export interface CollectorOptions {
  store: CollectorStore;
  /** token → fleet name. */
  tokens: ReadonlyMap<string, string>;
  log: Logger;
  /** Largest batch body, sent and after gunzip; DEFAULT_MAX_BODY_BYTES when absent. */
  maxBodyBytes?: number;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function fleetOf(req: IncomingMessage, tokens: ReadonlyMap<string, string>): string {
  const fleet = fleetOfBearer(req, tokens);
  if (fleet === undefined) throw new HttpError(401, 'WARDEN_ERR_UNAUTHORIZED', 'a valid "Authorization: Bearer <token>" is required');
  return fleet;
}

function tooLarge(maxBytes: number, what: string): HttpError {
  return new HttpError(413, 'WARDEN_ERR_BODY_TOO_LARGE', `batch body ${what} over ${maxBytes} bytes (the collector's --max-body-bytes)`);
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  // Refused before a byte is read when the sender says its size; Node discards the rest of the body.
  if (Number(req.headers['content-length']) > maxBytes) throw tooLarge(maxBytes, 'is');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes, 'is');
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  if (req.headers['content-encoding'] !== 'gzip') return raw;
  try {
    return await gunzipAsync(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes, 'gunzips to');
    throw new HttpError(400, 'WARDEN_ERR_INVALID_GZIP', `batch body: ${(err as Error).message}`);
  }
}

/** No stored text holds a NUL, and PostgreSQL fails a query that binds one (a 503): refused as input. */
function withoutNul(name: string, value: string): string {
  if (value.includes('\0')) throw new HttpError(400, 'WARDEN_ERR_INVALID_QUERY', `${name} contains a NUL character`);
  return value;
}

function param(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name);
  return value === null ? undefined : withoutNul(`"${name}"`, value);
}

/** ?since, an alert id: a whole number, capped where ids cannot reach (PostgreSQL fails past bigint). */
function sinceOf(url: URL): number {
  const since = param(url, 'since')?.trim();
  if (!since) return 0;
  if (!/^\d+$/.test(since)) throw new HttpError(400, 'WARDEN_ERR_INVALID_QUERY', `"since" must be an alert id (a whole number), got ${JSON.stringify(since)}`);
  return Math.min(Number(since), Number.MAX_SAFE_INTEGER);
}

/**
 * ?from&to, canonical: the stores compare timestamps as text, so "…:45Z" and "…:45.000Z" must reach
 * them as the same string. Parsed here, once, with the dashboard's parser, so both read a range alike.
 */
function timeBounds(url: URL): { from?: string; to?: string } {
  const from = isoOf(param(url, 'from'), false);
  const to = isoOf(param(url, 'to'), true);
  for (const [name, value] of [['from', from], ['to', to]] as const) {
    if (value === null) {
      const given = param(url, name) ?? '';
      // A query string reads an unencoded "+" as a space: the commonest way to send a good offset wrong.
      const hint = / \d{2}:\d{2}$/.test(given) ? ' (send the offset\'s "+" as %2B)' : '';
      throw new HttpError(400, 'WARDEN_ERR_INVALID_TIME', `"${name}" must be an ISO 8601 date (YYYY-MM-DD) or date-time with an offset (2025-01-31T12:00:00Z, …+01:00), got ${JSON.stringify(given)}${hint}`);
    }
  }
  // As on the dashboard: a "to" day counts whole, so from=06-16&to=06-15 is as backwards as it reads.
  if (from && to && from >= to) throw new HttpError(400, 'WARDEN_ERR_INVALID_TIME', `"from" (${from}) must be before "to" (${to}, exclusive)`);
  return { from: from ?? undefined, to: to ?? undefined };
}

/**
 * ?after, the `next` of the page before: LOG:SEQ, split at the last colon (log ids hold colons). Any
 * other text is refused here: PostgreSQL would fail the query on a seq that is not an integer (a 503).
 */
function cursorOf(after: string | undefined): { logId: string; seq: number } | undefined {
  if (after === undefined || after === '') return undefined;
  const cut = after.lastIndexOf(':');
  const seq = /^\d+$/.test(after.slice(cut + 1)) ? Number(after.slice(cut + 1)) : NaN;
  if (cut <= 0 || !Number.isSafeInteger(seq)) throw new HttpError(400, 'WARDEN_ERR_INVALID_CURSOR', `"after" must be a page's "next" (LOG:SEQ), got ${JSON.stringify(after)}`);
  return { logId: after.slice(0, cut), seq };
}

async function route(opts: CollectorOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://collector');
  const key = `${req.method} ${url.pathname}`;
  if (key === 'GET /healthz') return json(res, 200, { ok: true });
  // Everything outside the API is the dashboard: browser pages with their own sign-in and HTML errors.
  if (!url.pathname.startsWith('/v1/')) return dashboardRoute(opts, req, res, url);
  const fleet = fleetOf(req, opts.tokens);
  const { store } = opts;
  if (key === 'POST /v1/ingest') {
    let value: unknown;
    try {
      value = JSON.parse((await readBody(req, opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)).toString('utf8'));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, 'WARDEN_ERR_INVALID_JSON', 'batch is not valid JSON');
    }
    const batch = parseBatch(value);
    const result = await store.ingest(batch, fleet).catch((err: unknown) => {
      // A token moved to another fleet, or a sender guessing log ids: the operator should know.
      if (err instanceof ForeignLogError) opts.log.warn({ logId: batch.log_id, fleet }, 'batch refused: the log belongs to another fleet');
      throw err;
    });
    if (result.alerts.length > 0) opts.log.warn({ logId: batch.log_id, alerts: result.alerts }, 'integrity alerts');
    return json(res, 200, {
      committed_through: result.committedThrough, stored: result.stored, filled: result.filled, duplicates: result.duplicates,
      checkpoints_held: result.checkpointsHeld, alerts: result.alerts.length,
      ...(result.missing ? { missing_from: result.missing.from, missing_through: result.missing.through } : {}),
    });
  }
  if (key === 'GET /v1/records') {
    // Clamped both ways: SQLite reads LIMIT -5 as no limit at all, PostgreSQL refuses it.
    const limit = Math.max(1, Math.min(Math.trunc(Number(param(url, 'limit') ?? 100)) || 100, 1_000));
    const rows = await store.records(fleet, {
      agent: param(url, 'agent'), session: param(url, 'session'), task: param(url, 'task'), event: param(url, 'event'),
      logId: param(url, 'log'), ...timeBounds(url), limit,
      after: cursorOf(param(url, 'after')),
    });
    const last = rows.at(-1);
    return json(res, 200, { records: rows.map((r) => JSON.parse(r.body)), next: rows.length === limit && last ? `${last.logId}:${last.seq}` : null });
  }
  if (key === 'GET /v1/cost') {
    const by = param(url, 'by') === 'task' ? 'task' : 'agent';
    const { from, to } = timeBounds(url);
    return json(res, 200, { by, rows: await store.cost(fleet, by, from, to) });
  }
  if (key === 'GET /v1/alerts') return json(res, 200, { alerts: await store.alerts(fleet, sinceOf(url)) });
  if (key === 'GET /v1/logs') return json(res, 200, { logs: await store.logs(fleet) });
  const exportMatch = /^\/v1\/logs\/(.+)\/export$/.exec(url.pathname);
  if (req.method === 'GET' && exportMatch) {
    // JSONL: every record's exact text, then the checkpoints, for offline verification, then the
    // records refused for their place, kept as evidence. Another fleet's log exports as empty, as a
    // log the collector does not hold does: its existence is not told.
    let logId: string;
    try {
      logId = decodeURIComponent(exportMatch[1]);
    } catch {
      throw new HttpError(400, 'WARDEN_ERR_INVALID_PATH', `the log id in ${url.pathname} is not valid percent-encoding`);
    }
    // Before the 200 goes out: a store failure after it can only cut the export short.
    if (logId.includes('\0')) throw new HttpError(400, 'WARDEN_ERR_INVALID_PATH', 'the log id contains a NUL character');
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for await (const r of store.logRecords(fleet, logId)) res.write(`${JSON.stringify({ record: r.body })}\n`);
    for (const cp of await store.logCheckpoints(fleet, logId)) res.write(`${JSON.stringify({ checkpoint: JSON.parse(cp) })}\n`);
    for (const c of await store.logConflicts(fleet, logId)) res.write(`${JSON.stringify({ conflict: c.body, seq: c.seq, received_at: c.receivedAt })}\n`);
    res.end();
    return;
  }
  throw new HttpError(404, 'WARDEN_ERR_ROUTE_NOT_FOUND', `no collector route ${key}`);
}

/** Creates (but does not start) the collector's server. */
export function createCollectorServer(opts: CollectorOptions): Server {
  return createServer((req, res) => {
    route(opts, req, res).catch((err) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) return json(res, err.status, { error: { message: err.message, code: err.code } });
      if (err instanceof MalformedBatchError || err instanceof ForeignLogError) return json(res, err.status, { error: { message: err.message, code: err.code } });
      // The store failed (disk, database down): the sender keeps the batch and retries.
      opts.log.error({ err }, 'collector request failed');
      json(res, 503, { error: { message: 'the collector store is unavailable', code: 'WARDEN_ERR_STORE_UNAVAILABLE' } }, { 'retry-after': '5' });
    });
  });
}
