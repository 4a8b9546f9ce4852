// GET /agents/{id}?from&to : one agent over a range (default the last 30 days): what it cost and on
// what, how fast it answered, what it was stopped for, whether it drifted, whom it asked.
import type { AgentDetail, CostRow, DriftEvent, EscalationRow, KindCount, TrustPoint } from '../dashboard-types.ts';
import { barChart, lineChart, shortTime } from './charts.ts';
import { count, ms, usd, when } from './format.ts';
import { html, type SafeHtml } from '../../proxy/admin/html.ts';
import { cards, recordHref, type Page } from './layout.ts';
import { dailyCharts, dailyTable } from './overview.ts';
import { rangeDays } from './range.ts';
import { renderTable, table, type Column, type Table } from './table.ts';

function costTable(name: string, title: string, keyLabel: string, rows: CostRow[]): Table<CostRow> {
  return table<CostRow>({
    name,
    title,
    rows,
    columns: [
      { key: 'key', label: keyLabel, value: (r) => r.key },
      { key: 'calls', label: 'Calls', value: (r) => r.calls, cell: (r) => count(r.calls), numeric: true },
      { key: 'inputTokens', label: 'Input tokens', value: (r) => r.inputTokens, cell: (r) => count(r.inputTokens), numeric: true },
      { key: 'outputTokens', label: 'Output tokens', value: (r) => r.outputTokens, cell: (r) => count(r.outputTokens), numeric: true },
      { key: 'costUsd', label: 'Cost', value: (r) => r.costUsd, cell: (r) => usd(r.costUsd), numeric: true },
    ],
  });
}

function kindTable(name: string, title: string, rows: KindCount[], empty: string): Table<KindCount> {
  return table<KindCount>({
    name,
    title,
    rows,
    empty,
    columns: [
      { key: 'kind', label: 'Kind', value: (r) => r.kind },
      { key: 'tool', label: 'Tool', value: (r) => r.tool },
      { key: 'count', label: 'Count', value: (r) => r.count, cell: (r) => count(r.count), numeric: true },
    ],
  });
}

interface Located {
  logId: string;
  seq: number;
  ts: string;
}

function recordLink(r: Located): SafeHtml {
  return html`<a href="${recordHref(r.logId, r.seq)}">${when(r.ts)}</a>`;
}

/** A row's place in the audit log: when (linked to the record), then which log and seq. */
function whenColumn<T extends Located>(): Column<T> {
  return { key: 'ts', label: 'When', value: (r) => r.ts, cell: recordLink };
}

function whereColumns<T extends Located>(): Column<T>[] {
  return [
    { key: 'logId', label: 'Log', value: (r) => r.logId },
    { key: 'seq', label: 'Seq', value: (r) => r.seq, numeric: true },
  ];
}

