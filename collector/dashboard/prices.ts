// GET /prices : the collector's price table, and the form that sets a model's price (POST /prices).
import { priceProblems } from '../dashboard-data.ts';
import type { Price } from '../dashboard-types.ts';
import { usd, when } from './format.ts';
import { html } from '../../proxy/admin/html.ts';
import type { Page } from './layout.ts';
import { renderTable, table } from './table.ts';

export type PriceInput = Omit<Price, 'since'>;

/** A submitted price form, or what is wrong with it (setPrice's rules). */
export function parsePriceForm(form: URLSearchParams): { price: PriceInput } | { error: string } {
  // An empty field is no number (Number('') would be 0).
  const amount = (name: string) => (form.get(name)?.trim() ? Number(form.get(name)) : Number.NaN);
  const price = { model: (form.get('model') ?? '').trim(), inputPerMTok: amount('inputPerMTok'), outputPerMTok: amount('outputPerMTok') };
  const problems = priceProblems(price);
  return problems.length > 0 ? { error: `The price was refused: ${problems.join('; ')}.` } : { price };
}

/** The price table and the form; `error` and `form` refill it after a refused submission. */
export function pricesPage(prices: Price[], url: URL, problem?: { error: string; form: URLSearchParams }): Page {
  const rows = table<Price>({
    name: 'prices',
    title: 'Prices (USD per million tokens)',
    rows: [...prices].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0)),
    empty: 'No prices set: calls the sidecar did not price are counted at $0.',
    columns: [
      { key: 'model', label: 'Model', value: (r) => r.model },
      { key: 'inputPerMTok', label: 'Input / MTok', value: (r) => r.inputPerMTok, cell: (r) => usd(r.inputPerMTok), numeric: true },
      { key: 'outputPerMTok', label: 'Output / MTok', value: (r) => r.outputPerMTok, cell: (r) => usd(r.outputPerMTok), numeric: true },
      { key: 'since', label: 'Since', value: (r) => r.since, cell: (r) => when(r.since) },
    ],
  });
  const v = (name: string) => problem?.form.get(name) ?? '';
  const body = html`
<p class="note">The collector prices the model calls a sidecar did not price itself. A price applies to records ingested from the moment it is set: every record keeps the price it was recorded with, so changing a price never rewrites past costs.</p>
${renderTable(rows, url)}
<h2>Set a model's price</h2>
${problem ? html`<p class="error" role="alert">${problem.error}</p>` : ''}
<form class="stack" method="post" action="/prices">
<label>Model <input name="model" required maxlength="200" value="${v('model')}" placeholder="e.g. gpt-4o-mini"></label>
<label>Input, USD per million tokens <input name="inputPerMTok" required inputmode="decimal" value="${v('inputPerMTok')}" placeholder="0.15"></label>
<label>Output, USD per million tokens <input name="outputPerMTok" required inputmode="decimal" value="${v('outputPerMTok')}" placeholder="0.60"></label>
<p><button type="submit">Set price</button></p>
</form>`;
  return { title: 'Prices', section: 'prices', body, tables: [rows], status: problem ? 400 : 200 };
}
