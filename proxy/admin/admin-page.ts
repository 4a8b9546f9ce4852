// The admin listener's page (GET /): the sidecar's status, its policy (secrets redacted), the last
// calls and the pending escalations with Approve and Reject, for a person on the task's localhost (a
// port-forward or SSM session). Server-rendered, every value escaped by `html`; no external resource.
// The page refreshes by fetching itself and swapping its sections in. Decisions go through the
// existing admin API with the admin token pasted into the page (kept in sessionStorage only), so the
// page adds no new way to decide: a cross-site form cannot send the bearer header, and no CORS header
// lets another origin's script try.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Policy } from '../../policies/types.ts';
import { escalationJson } from '../escalation/store.ts';
import type { SidecarContext } from '../context.ts';
import { html, raw, type SafeHtml } from './html.ts';
import { redactPolicy } from './policy-redact.ts';
import type { CallSummary } from './recent-calls.ts';

export interface AdminPageView {
  /** What GET /status says (admin-server.ts `status`). */
  status: Record<string, unknown>;
  policy: Policy;
  loadedAt: Date;
  calls: readonly CallSummary[];
  escalations: readonly Record<string, unknown>[];
  /** Whether decisions can be made over the API at all (an admin token is configured). */
  decisionsEnabled: boolean;
}

/** The page's data, read from the running sidecar. */
export function adminPageView(ctx: SidecarContext, status: Record<string, unknown>, decisionsEnabled: boolean): AdminPageView {
  return {
    status, policy: ctx.runtime.policy, loadedAt: ctx.runtime.loadedAt, calls: ctx.recentCalls.list(),
    escalations: ctx.services.escalations.list({ state: 'pending', limit: 100 }).map(escalationJson), decisionsEnabled,
  };
}

/**
 * Sends the page with a fresh CSP nonce and headers that keep it from being framed, sniffed or cached;
 * `sectionsOnly` (GET /?part=sections, what the page's refresh fetches): just its sections, no style
 * or script for the browser to weigh against the page's nonce.
 */