/** The agent page from the data layer's detail. */
export function agentPage(d: AgentDetail, url: URL): Page {
  const tasks = costTable('tasks', 'Cost per task', 'Task', d.costByTask);
  const models = costTable('models', 'Cost per model', 'Model', d.costByModel);
  const violations = kindTable('violations', 'Violations by kind', d.violations, 'No violations in this range.');
  const hallucinations = kindTable('hallucinations', 'Hallucination flags', d.hallucinations, 'No hallucination flags in this range.');
  const outcomes = kindTable('escalation-outcomes', 'Escalations by outcome', d.escalationOutcomes, 'No escalations in this range.');
  const drift = table<DriftEvent>({
    name: 'drift',
    title: 'Drift events',
    rows: d.drift,
    empty: 'No drift in this range.',
    columns: [
      whenColumn(),
      { key: 'kind', label: 'Kind', value: (r) => r.kind },
      { key: 'summary', label: 'What moved', value: (r) => r.summary },
      ...whereColumns(),
    ],
  });
  const escalations = table<EscalationRow>({
    name: 'escalations',
    title: 'Escalations',
    rows: d.escalations,
    empty: 'No escalations in this range.',
    columns: [
      whenColumn(),
      { key: 'id', label: 'Id', value: (r) => r.id },
      { key: 'kind', label: 'Kind', value: (r) => r.kind },
      { key: 'tool', label: 'Tool', value: (r) => r.tool },
      { key: 'outcome', label: 'Outcome', value: (r) => r.outcome, cell: (r) => html`<span class="${r.outcome === 'approved' ? 'ok' : r.outcome === 'rejected' || r.outcome === 'expired' ? 'bad' : ''}">${r.outcome}</span>` },
      { key: 'by', label: 'By', value: (r) => r.by },
      { key: 'waitedMs', label: 'Waited', value: (r) => r.waitedMs, cell: (r) => (r.waitedMs === undefined ? '' : ms(r.waitedMs)), numeric: true },
      { key: 'task', label: 'Task', value: (r) => r.task },
      ...whereColumns(),
    ],
  });
  const trust = table<TrustPoint>({
    name: 'trust',
    title: 'Trust score history',
    rows: d.trust,
    empty: 'No trust scores in this range.',
    columns: [
      { key: 'ts', label: 'When', value: (r) => r.ts, cell: (r) => when(r.ts) },
      { key: 'score', label: 'Score', value: (r) => r.score, cell: (r) => r.score.toFixed(3), numeric: true },
    ],
  });
  const daily = dailyTable(d.daily);
  const { from, to } = rangeDays(d.range);
  const body = html`
<form class="filters" method="get" action="${url.pathname}">
<label>From (UTC day) <input type="date" name="from" value="${from}"></label>
<label>To (UTC day) <input type="date" name="to" value="${to}"></label>
<button type="submit">Show</button>
</form>
<p class="note">${when(d.range.from)} to ${when(d.range.to)}${d.versions.length ? html`; versions seen: ${d.versions.join(', ')}` : ''}.</p>
${cards([
  { label: 'Calls', value: count(d.calls) },
  { label: 'Errors', value: count(d.errors), bad: d.errors > 0 },
  { label: 'Cost', value: usd(d.costUsd) },
  { label: 'Input tokens', value: count(d.inputTokens) },
  { label: 'Output tokens', value: count(d.outputTokens) },
  { label: 'Latency p50', value: ms(d.latency.p50) },
  { label: 'Latency p90', value: ms(d.latency.p90) },
  { label: 'Latency p99', value: ms(d.latency.p99) },
])}
<p class="note">Latency over ${count(d.latency.count)} calls; slowest ${ms(d.latency.max)}.</p>
<h2>Per day</h2>
${dailyCharts(d.daily, d.agent)}
<details><summary>The numbers per day</summary>${renderTable(daily, url)}</details>
<div class="grid2">
<section><h2>Cost per task</h2>${barChart({ label: `Cost per task, ${d.agent}`, rows: d.costByTask.map((r) => ({ key: r.key, value: r.costUsd })), format: usd })}${renderTable(tasks, url)}</section>
<section><h2>Cost per model</h2>${barChart({ label: `Cost per model, ${d.agent}`, rows: d.costByModel.map((r) => ({ key: r.key, value: r.costUsd })), format: usd })}${renderTable(models, url)}</section>
</div>
<h2>Trust score</h2>
${d.trust.length ? lineChart({ label: `Trust score history, ${d.agent}`, labels: d.trust.map((p) => p.ts), short: shortTime, max: 1, tick: (v) => v.toFixed(2), format: (v) => v.toFixed(3), series: [{ name: 'trust', values: d.trust.map((p) => p.score) }] }) : ''}
<details><summary>Trust scores</summary>${renderTable(trust, url)}</details>
<div class="grid2">
<section><h2>Violations</h2>${renderTable(violations, url)}</section>
<section><h2>Hallucination flags</h2>${renderTable(hallucinations, url)}</section>
</div>
<h2>Drift</h2>
${renderTable(drift, url)}
<h2>Escalations</h2>
${d.escalationOutcomes.length ? barChart({ label: `Escalations by outcome, ${d.agent}`, rows: d.escalationOutcomes.map((r) => ({ key: r.kind, value: r.count })), format: count }) : ''}
${renderTable(outcomes, url)}
${renderTable(escalations, url)}`;
  return { title: `Agent ${d.agent}`, section: 'agent', body, tables: [tasks, models, daily, trust, violations, hallucinations, drift, escalations, outcomes] };
}
