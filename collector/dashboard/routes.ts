// The dashboard's pages on the collector's own port: sign-in, then server-rendered pages over the
// data layer (dashboard-data.ts), each table also downloadable as CSV or JSON (?format=&table=).
// Every response carries a strict CSP: the pages load nothing but /assets/ from this origin.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { agentDetail, fleetOverview, listPrices, recordDetail, searchRecords, setPrice } from '../dashboard-data.ts';
import type { CollectorStore } from '../store.ts';
import { agentPage } from './agent.ts';
import { alertsPage } from './alerts.ts';
import { ASSETS } from './assets.ts';
import { authenticate, fleetOfToken, localPath, loginPage, sameOrigin, SESSION_TTL_MS, sessionCookie, signSession } from './auth.ts';
import { sendExport } from './export.ts';
import type { SafeHtml } from '../../proxy/admin/html.ts';
import { errorPage, layout, type Page, type PageContext, type Problem } from './layout.ts';
import { overviewPage } from './overview.ts';
import { parsePriceForm, pricesPage } from './prices.ts';
import { rangeOf } from './range.ts';
import { recordPage, recordQuery, recordsPage } from './records.ts';

export interface DashboardOptions {
  store: CollectorStore;
  /** token → fleet name. */
  tokens: ReadonlyMap<string, string>;
  log: Logger;
  /** The clock (tests pin it). */
  now?: () => Date;
}

// A sign-in or price form is a few hundred bytes; anything near this is not a form.
const MAX_FORM_BYTES = 64 * 1024;

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const FOREIGN_FORM: Problem = { status: 403, title: 'Refused', message: 'This form was sent from another site.' };

const PRIVATE = { ...SECURITY_HEADERS, 'cache-control': 'no-store' };

