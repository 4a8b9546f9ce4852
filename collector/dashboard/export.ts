// A table's rows as a download: CSV per RFC 4180 (CRLF lines, every field quoted, quotes doubled),
// with cells that a spreadsheet would run as a formula prefixed by ', or as JSON.
import type { ServerResponse } from 'node:http';
import { exportRows, type Cell, type Table } from './table.ts';

// = + - @ start a formula in Excel, LibreOffice and Sheets; tab and CR are read the same way by some.
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV field: quoted, with a leading ' where the text would start a formula. */
export function csvField(value: Cell): string {
  if (value === undefined) return '""';
  let text = String(value);
  // Numbers are data, not formulas: a negative amount keeps its sign.
  if (typeof value !== 'number' && FORMULA_START.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

/** The table as CSV text: a header of column keys, then a line per row. */
export function toCsv(t: Table): string {
  const lines = [t.columns.map((c) => csvField(c.key)).join(',')];
  for (const row of exportRows(t)) lines.push(t.columns.map((c) => csvField(row[c.key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Sends the table as an attachment (CSV) or a JSON document ({ rows }). */
export function sendExport(res: ServerResponse, t: Table, format: 'csv' | 'json', basename: string, headers: Record<string, string>): void {
  const file = `${basename}-${t.name}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  const body = format === 'csv' ? toCsv(t) : JSON.stringify({ table: t.name, rows: exportRows(t) });
  res.writeHead(200, {
    ...headers,
    'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(format === 'csv' ? { 'content-disposition': `attachment; filename="${file}.csv"` } : {}),
  });
  res.end(body);
}
