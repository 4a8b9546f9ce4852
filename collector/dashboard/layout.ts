// The page shell every dashboard page shares: head (viewport, stylesheet), the navigation, who is
// signed in with a sign-out button, and the small pieces pages repeat (summary cards, sections).
import { html, type SafeHtml } from '../../proxy/admin/html.ts';
import type { Table } from './table.ts';

export type Section = 'overview' | 'records' | 'alerts' | 'prices' | 'agent' | 'none';

export interface PageContext {
  /** The fleet signed in; absent on the sign-in page. */
  fleet?: string;
  /** Signed in by cookie (so a sign-out button makes sense), not by bearer token. */
  cookie?: boolean;
}

const NAV: [Section, string, string][] = [['overview', '/', 'Overview'], ['records', '/records', 'Records'], ['alerts', '/alerts', 'Alerts'], ['prices', '/prices', 'Prices']];

/** A whole HTML document. */
export function layout(title: string, section: Section, ctx: PageContext, body: SafeHtml, scripts: string[] = []): SafeHtml {
  const nav = ctx.fleet
    ? html`<nav aria-label="Dashboard">${NAV.map(([s, href, label]) => html`<a href="${href}"${s === section ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
<div class="who"><span>Fleet: ${ctx.fleet}</span>${ctx.cookie ? html`<form class="inline" method="post" action="/logout"><button class="link" type="submit">Sign out</button></form>` : ''}</div>`
    : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Warden collector</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dashboard.css">
</head>
<body>
<header class="top"><span class="brand">Warden</span>${nav}</header>
<main>
<h1>${title}</h1>
${body}
</main>
${scripts.map((src) => html`<script type="module" src="${src}"></script>`)}
</body>
</html>
`;
}

/** A row of headline numbers. */
export function cards(items: { label: string; value: SafeHtml | string; href?: string; bad?: boolean }[]): SafeHtml {
  return html`<div class="cards">${items.map((c) => html`<div class="card${c.bad ? ' bad' : ''}"><div class="label">${c.label}</div><div class="value">${c.href ? html`<a href="${c.href}">${c.value}</a>` : c.value}</div></div>`)}</div>`;
}

/** A page that says what went wrong (not found, bad input). */
export function errorPage(title: string, message: string, ctx: PageContext): SafeHtml {
  return layout(title, 'none', ctx, html`<p class="error">${message}</p><p><a href="/">Back to the overview</a></p>`);
}

/** A page that could not be shown, and why (rendered by errorPage). */
export interface Problem {
  status: number;
  title: string;
  message: string;
}

/** What a page handler produces: the body to lay out, and the tables it can export. */
export interface Page {
  title: string;
  section: Section;
  body: SafeHtml;
  tables: Table[];
  scripts?: string[];
  /** The HTTP status (200 unless a page says otherwise). */
  status?: number;
}

/** The link to an agent's page. */
export function agentHref(agent: string): string {
  return `/agents/${encodeURIComponent(agent)}`;
}

/** The link to one record's page. */
export function recordHref(logId: string, seq: number): string {
  return `/records/${encodeURIComponent(logId)}/${seq}`;
}