function send(res: ServerResponse, status: number, doc: SafeHtml, headers: Record<string, string> = {}): void {
  const text = doc.value;
  res.writeHead(status, { ...PRIVATE, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { ...PRIVATE, location, 'content-length': 0, ...headers });
  res.end();
}

/**
 * The posted form, or undefined when it is over MAX_FORM_BYTES. A body declared too large is not read
 * and its connection closes after the answer; one that only turns out too large is read to its end
 * (kept no further), so the answer is not cut off by a reset.
 */
async function readForm(req: IncomingMessage, res: ServerResponse): Promise<URLSearchParams | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_FORM_BYTES) {
    res.setHeader('connection', 'close');
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_FORM_BYTES) chunks.push(chunk);
  }
  return size > MAX_FORM_BYTES ? undefined : new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The page for a request signed in to `fleet` (over that fleet's data only), or undefined when there is no such page. */
async function page(opts: DashboardOptions, fleet: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<Page | Problem | 'sent' | undefined> {
  const { store } = opts;
  const now = opts.now?.() ?? new Date();
  const path = url.pathname;
  // HEAD is GET without the body (node:http drops it), so monitors can probe any page.
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (get && path === '/') return overviewPage(await fleetOverview(store, fleet, now), url);
  if (get && path === '/alerts') return alertsPage(await store.alerts(fleet), url);
  if (get && path === '/records') {
    const q = recordQuery(url);
    if (!q) return { status: 400, title: 'Bad search', message: '"from" and "to" must be dates (YYYY-MM-DD) or ISO times with an offset (2025-06-15T10:00:00Z, …+01:00).' };
    return recordsPage(await searchRecords(store, fleet, q), url);
  }
  const agent = /^\/agents\/([^/]+)$/.exec(path);
  if (get && agent) {
    const id = decode(agent[1]);
    if (id === undefined) return undefined;
    const range = rangeOf(url, now);
    if (!range) return { status: 400, title: 'Bad range', message: '"from" and "to" must be dates (YYYY-MM-DD) or ISO times with an offset (2025-06-15T10:00:00Z, …+01:00), "from" before "to".' };
    return agentPage(await agentDetail(store, fleet, id, range), url);
  }
  const record = /^\/records\/([^/]+)\/(\d+)$/.exec(path);
  if (get && record) {
    const logId = decode(record[1]);
    const found = logId === undefined ? undefined : await recordDetail(store, fleet, logId, Number(record[2]));
    if (!found) return undefined;
    if (url.searchParams.get('format') === 'json') {
      res.writeHead(200, { ...PRIVATE, 'content-type': 'application/json', 'content-length': Buffer.byteLength(found.body) });
      res.end(found.body);
      return 'sent';
    }
    return recordPage(found.row, found.body);
  }
  if (path === '/prices' && get) return pricesPage(await listPrices(store, fleet), url);
  if (path === '/prices' && req.method === 'POST') {
    if (!sameOrigin(req)) return FOREIGN_FORM;
    const form = await readForm(req, res);
    const parsed = form ? parsePriceForm(form) : { error: 'The form is too large.' };
    if ('error' in parsed) return pricesPage(await listPrices(store, fleet), url, { error: parsed.error, form: form ?? new URLSearchParams() });
    await setPrice(store, fleet, parsed.price, now);
    redirect(res, '/prices');
    return 'sent';
  }
  return undefined;
}

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Sends a page as HTML, or one of its tables when the URL asks for ?format=csv|json. */
function render(res: ServerResponse, p: Page | Problem, url: URL, ctx: PageContext): void {
  if ('message' in p) return send(res, p.status, errorPage(p.title, p.message, ctx));
  const format = url.searchParams.get('format');
  if (format === 'csv' || format === 'json') {
    const name = url.searchParams.get('table');
    const t = name ? p.tables.find((x) => x.name === name) : p.tables[0];
    if (!t) return send(res, 404, errorPage('Not found', 'This page has no such table.', ctx));
    return sendExport(res, t, format, url.pathname === '/' ? 'overview' : url.pathname.slice(1).replace(/\//g, '-'), PRIVATE);
  }
  send(res, p.status ?? 200, layout(p.title, p.section, ctx, p.body, p.scripts));
}

/** Serves a dashboard request (any path outside /v1/ and /healthz): pages, sign-in, assets, 404s. */
export async function dashboardRoute(opts: DashboardOptions, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const now = opts.now?.() ?? new Date();
  const path = url.pathname;
  try {
    if ((req.method === 'GET' || req.method === 'HEAD') && path.startsWith('/assets/')) {
      const asset = ASSETS.get(path.slice('/assets/'.length));
      if (!asset) return send(res, 404, errorPage('Not found', 'There is no such file.', {}));
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': Buffer.byteLength(asset.body), 'cache-control': 'public, max-age=300' });
      return void res.end(asset.body);
    }
    if (path === '/login' && req.method === 'GET') return send(res, 200, loginPage(localPath(url.searchParams.get('next'))));
    if (path === '/login' && req.method === 'POST') {
      if (!sameOrigin(req)) return render(res, FOREIGN_FORM, url, {});
      const form = await readForm(req, res);
      const next = localPath(form?.get('next'));
      const token = form?.get('token') ?? '';
      const fleet = token ? fleetOfToken(token, opts.tokens) : undefined;
      if (fleet === undefined) return send(res, 401, loginPage(next, 'That is not a fleet token this collector accepts.'));
      const value = signSession(fleet, token, now.getTime() + SESSION_TTL_MS);
      return redirect(res, next, { 'set-cookie': sessionCookie(req, value, SESSION_TTL_MS / 1_000) });
    }
    if (path === '/logout' && req.method === 'POST') {
      if (!sameOrigin(req)) return render(res, FOREIGN_FORM, url, {});
      return redirect(res, '/login', { 'set-cookie': sessionCookie(req, '', 0) });
    }
    const who = authenticate(req, opts.tokens, now.getTime());
    if (!who) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 401, loginPage('/', 'Sign in first.'));
      return redirect(res, `/login?next=${encodeURIComponent(`${path}${url.search}`)}`);
    }
    const ctx: PageContext = { fleet: who.fleet, cookie: who.cookie };
    const p = await page(opts, who.fleet, req, res, url);
    if (p === 'sent') return;
    if (!p) return send(res, 404, errorPage('Not found', `There is no page at ${path}.`, ctx));
    render(res, p, url, ctx);
  } catch (err) {
    opts.log.error({ err, path }, 'dashboard request failed');
    if (res.headersSent) return void res.destroy();
    send(res, 503, errorPage('Unavailable', 'The collector could not read its store; try again shortly.', {}), { 'retry-after': '5' });
  }
}
