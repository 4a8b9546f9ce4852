// Tables as data: the same columns render the HTML table and its CSV and JSON exports, so an
// export always holds exactly the rows and columns the page shows.
import { html, type SafeHtml } from '../../proxy/admin/html.ts';

export type Cell = string | number | boolean | undefined;

export interface Column<T> {
  /** The export's field name. */
  key: string;
  label: string;
  value(row: T): Cell;
  /** How the page shows the cell, when not as the plain value (a link, a formatted amount). */
  cell?(row: T): SafeHtml | string;
  numeric?: boolean;
}

export interface Table<T = any> {
  /** Names the table in export links (?table=name). */
  name: string;
  title: string;
  columns: Column<T>[];
  rows: T[];
  /** Shown instead of an empty table. */
  empty?: string;
}

/** A table definition, typed by its row. */
export function table<T>(t: Table<T>): Table<T> {
  return t;
}

/** The table's rows as export objects, keyed by column key. */
export function exportRows<T>(t: Table<T>): Record<string, Cell>[] {
  return t.rows.map((row) => Object.fromEntries(t.columns.map((c) => [c.key, c.value(row)])));
}

/** The link to this page's table in a format: the page's own URL plus ?format=&table=. */
export function exportHref(page: URL, t: Table, format: 'csv' | 'json'): string {
  const u = new URL(page.href);
  u.searchParams.set('format', format);
  u.searchParams.set('table', t.name);
  return `${u.pathname}${u.search}`;
}

/** The table in a scrolling wrapper, with its export links. */
export function renderTable<T>(t: Table<T>, page: URL): SafeHtml {
  const links = html`<p class="exports">Export: <a href="${exportHref(page, t, 'csv')}" download>CSV</a> · <a href="${exportHref(page, t, 'json')}">JSON</a></p>`;
  if (t.rows.length === 0) return html`<p class="empty">${t.empty ?? 'Nothing in this range.'}</p>`;
  const head = t.columns.map((c) => html`<th scope="col"${c.numeric ? html` class="num"` : ''}>${c.label}</th>`);
  const body = t.rows.map((row) => html`<tr>${t.columns.map((c) => html`<td${c.numeric ? html` class="num"` : ''}>${c.cell ? c.cell(row) : c.value(row)}</td>`)}</tr>`);
  return html`<div class="table-wrap"><table><caption>${t.title}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>${links}`;
}
