// Charts as inline SVG rendered on the server: no script, no external request, the same markup for
// the same data. Each chart is an image with a text alternative (role="img", aria-label) and each
// bar or point carries its exact value in a <title>, which browsers show as a tooltip.
import { html, type SafeHtml } from '../../proxy/admin/html.ts';
import { compact } from './format.ts';

export interface Series {
  name: string;
  values: number[];
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const WIDE: Frame = { width: 640, height: 240, left: 56, right: 24, top: 12, bottom: 40 };

/** Two decimals at most, so coordinates print identically everywhere. */
function n(v: number): string {
  return Number(v.toFixed(2)).toString();
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above `max`, so axis ticks fall on round numbers. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** WIDE with a left margin wide enough for the longest y tick label (about 7.5 px a character at 13 px). */
function wideFor(top: number, tick: (v: number) => string): Frame {
  const longest = Math.max(...[0, 1, 2, 3, 4].map((i) => tick((top * i) / 4).length));
  return { ...WIDE, left: Math.max(WIDE.left, Math.ceil(12 + 7.5 * longest)) };
}

function svg(f: Frame, label: string, body: SafeHtml): SafeHtml {
  return html`<figure class="chart"><svg viewBox="0 0 ${f.width} ${f.height}" role="img" aria-label="${label}" xmlns="http://www.w3.org/2000/svg"><title>${label}</title>${body}</svg></figure>`;
}

/** Gridlines and value labels up the left side, four steps from 0 to top. */
function yAxis(f: Frame, top: number, format: (v: number) => string): SafeHtml {
  const plotH = f.height - f.top - f.bottom;
  const ticks = [0, 1, 2, 3, 4].map((i) => {
    const value = (top * i) / 4;
    const y = f.top + plotH - (plotH * i) / 4;
    return html`<line class="grid" x1="${f.left}" x2="${f.width - f.right}" y1="${n(y)}" y2="${n(y)}"/><text class="tick" x="${f.left - 6}" y="${n(y + 4)}" text-anchor="end">${format(value)}</text>`;
  });
  return html`<g aria-hidden="true">${ticks}</g>`;
}

/** Labels under the x positions, thinned so they never overlap (about eight shown). */
function xLabels(f: Frame, labels: string[], xOf: (i: number) => number, short: (l: string) => string): SafeHtml {
  const every = Math.max(1, Math.ceil(labels.length / 8));
  const shown = labels.map((l, i) => (i % every === 0
    ? html`<text class="tick" x="${n(xOf(i))}" y="${f.height - f.bottom + 16}" text-anchor="middle">${short(l)}</text>` : ''));
  return html`<g aria-hidden="true">${shown}</g>`;
}

function shortDay(day: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? day.slice(5) : day;
}

export interface ColumnChartOptions {
  label: string;
  labels: string[];
  values: number[];
  format: (v: number) => string;
  /** Axis tick text; defaults to a compact number. */
  tick?: (v: number) => string;
}

/** Vertical bars over an ordered axis (days). */
export function columnChart(o: ColumnChartOptions): SafeHtml {
  const top = niceMax(Math.max(0, ...o.values));
  const tick = o.tick ?? compact;
  const f = wideFor(top, tick);
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const slot = plotW / Math.max(1, o.values.length);
  const barW = Math.max(1, slot * 0.72);
  const xOf = (i: number) => f.left + slot * i + slot / 2;
  const bars = o.values.map((v, i) => {
    const h = (plotH * Math.max(0, v)) / top;
    return html`<rect class="bar" x="${n(xOf(i) - barW / 2)}" y="${n(f.top + plotH - h)}" width="${n(barW)}" height="${n(h)}"><title>${o.labels[i]}: ${o.format(v)}</title></rect>`;
  });
  return svg(f, o.label, html`${yAxis(f, top, tick)}${bars}${xLabels(f, o.labels, xOf, shortDay)}<line class="axis" x1="${f.left}" x2="${f.width - f.right}" y1="${f.top + plotH}" y2="${f.top + plotH}"/>`);
}

export interface BarChartOptions {
  label: string;
  rows: { key: string; value: number }[];
  format: (v: number) => string;
  /** Bars shown; the rest are summed into "other". */
  limit?: number;
}

/** Horizontal bars for named categories (tasks, models), largest first, with the value at the end. */
export function barChart(o: BarChartOptions): SafeHtml {
  const limit = o.limit ?? 10;
  const sorted = [...o.rows].sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const rows = sorted.length > limit
    ? [...sorted.slice(0, limit - 1), { key: `other (${sorted.length - limit + 1})`, value: sorted.slice(limit - 1).reduce((s, r) => s + r.value, 0) }]
    : sorted;
  const rowH = 26;
  const f: Frame = { width: 640, height: 16 + rowH * Math.max(1, rows.length), left: 170, right: 90, top: 8, bottom: 8 };
  const plotW = f.width - f.left - f.right;
  const top = Math.max(0, ...rows.map((r) => r.value)) || 1;
  const bars = rows.map((r, i) => {
    const y = f.top + rowH * i;
    const w = (plotW * Math.max(0, r.value)) / top;
    const name = r.key.length > 26 ? `${r.key.slice(0, 25)}…` : r.key;
    return html`<g><title>${r.key}: ${o.format(r.value)}</title><text class="tick" x="${f.left - 8}" y="${y + 17}" text-anchor="end">${name}</text><rect class="bar" x="${f.left}" y="${y + 4}" width="${n(Math.max(w, r.value > 0 ? 1 : 0))}" height="${rowH - 8}"/><text class="value" x="${n(f.left + w + 6)}" y="${y + 17}">${o.format(r.value)}</text></g>`;
  });
  if (rows.length === 0) return html`<p class="empty">Nothing to chart.</p>`;
  return svg(f, o.label, html`${bars}<line class="axis" x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.height - f.bottom}"/>`);
}

export interface LineChartOptions {
  label: string;
  labels: string[];
  series: Series[];
  format: (v: number) => string;
  /** Fill under the first series. */
  area?: boolean;
  /** A fixed top for the y axis (trust scores: 1). */
  max?: number;
  tick?: (v: number) => string;
  /** How an x label is shortened under the axis. */
  short?: (label: string) => string;
}

/** One or more lines over an ordered axis, a dot per point with its value, and a legend. */
export function lineChart(o: LineChartOptions): SafeHtml {
  const top = o.max ?? niceMax(Math.max(0, ...o.series.flatMap((s) => s.values)));
  const tick = o.tick ?? compact;
  const f = wideFor(top, tick);
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const count = Math.max(...o.series.map((s) => s.values.length), 0);
  const xOf = (i: number) => f.left + (count <= 1 ? plotW / 2 : (plotW * i) / (count - 1));
  const yOf = (v: number) => f.top + plotH - (plotH * Math.min(Math.max(0, v), top)) / top;
  const lines = o.series.map((s, si) => {
    const points = s.values.map((v, i) => `${n(xOf(i))},${n(yOf(v))}`).join(' ');
    const area = o.area && si === 0 && s.values.length > 1
      ? html`<polygon class="area s${si}" points="${`${n(xOf(0))},${n(f.top + plotH)} ${points} ${n(xOf(s.values.length - 1))},${n(f.top + plotH)}`}"/>` : '';
    const dots = s.values.map((v, i) => html`<circle class="dot s${si}" cx="${n(xOf(i))}" cy="${n(yOf(v))}" r="3"><title>${o.labels[i]} ${s.name}: ${o.format(v)}</title></circle>`);
    return html`${area}<polyline class="line s${si}" points="${points}"/>${dots}`;
  });
  const legend = o.series.length > 1
    ? html`<g aria-hidden="true">${o.series.map((s, si) => html`<rect class="key s${si}" x="${f.left + 10 + si * 110}" y="${f.top + 2}" width="10" height="10"/><text class="tick" x="${f.left + 24 + si * 110}" y="${f.top + 11}">${s.name}</text>`)}</g>`
    : '';
  return svg(f, o.label, html`${yAxis(f, top, tick)}${lines}${xLabels(f, o.labels, xOf, o.short ?? shortDay)}<line class="axis" x1="${f.left}" x2="${f.width - f.right}" y1="${f.top + plotH}" y2="${f.top + plotH}"/>${legend}`);
}

/** An ISO timestamp as MM-DD for axis labels. */
export function shortTime(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}T/.test(iso) ? iso.slice(5, 10) : iso;
}
