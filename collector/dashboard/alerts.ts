// GET /alerts : every integrity alert the collector raised on ingest (tampering, gaps, bad signatures).
import type { StoredAlert } from '../store.ts';
import { when } from './format.ts';
import { html } from '../../proxy/admin/html.ts';
import { recordHref, type Page } from './layout.ts';
import { renderTable, table } from './table.ts';

/** The alerts page, newest first. */
export function alertsPage(alerts: StoredAlert[], url: URL): Page {
  const rows = table<StoredAlert>({
    name: 'alerts',
    title: 'Integrity alerts',
    rows: [...alerts].sort((a, b) => b.id - a.id),
    empty: 'No integrity alerts: every record and checkpoint checked out on arrival.',
    columns: [
      { key: 'id', label: 'Id', value: (r) => r.id, numeric: true },
      { key: 'at', label: 'Raised', value: (r) => r.at, cell: (r) => when(r.at) },
      { key: 'kind', label: 'Kind', value: (r) => r.kind, cell: (r) => (r.resolvedAt ? r.kind : html`<span class="bad">${r.kind}</span>`) },
      { key: 'logId', label: 'Log', value: (r) => r.logId },
      { key: 'seq', label: 'Seq', value: (r) => r.seq, cell: (r) => html`<a href="${recordHref(r.logId, r.seq)}">${r.seq}</a>`, numeric: true },
      { key: 'detail', label: 'Detail', value: (r) => r.detail },
      { key: 'resolvedAt', label: 'Resolved', value: (r) => r.resolvedAt ?? '', cell: (r) => (r.resolvedAt ? when(r.resolvedAt) : '') },
    ],
  });
  const body = html`<p class="note">The collector stores what it receives and flags what fails a check: a record that is not canonical, does not chain to the one before, conflicts with one already held, or a checkpoint whose signature, signer or Merkle root is wrong. A gap is resolved once the records it missed arrive (a batch the sidecar dead-lettered, sent again with <code>warden audit reship</code>). Verify a whole log offline with <code>warden audit verify --collector</code>.</p>
${renderTable(rows, url)}`;
  return { title: 'Integrity alerts', section: 'alerts', body, tables: [rows] };
}
