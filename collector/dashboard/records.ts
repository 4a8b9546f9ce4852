// GET /records : the audit search (filters, a page of results, a link to the next page), and
// GET /records/{logId}/{seq} : one record in full. Encrypted fields stay encrypted on the server;
// the page offers to decrypt them in the browser with a key the user pastes (record-decrypt.js).
import type { RecordPage, RecordRow } from '../dashboard-types.ts';
import type { RecordQuery } from '../store.ts';
import { count, ms, usd, when } from './format.ts';
import { html, jsonData, type SafeHtml } from '../../proxy/admin/html.ts';
import { isEncryptedField } from '../../proxy/audit/field-protection.ts';
import { agentHref, recordHref, type Page } from './layout.ts';
import { isoOf } from './range.ts';
import { renderTable, table } from './table.ts';

/** Results per page. */
export const PAGE_SIZE = 50;

const FILTERS = ['agent', 'session', 'task', 'event', 'from', 'to'] as const;

/** The search a /records URL asks for, or undefined when from or to is not a date or time. */
export function recordQuery(url: URL): RecordQuery | undefined {
  const get = (name: string) => url.searchParams.get(name)?.trim() || undefined;
  const from = isoOf(get('from'), false);
  const to = isoOf(get('to'), true);
  if (from === null || to === null) return undefined;
  const after = get('after');
  const cut = after?.lastIndexOf(':') ?? -1;
  const seq = after && cut > 0 ? Number(after.slice(cut + 1)) : NaN;
  return {
    agent: get('agent'), session: get('session'), task: get('task'), event: get('event'), from, to,
    after: after && Number.isInteger(seq) ? { logId: after.slice(0, cut), seq } : undefined,
    limit: PAGE_SIZE,
  };
}

/** The search page: the form filled in from the URL, the results and the next-page link. */
export function recordsPage(result: RecordPage, url: URL): Page {
  const rows = table<RecordRow>({
    name: 'records',
    title: 'Records',
    rows: result.rows,
    empty: 'No records match.',
    columns: [
      { key: 'ts', label: 'When', value: (r) => r.ts, cell: (r) => html`<a href="${recordHref(r.logId, r.seq)}">${when(r.ts)}</a>` },
      { key: 'event', label: 'Event', value: (r) => r.event },
      { key: 'agent', label: 'Agent', value: (r) => r.agent, cell: (r) => (r.agent ? html`<a href="${agentHref(r.agent)}">${r.agent}</a>` : '') },
      { key: 'session', label: 'Session', value: (r) => r.session },
      { key: 'task', label: 'Task', value: (r) => r.task },
      { key: 'model', label: 'Model', value: (r) => r.model },
      { key: 'status', label: 'Status', value: (r) => r.status, numeric: true },
      { key: 'latencyMs', label: 'Latency', value: (r) => r.latencyMs, cell: (r) => (r.latencyMs === undefined ? '' : ms(r.latencyMs)), numeric: true },
      { key: 'costUsd', label: 'Cost', value: (r) => r.costUsd, cell: (r) => (r.costUsd === undefined ? '' : usd(r.costUsd)), numeric: true },
      { key: 'verified', label: 'Verified', value: (r) => r.verified, cell: (r) => (r.verified ? html`<span class="ok">yes</span>` : html`<span class="bad">no</span>`) },
      { key: 'logId', label: 'Log', value: (r) => r.logId },
      { key: 'seq', label: 'Seq', value: (r) => r.seq, numeric: true },
    ],
  });
  const value = (name: string) => url.searchParams.get(name) ?? '';
  const next = new URL(url.href);
  next.searchParams.delete('format');
  next.searchParams.delete('table');
  if (result.next) next.searchParams.set('after', result.next);
  const first = new URL(next.href);
  first.searchParams.delete('after');
  const body = html`
<form class="filters" method="get" action="/records">
${FILTERS.map((name) => html`<label>${labelOf(name)} <input name="${name}" value="${value(name)}"${name === 'from' || name === 'to' ? html` placeholder="YYYY-MM-DD or ISO time, …Z"` : ''}></label>`)}
<button type="submit">Search</button>
</form>
<p class="note">Times are UTC; a "to" day counts whole, a "to" time is exclusive. ${count(result.rows.length)} records on this page.</p>
${renderTable(rows, url)}
<p class="pager">${url.searchParams.has('after') ? html`<a href="${first.pathname}${first.search}">First page</a> ` : ''}${result.next ? html`<a rel="next" href="${next.pathname}${next.search}">Next page →</a>` : ''}</p>`;
  return { title: 'Audit records', section: 'records', body, tables: [rows] };
}

function labelOf(name: (typeof FILTERS)[number]): string {
  return { agent: 'Agent', session: 'Session', task: 'Task', event: 'Event', from: 'From', to: 'To' }[name];
}

/** Whether a record body holds any field protected by field-protection.ts. */
export function hasEncryptedFields(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (isEncryptedField(value)) return true;
  return Object.values(value as object).some(hasEncryptedFields);
}

/** One record: its indexed fields, then the whole body as pretty JSON. */
export function recordPage(row: RecordRow, body: string): Page {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const facts: [string, SafeHtml | string | number | undefined][] = [
    ['When', when(row.ts)], ['Event', row.event], ['Agent', row.agent ? html`<a href="${agentHref(row.agent)}">${row.agent}</a>` : undefined],
    ['Session', row.session], ['Task', row.task], ['Model', row.model], ['Status', row.status],
    ['Latency', row.latencyMs === undefined ? undefined : ms(row.latencyMs)], ['Cost', row.costUsd === undefined ? undefined : usd(row.costUsd)],
    ['Log', row.logId], ['Seq', row.seq],
    ['Verified', row.verified ? html`<span class="ok">yes: canonical and chained on arrival</span>` : html`<span class="bad">no: see the integrity alerts for this log</span>`],
  ];
  const encrypted = hasEncryptedFields(parsed);
  const keyBox = encrypted
    ? html`<h2>Encrypted fields</h2>
<p class="note">Some fields are encrypted. Paste the audit key ("kid:base64", several separated by commas) to read them: they are decrypted in this browser, the key is never sent to the collector, and it is kept only in this tab's session storage.</p>
<form id="key-form" class="stack" autocomplete="off">
<label>Audit key <input id="key-input" type="password" name="key" placeholder="kid:base64" spellcheck="false"></label>
<p><button type="submit">Decrypt here</button> <button id="key-forget" class="link" type="button">Forget the key</button></p>
</form>
<pre id="key-status" class="note" aria-live="polite"></pre>`
    : '';
  const pretty = parsed === undefined ? body : JSON.stringify(parsed, null, 2);
  const page = html`
<dl class="facts">${facts.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
<p class="exports">Download: <a href="?format=json">the record as stored (JSON)</a></p>
${keyBox}
<h2>Record</h2>
<pre id="record-json">${pretty}</pre>
${encrypted ? html`<script type="application/json" id="record-data">${jsonData(parsed)}</script>` : ''}`;
  return { title: `Record ${row.seq} of log ${row.logId}`, section: 'records', body: page, tables: [], scripts: encrypted ? ['/assets/record-decrypt.js'] : [] };
}