export function sendAdminPage(res: ServerResponse, view: AdminPageView, sectionsOnly = false): void {
  const nonce = randomBytes(16).toString('base64');
  const body = (sectionsOnly ? renderSections(view) : renderAdminPage(view, nonce)).value;
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** The whole page. */
export function renderAdminPage(v: AdminPageView, nonce: string): SafeHtml {
  const agent = v.policy.agent;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Warden · ${agent.id}</title><style nonce="${nonce}">${raw(CSS)}</style></head>
<body><header><h1>Warden <span class="muted">${agent.id} ${agent.version}</span></h1>
<div class="token"><label for="admin-token">Admin token</label>
<input id="admin-token" type="password" autocomplete="off" spellcheck="false" placeholder="paste WARDEN_ADMIN_TOKEN to decide">
<span id="refresh-state" class="muted" aria-live="polite"></span></div>
<p id="action-result" role="status" aria-live="polite"></p></header>
<main>${renderSections(v)}</main>
<script nonce="${nonce}">${raw(SCRIPT)}</script></body></html>`;
}

/** The page's sections, in order. */
export function renderSections(v: AdminPageView): SafeHtml {
  return html`${statusSection(v.status)}${escalationsSection(v.escalations, v.decisionsEnabled)}${callsSection(v.calls)}${policySection(v.policy, v.loadedAt)}`;
}

function statusSection(s: Record<string, unknown>): SafeHtml {
  const state = String(s.state);
  const reasons = (s.reasons as string[] | undefined) ?? [];
  const audit = s.audit as Record<string, unknown> | undefined;
  const reload = s.lastReload as { ok: boolean; at: string } | undefined;
  return html`<section id="status" data-state="${state}"><h2>Status <span class="state state-${state}">${state}</span></h2>
${reasons.length ? html`<ul class="reasons">${reasons.map((r) => html`<li>${r}</li>`)}</ul>` : ''}
<dl>${pair('version', s.version)}${pair('uptime', duration(Number(s.uptimeSeconds)))}${pair('in flight', s.inFlight)}
${reload ? pair('last reload', `${reload.ok ? 'ok' : 'failed'} at ${reload.at}`) : ''}
${audit ? Object.entries(audit).map(([k, x]) => pair(`audit ${k}`, k === 'space' ? space(x as Record<string, unknown>) : typeof x === 'object' ? JSON.stringify(x) : x)) : pair('audit', 'off')}</dl></section>`;
}

function space(s: Record<string, unknown> | undefined): string {
  if (!s) return '—';
  const mib = (n: unknown) => (typeof n === 'number' ? `${(n / 1_048_576).toFixed(1)} MiB` : '?');
  return [`${String(s.level)}: ${mib(s.usedBytes)} used`, s.quotaBytes !== undefined && `quota ${mib(s.quotaBytes)}`, s.freeBytes !== undefined && `${mib(s.freeBytes)} free on the volume`, s.reason]
    .filter(Boolean).join(', ');
}

function policySection(p: Policy, loadedAt: Date): SafeHtml {
  return html`<section id="policy" data-key="${p.source.sha256}@${loadedAt.toISOString()}"><h2>Policy</h2>
<dl>${pair('file', p.source.file)}${pair('sha256', p.source.sha256)}${pair('agent', `${p.agent.id} ${p.agent.version}`)}
${pair('scopes', p.agent.scopes?.join(', ') || '—')}${pair('mode', p.mode)}${pair('loaded at', loadedAt.toISOString())}</dl>
<details><summary>Effective settings (secrets redacted)</summary><pre>${JSON.stringify(redactPolicy(p), null, 2)}</pre></details></section>`;
}

function callsSection(calls: readonly CallSummary[]): SafeHtml {
  const rows = calls.map((c) => html`<tr data-request-id="${c.request_id}" class="${c.status >= 400 || c.error ? 'bad' : ''}">
<td title="${c.ts}">${c.ts.slice(11, 19)}</td><td>${c.event}${c.tool ? html`<br><span class="muted">${c.tool}</span>` : ''}</td>
<td>${c.route}${c.endpoint ? html`<br><span class="muted">${c.endpoint}</span>` : ''}</td><td class="id">${c.session ?? ''}</td><td class="id">${c.task ?? ''}</td>
<td>${c.model_asked ?? ''}${c.model_served && c.model_served !== c.model_asked ? html`<br><span class="muted">→ ${c.model_served}</span>` : ''}</td>
<td>${c.status}${c.error ? html`<br><span class="muted">${c.error}</span>` : ''}</td><td class="num">${c.latency_ms}</td>
<td class="num">${c.input_tokens === undefined ? '' : `${c.input_tokens}/${c.output_tokens ?? 0}`}</td><td class="num">${c.cost_usd === undefined ? '' : `$${c.cost_usd.toFixed(6)}`}</td>
<td>${[...(c.violations ?? []), ...(c.actions ?? []), ...(c.decisions ?? [])].map((t) => html`<span class="tag">${t}</span> `)}</td></tr>`);
  return html`<section id="recent-calls"><h2>Recent calls <span class="muted">${calls.length}</span></h2>
${calls.length ? html`<div class="scroll"><table><thead><tr><th>time</th><th>event</th><th>route</th><th>session</th><th>task</th><th>model</th><th>status</th><th>ms</th><th>tokens in/out</th><th>cost</th><th>violations, actions, decisions</th></tr></thead>
<tbody>${rows}</tbody></table></div>` : html`<p class="muted">No calls yet.</p>`}</section>`;
}

function escalationsSection(list: readonly Record<string, unknown>[], decisionsEnabled: boolean): SafeHtml {
  const rows = list.map((e) => {
    const candidates = e.candidates as unknown[] | undefined;
    return html`<article class="esc" data-escalation="${e.id}"><h3>${e.kind === 'tool_call' ? `tool ${String(e.tool)}` : 'model answer'} <code>${e.id}</code></h3>
<p class="reason">${e.reason}</p><dl>${pair('kind', e.kind)}${pair('deadline', e.deadline)}${pair('session', e.session ?? '—')}${pair('task', e.task ?? '—')}${pair('request', e.request_id)}</dl>
<pre>${JSON.stringify(e.kind === 'tool_call' ? e.args : candidates, null, 2)}</pre>
<div class="decide">${candidates && candidates.length > 1 ? html`<label>answer <select data-choice>${candidates.map((_, i) => html`<option value="${i}">candidate ${i}</option>`)}</select></label>` : ''}
<input data-note type="text" maxlength="500" placeholder="note (optional)" aria-label="note for ${e.id}">
<button type="button" data-action="approve" data-id="${e.id}">Approve</button><button type="button" data-action="reject" data-id="${e.id}">Reject</button></div></article>`;
  });
  return html`<section id="escalations"><h2>Pending escalations <span class="muted" id="escalation-count">${list.length}</span></h2>
${decisionsEnabled ? '' : html`<p class="warn">No admin token is configured on this sidecar: decisions over the API are refused (set WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE, or use <code>warden escalations … --data-dir</code>).</p>`}
<div id="escalation-list">${rows}</div>${list.length ? '' : html`<p class="muted" id="no-escalations">Nothing waits for a person.</p>`}</section>`;
}

function pair(label: string, value: unknown): SafeHtml {
  return html`<dt>${label}</dt><dd>${value === undefined || value === null ? '—' : String(value)}</dd>`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  const d = Math.floor(seconds / 86_400), h = Math.floor((seconds % 86_400) / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(' ');
}

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--mut:#667;--line:#d8dde3;--card:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mut:#8b949e;--line:#30363d;--card:#161b22}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:1200px;margin:0 auto;padding:0 12px}header{padding-top:8px}h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.1em;margin:0 0 .5em}h3{font-size:1em;margin:0 0 .3em}
section{border:1px solid var(--line);border-radius:6px;padding:10px 12px;margin:10px 0}
.muted{color:var(--mut);font-weight:normal}.token{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
input,select,button{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:4px;background:var(--bg);color:var(--fg)}
#admin-token{flex:1 1 220px;max-width:420px}button{cursor:pointer;background:var(--card)}button[data-action=approve]{border-color:var(--ok)}button[data-action=reject]{border-color:var(--bad)}
button:disabled{opacity:.5;cursor:wait}#action-result{min-height:1.4em;margin:6px 0}#action-result.ok{color:var(--ok)}#action-result.error{color:var(--bad);font-weight:600}
.state{padding:1px 8px;border-radius:10px;color:#fff;font-size:.85em}.state-green{background:var(--ok)}.state-yellow{background:var(--warn)}.state-red{background:var(--bad)}
.reasons{margin:.3em 0 .6em;padding-left:1.2em}.warn{color:var(--warn)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:.3em 0}dt{color:var(--mut)}dd{margin:0;overflow-wrap:anywhere}
pre{background:var(--card);padding:8px;border-radius:4px;overflow:auto;max-height:420px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
td.num{text-align:right;white-space:nowrap}td.id{max-width:14em;overflow-wrap:anywhere}tr.bad td{color:var(--bad)}
.tag{display:inline-block;background:var(--card);border:1px solid var(--line);border-radius:3px;padding:0 4px;margin:1px 0;font-size:12px}
.esc{border-top:1px solid var(--line);padding:8px 0}.esc:first-child{border-top:0}.reason{margin:.2em 0}.decide{display:flex;flex-wrap:wrap;gap:6px;align-items:center}.decide input{flex:1 1 180px}
`;

// Constant code: it reads no server data, so nothing here needs escaping. It refreshes by fetching
// this page and swapping sections in (DOMParser runs no script), keeping escalation rows a person
// may be typing a note in.
const SCRIPT = `
(() => {
  'use strict';
  const KEY = 'warden-admin-token';
  const $ = (id) => document.getElementById(id);
  const token = $('admin-token');
  const result = $('action-result');
  try { token.value = sessionStorage.getItem(KEY) || ''; } catch {}
  token.addEventListener('input', () => { try { sessionStorage.setItem(KEY, token.value.trim()); } catch {} });
  const say = (text, ok) => { result.textContent = text; result.className = ok ? 'ok' : 'error'; };
  let busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch('/?part=sections', { cache: 'no-store', headers: { accept: 'text/html' } });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      for (const id of ['status', 'recent-calls']) swap(doc, id);
      const policy = doc.getElementById('policy');
      if (policy && policy.dataset.key !== $('policy').dataset.key) swap(doc, 'policy');
      mergeEscalations(doc);
      $('refresh-state').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      $('refresh-state').textContent = 'refresh failed: ' + err.message;
    } finally {
      busy = false;
    }
  }

  function swap(doc, id) {
    const next = doc.getElementById(id);
    if (next) $(id).replaceWith(document.importNode(next, true));
  }

  function mergeEscalations(doc) {
    const next = doc.getElementById('escalations');
    if (!next) return;
    const list = $('escalation-list');
    const keep = new Map([...list.querySelectorAll('[data-escalation]')].map((el) => [el.dataset.escalation, el]));
    const rows = [...next.querySelectorAll('#escalation-list > [data-escalation]')].map((el) => keep.get(el.dataset.escalation) || document.importNode(el, true));
    list.replaceChildren(...rows);
    for (const sel of ['#escalation-count', '#no-escalations', '.warn']) {
      const mine = $('escalations').querySelector(sel), theirs = next.querySelector(sel);
      if (mine && theirs) mine.replaceWith(document.importNode(theirs, true));
      else if (mine) mine.remove();
      else if (theirs) $('escalations').append(document.importNode(theirs, true));
    }
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest && event.target.closest('button[data-action]');
    if (!button) return;
    const row = button.closest('[data-escalation]');
    const id = row.dataset.escalation, action = button.dataset.action;
    const secret = token.value.trim();
    if (!secret) { say('Paste the admin token first: decisions need it.', false); token.focus(); return; }
    const body = { by: 'admin page' };
    const note = row.querySelector('[data-note]').value.trim();
    if (note) body.note = note;
    const choice = row.querySelector('[data-choice]');
    if (action === 'approve' && choice) body.choice = Number(choice.value);
    for (const b of row.querySelectorAll('button')) b.disabled = true;
    try {
      const res = await fetch('/escalations/' + encodeURIComponent(id) + '/' + action, {
        method: 'POST', cache: 'no-store', credentials: 'omit',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + secret },
        body: JSON.stringify(body),
      });
      let data = {};
      try { data = await res.json(); } catch {}
      if (res.ok) {
        say((action === 'approve' ? 'Approved ' : 'Rejected ') + id + '.', true);
        row.remove();
      } else {
        const msg = (data.error && data.error.message) || res.statusText;
        const code = data.error && data.error.code ? ' (' + data.error.code + ')' : '';
        const hint = res.status === 401 ? 'Admin token refused: ' : res.status === 403 ? 'Decisions are not allowed on this sidecar: ' : 'Failed: ';
        say(hint + res.status + ' ' + msg + code, false);
      }
    } catch (err) {
      say('Request failed: ' + err.message, false);
    } finally {
      for (const b of row.querySelectorAll('button')) b.disabled = false;
      await refresh();
    }
  });

  setInterval(() => { if (!document.hidden) refresh(); }, 5000);
})();
`;
