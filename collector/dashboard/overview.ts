// GET / : the fleet at a glance: today and this month, 30-day trends, every agent.
import type { AgentRow, DailyRow, FleetOverview } from '../dashboard-types.ts';
import { columnChart, lineChart } from './charts.ts';
import { count, usd, when } from './format.ts';
import { html } from '../../proxy/admin/html.ts';
import { agentHref, cards, type Page } from './layout.ts';
import { renderTable, table, type Table } from './table.ts';

/** The days of a trend as a table (the numbers behind the charts). */
export function dailyTable(daily: DailyRow[]): Table<DailyRow> {
  return table<DailyRow>({
    name: 'daily',
    title: 'Per day',
    rows: daily,
    columns: [
      { key: 'day', label: 'Day', value: (r) => r.day },
      { key: 'calls', label: 'Calls', value: (r) => r.calls, cell: (r) => count(r.calls), numeric: true },
      { key: 'errors', label: 'Errors', value: (r) => r.errors, cell: (r) => count(r.errors), numeric: true },
      { key: 'inputTokens', label: 'Input tokens', value: (r) => r.inputTokens, cell: (r) => count(r.inputTokens), numeric: true },
      { key: 'outputTokens', label: 'Output tokens', value: (r) => r.outputTokens, cell: (r) => count(r.outputTokens), numeric: true },
      { key: 'costUsd', label: 'Cost', value: (r) => r.costUsd, cell: (r) => usd(r.costUsd), numeric: true },
    ],
  });
}

/** Cost per day and calls/errors per day, the two trend charts. */
export function dailyCharts(daily: DailyRow[], what: string): ReturnType<typeof html> {
  const labels = daily.map((d) => d.day);
  return html`<div class="grid2">
${columnChart({ label: `Cost per day, ${what}`, labels, values: daily.map((d) => d.costUsd), format: usd, tick: (v) => usd(v) })}
${lineChart({ label: `Calls and errors per day, ${what}`, labels, area: true, format: count, series: [{ name: 'calls', values: daily.map((d) => d.calls) }, { name: 'errors', values: daily.map((d) => d.errors) }] })}
</div>`;
}

/** The overview page from the data layer's summary. */
export function overviewPage(o: FleetOverview, url: URL): Page {
  const agents = table<AgentRow>({
    name: 'agents',
    title: 'Agents',
    rows: o.agentRows,
    empty: 'No agent has shipped records yet.',
    columns: [
      { key: 'agent', label: 'Agent', value: (r) => r.agent, cell: (r) => html`<a href="${agentHref(r.agent)}">${r.agent}</a>` },
      { key: 'version', label: 'Version', value: (r) => r.version },
      { key: 'calls', label: 'Calls (month)', value: (r) => r.calls, cell: (r) => count(r.calls), numeric: true },
      { key: 'errors', label: 'Errors (month)', value: (r) => r.errors, cell: (r) => count(r.errors), numeric: true },
      { key: 'costToday', label: 'Cost today', value: (r) => r.costToday, cell: (r) => usd(r.costToday), numeric: true },
      { key: 'costMonth', label: 'Cost this month', value: (r) => r.costMonth, cell: (r) => usd(r.costMonth), numeric: true },
      { key: 'violations', label: 'Violations', value: (r) => r.violations, cell: (r) => count(r.violations), numeric: true },
      { key: 'lastSeen', label: 'Last seen', value: (r) => r.lastSeen, cell: (r) => when(r.lastSeen) },
    ],
  });
  const daily = dailyTable(o.daily);
  const body = html`
<p class="note">As of ${when(o.now)}; "today" and "this month" are UTC.</p>
${cards([
  { label: 'Agents', value: count(o.agents) },
  { label: 'Calls today', value: count(o.callsToday) },
  { label: 'Errors today', value: count(o.errorsToday), bad: o.errorsToday > 0 },
  { label: 'Cost today', value: usd(o.costToday) },
  { label: 'Calls this month', value: count(o.callsMonth) },
  { label: 'Errors this month', value: count(o.errorsMonth), bad: o.errorsMonth > 0 },
  { label: 'Cost this month', value: usd(o.costMonth) },
  { label: 'Integrity alerts', value: count(o.alerts), href: '/alerts', bad: o.alerts > 0 },
])}
<h2>Last 30 days</h2>
${dailyCharts(o.daily, 'last 30 days')}
<h2>Agents</h2>
${renderTable(agents, url)}
<details><summary>The numbers per day</summary>${renderTable(daily, url)}</details>`;
  return { title: 'Fleet overview', section: 'overview', body, tables: [agents, daily] };
}
