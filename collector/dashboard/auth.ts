// Who may see the dashboard: the fleet tokens that already guard the API. A browser signs in once
// with its token and gets a stateless session cookie (fleet and expiry, HMAC-SHA256 keyed by that
// fleet's token), so replicas share no session state and revoking a token ends its sessions.
// Scripts and curl may send "Authorization: Bearer <token>" instead.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { html, type SafeHtml } from '../../proxy/admin/html.ts';
import { layout } from './layout.ts';

export const SESSION_COOKIE = 'warden_session';
export const SESSION_TTL_MS = 12 * 60 * 60 * 1_000;

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The fleet a token belongs to, compared in constant time. */
export function fleetOfToken(given: string, tokens: ReadonlyMap<string, string>): string | undefined {
  const g = Buffer.from(given);
  let found: string | undefined;
  for (const [token, fleet] of tokens) if (equal(Buffer.from(token), g)) found = fleet;
  return found;
}

/** The fleet of a valid "Authorization: Bearer" header. */
export function fleetOfBearer(req: IncomingMessage, tokens: ReadonlyMap<string, string>): string | undefined {
  const m = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
  return m ? fleetOfToken(m[1], tokens) : undefined;
}

function mac(token: string, payload: string): Buffer {
  return createHmac('sha256', token).update(`warden-session\u0000${payload}`).digest();
}

/** A cookie value for `fleet` signed with one of its tokens, valid until `expiresAt` (ms). */
export function signSession(fleet: string, token: string, expiresAt: number): string {
  const payload = Buffer.from(JSON.stringify({ f: fleet, e: expiresAt })).toString('base64url');
  return `${payload}.${mac(token, payload).toString('base64url')}`;
}

/** The fleet of an unexpired session signed by any of that fleet's current tokens. */
export function verifySession(value: string, tokens: ReadonlyMap<string, string>, now: number): string | undefined {
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = value.slice(0, dot);
  const sig = Buffer.from(value.slice(dot + 1), 'base64url');
  let claims: { f?: unknown; e?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims?.f !== 'string' || typeof claims.e !== 'number' || claims.e <= now) return undefined;
  let ok = false;
  for (const [token, fleet] of tokens) if (fleet === claims.f && equal(mac(token, payload), sig)) ok = true;
  return ok ? claims.f : undefined;
}

/** Cookies of a request by name (the first of each name). */
export function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/** Whether the browser reached us over https (directly, or through a proxy that says so). */
export function isHttps(req: IncomingMessage): boolean {
  const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0].trim().toLowerCase();
  return proto === 'https' || (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** The Set-Cookie header for a session (or, with value '' and maxAge 0, for clearing it). */
export function sessionCookie(req: IncomingMessage, value: string, maxAgeS: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${isHttps(req) ? '; Secure' : ''}`;
}

/**
 * Who is asking: a bearer token, or a session cookie. `cookie` says which, so pages offer sign-out
 * only where there is something to sign out of.
 */
export function authenticate(req: IncomingMessage, tokens: ReadonlyMap<string, string>, now: number): { fleet: string; cookie: boolean } | undefined {
  const bearer = fleetOfBearer(req, tokens);
  if (bearer !== undefined) return { fleet: bearer, cookie: false };
  const value = cookies(req).get(SESSION_COOKIE);
  const fleet = value ? verifySession(value, tokens, now) : undefined;
  return fleet === undefined ? undefined : { fleet, cookie: true };
}

/**
 * `next` if it is a path on this site, else "/": never another origin ("//evil", "/\\evil",
 * "https://…"), so the sign-in form cannot be used to send someone elsewhere.
 */
export function localPath(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\u0000-\u001f\\]/.test(next)) return '/';
  try {
    const u = new URL(next, 'http://collector.invalid');
    // Checked again after parsing: removing dot segments can make one ("/.//evil" → "//evil").
    if (u.origin !== 'http://collector.invalid' || u.pathname.startsWith('//')) return '/';
    return `${u.pathname}${u.search}`;
  } catch {
    return '/';
  }
}

/**
 * CSRF defence for form posts, beside SameSite=Strict. A browser's Sec-Fetch-Site, when sent, must
 * say same-origin; its Origin, when sent, must name this host or the X-Forwarded-Host (and https when the request came over
 * https). Origin "null" is what browsers send for our own forms under Referrer-Policy: no-referrer,
 * and also what a sandboxed frame sends, so it passes only with Sec-Fetch-Site: same-origin.
 * Clients that send neither (curl, scripts) have no ambient cookie to abuse.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (origin === 'null') return site === 'same-origin';
  try {
    const u = new URL(origin);
    // Behind a reverse proxy that rewrites Host, the browser's host arrives as X-Forwarded-Host: a
    // cross-site form cannot set that header (nor can script without a CORS grant, which we never give).
    const forwarded = String(req.headers['x-forwarded-host'] ?? '').split(',')[0].trim();
    if (u.host !== req.headers.host && u.host !== forwarded) return false;
    return isHttps(req) ? u.protocol === 'https:' : u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** The sign-in page. */
export function loginPage(next: string, error?: string): SafeHtml {
  return layout('Sign in', 'none', {}, html`
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form class="stack" method="post" action="/login">
<input type="hidden" name="next" value="${next}">
<label>Fleet token <input type="password" name="token" required autocomplete="current-password" autofocus></label>
<p><button type="submit">Sign in</button></p>
</form>
<p class="note">Use the fleet token the sidecars ship with (from the collector's --tokens file or WARDEN_COLLECTOR_TOKENS). The session lasts 12 hours and ends when that token is removed.</p>`);
}
