// The dashboard's only static files: one stylesheet and the record page's decryption script,
// served by the collector itself (the pages make no request anywhere else).
import { readFileSync } from 'node:fs';

const CSS = `
:root { color-scheme: light dark; --fg: #1d232b; --muted: #5d6773; --bg: #fff; --panel: #f4f6f8; --line: #d9dee4;
  --accent: #2b6cb0; --accent2: #c05621; --bad: #c53030; --ok: #2f855a; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ed; --muted: #9aa5b1; --bg: #15191e; --panel: #1e242b; --line: #333c46;
  --accent: #63a4ff; --accent2: #f6ad55; --bad: #fc8181; --ok: #68d391; } }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45; }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1.25rem; align-items: center; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header.top .brand { font-weight: 700; margin-right: .5rem; }
header.top nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
header.top nav a[aria-current] { font-weight: 700; text-decoration: none; }
header.top .who { margin-left: auto; display: flex; gap: .75rem; align-items: center; color: var(--muted); }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: .25rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; }
a { color: var(--accent); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .75rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; }
.card .label { color: var(--muted); font-size: .85rem; }
.card .value { font-size: 1.35rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.card.bad .value { color: var(--bad); }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 460px), 1fr)); gap: 1rem; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
caption { text-align: left; padding: .5rem .6rem; font-weight: 600; }
th, td { padding: .4rem .6rem; border-top: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.exports { font-size: .8rem; color: var(--muted); margin: .3rem 0 0; }
.empty { color: var(--muted); font-style: italic; }
.note { color: var(--muted); font-size: .9rem; }
.error { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
figure.chart { margin: .5rem 0; overflow-x: auto; }
figure.chart svg { width: 100%; max-width: 760px; min-width: 360px; height: auto; display: block; }
svg .bar { fill: var(--accent); }
svg .bar:hover, svg g:hover > .bar { fill: var(--accent2); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .tick, svg .value { fill: var(--muted); font-size: 13px; }
svg .value { fill: var(--fg); }
svg .line { fill: none; stroke-width: 2; }
svg .line.s0, svg .dot.s0, svg .key.s0 { stroke: var(--accent); }
svg .line.s1, svg .dot.s1, svg .key.s1 { stroke: var(--bad); }
svg .dot { fill: var(--bg); stroke-width: 1.5; }
svg .key.s0 { fill: var(--accent); } svg .key.s1 { fill: var(--bad); }
svg .area.s0 { fill: var(--accent); fill-opacity: .15; stroke: none; }
form.filters { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: .5rem .75rem; align-items: end; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .2rem; }
input, select, button { font: inherit; padding: .4rem .5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); min-width: 0; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.link { background: none; color: var(--accent); border: none; padding: 0; text-decoration: underline; }
form.inline { display: inline; }
form.stack { display: grid; gap: .75rem; max-width: 420px; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .75rem; overflow-x: auto; font-size: .85rem; white-space: pre-wrap; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.pager { margin: .75rem 0; }
@media (max-width: 560px) { main { padding: .6rem; } h1 { font-size: 1.2rem; } .card .value { font-size: 1.15rem; } }
`;

const RECORD_JS = readFileSync(new URL('./record-decrypt.js', import.meta.url), 'utf8');

/** The static files by path under /assets/. */
export const ASSETS: ReadonlyMap<string, { type: string; body: string }> = new Map([
  ['dashboard.css', { type: 'text/css; charset=utf-8', body: CSS }],
  ['record-decrypt.js', { type: 'text/javascript; charset=utf-8', body: RECORD_JS }],
]);
