// The collector's dashboard pages: escaping, charts, CSV, sign-in and CSRF, and the browser-side
// decryption of protected record fields, checked against what field-protection.ts writes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { once } from 'node:events';
import { connect } from 'node:net';
import Database from 'better-sqlite3';
import { request } from 'undici';
import type { AgentDetail, FleetOverview } from '../../collector/dashboard-types.ts';
import { agentPage } from '../../collector/dashboard/agent.ts';
import { localPath, sameOrigin, signSession, verifySession } from '../../collector/dashboard/auth.ts';
import { barChart, columnChart, lineChart } from '../../collector/dashboard/charts.ts';
import { csvField, toCsv } from '../../collector/dashboard/export.ts';
import { html, raw } from '../../proxy/admin/html.ts';
import { layout } from '../../collector/dashboard/layout.ts';
import { overviewPage } from '../../collector/dashboard/overview.ts';
import { rangeOf } from '../../collector/dashboard/range.ts';
import { decryptFields, parseKeys } from '../../collector/dashboard/record-decrypt.js';
import { recordPage } from '../../collector/dashboard/records.ts';
import { table } from '../../collector/dashboard/table.ts';
import { openAuditLog } from '../../proxy/audit/audit-log.ts';
import { decryptRecord, protectRecord, type Keyring } from '../../proxy/audit/field-protection.ts';
import { startShipper, type ShipperEvent } from '../../proxy/audit/shipper.ts';
import { loadSigningKey } from '../../proxy/audit/signing.ts';
import { ARTIFACTS, launchBrowser } from '../helpers/browser.ts';
import { startCollector, TOKEN, type TestCollector } from '../helpers/collector.ts';
import { tempDataDir, waitFor } from '../helpers/warden.ts';

const HOSTILE = '<script>alert("x")</script>';

function days(n: number, from = '2025-03-01'): FleetOverview['daily'] {
  return Array.from({ length: n }, (_, i) => ({
    day: new Date(Date.parse(from) + i * 86_400_000).toISOString().slice(0, 10),
    calls: 10 * i, errors: i % 3, inputTokens: 1000 * i, outputTokens: 100 * i, costUsd: 0.25 * i,
  }));
}

const OVERVIEW: FleetOverview = {
  now: '2025-03-30T12:00:00.000Z', agents: 2, callsToday: 290, errorsToday: 2, costToday: 7.25, callsMonth: 4350, errorsMonth: 29, costMonth: 108.75,
  daily: days(30),
  agentRows: [
    { agent: HOSTILE, version: '1.0', calls: 10, errors: 1, costToday: 1.5, costMonth: 12, violations: 3, lastSeen: '2025-03-30T11:00:00.000Z' },
    { agent: 'billing-bot', calls: 4340, errors: 28, costToday: 5.75, costMonth: 96.75, violations: 0, lastSeen: '2025-03-30T11:59:00.000Z' },
  ],
  alerts: 4,
};

const DETAIL: AgentDetail = {
  agent: HOSTILE, range: { from: '2025-03-01T00:00:00.000Z', to: '2025-03-31T00:00:00.000Z' }, versions: ['1.0', '1.1'],
  calls: 120, errors: 3, costUsd: 4.5, inputTokens: 50_000, outputTokens: 7_000, daily: days(30),
  costByTask: [{ key: 'refund', calls: 80, inputTokens: 30_000, outputTokens: 5_000, costUsd: 3.25 }, { key: `=HYPERLINK("http://evil")`, calls: 40, inputTokens: 20_000, outputTokens: 2_000, costUsd: 1.25 }],
  costByModel: [{ key: 'gpt-4o-mini', calls: 120, inputTokens: 50_000, outputTokens: 7_000, costUsd: 4.5 }],
  latency: { count: 120, p50: 420, p90: 1_300, p99: 4_800, max: 9_000 },
  violations: [{ kind: 'tool_not_allowed', tool: 'shell', count: 2 }], hallucinations: [{ kind: 'unknown_tool', tool: 'sql', count: 1 }],
  drift: [{ ts: '2025-03-10T00:00:00.000Z', kind: 'pact', summary: 'refusals down 30%', logId: 'log-1', seq: 44 }],
  trust: [{ ts: '2025-03-01T00:00:00.000Z', score: 0.91 }, { ts: '2025-03-15T00:00:00.000Z', score: 0.84 }, { ts: '2025-03-29T00:00:00.000Z', score: 0.88 }],
  escalations: [{ ts: '2025-03-12T09:00:00.000Z', id: 'esc-1', kind: 'approval', tool: 'refund', outcome: 'approved', by: 'ana', waitedMs: 42_000, logId: 'log-1', seq: 50 }],
  escalationOutcomes: [{ kind: 'approved', count: 1 }],
};

const URL_OF = (path: string) => new URL(path, 'http://collector.test');

describe('rendering', () => {
  test('html`` escapes every interpolation; raw() and nested templates pass through', () => {
    assert.equal(html`<p title="${'"x" & \'y\''}">${HOSTILE}</p>`.value, '<p title="&quot;x&quot; &amp; &#39;y&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>');
    assert.equal(html`<b>${raw('<i>ok</i>')}${html`<u>${'<'}</u>`}${[1, '<', undefined, null, false]}</b>`.value, '<b><i>ok</i><u>&lt;</u>1&lt;</b>');
  });

  test('a hostile agent name is text everywhere on the overview and the agent page', () => {
    for (const page of [overviewPage(OVERVIEW, URL_OF('/')), agentPage(DETAIL, URL_OF('/agents/x'))]) {
      const doc = layout(page.title, page.section, { fleet: '<b>fleet</b>' }, page.body).value;
      assert.ok(!doc.includes('<script>alert'), 'the name is escaped');
      assert.ok(!doc.includes('<b>fleet</b>'));
      assert.ok(doc.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
      assert.ok(!/<script(?![^>]*type="module" src="\/assets\/)/.test(doc), 'no inline script');
    }
    const overview = overviewPage(OVERVIEW, URL_OF('/')).body.value;
    assert.ok(overview.includes(`href="/agents/${encodeURIComponent(HOSTILE).replace(/'/g, '&#39;')}"`), 'the agent link is URL-encoded');
    assert.ok(overview.includes('href="/alerts"'), 'the alert count links to /alerts');
    assert.ok(overview.includes('href="/?format=csv&amp;table=agents"'), 'the table has a CSV export link');
    assert.ok(overview.includes('href="/?format=json&amp;table=agents"'), 'and a JSON one');
  });

  test('the agent page shows latency percentiles, every table, and a range form', () => {
    const page = agentPage(DETAIL, URL_OF('/agents/a?from=2025-03-01&to=2025-03-30'));
    const text = page.body.value;
    for (const s of ['420 ms', '1.3 s', '4.8 s', 'tool_not_allowed', 'unknown_tool', 'refusals down 30%', 'approved', '42 s', 'Trust score history', 'value="2025-03-01"', 'value="2025-03-30"']) {
      assert.ok(text.includes(s), s);
    }
    assert.deepEqual(page.tables.map((t) => t.name).sort(), ['daily', 'drift', 'escalation-outcomes', 'escalations', 'hallucinations', 'models', 'tasks', 'trust', 'violations']);
  });

  test('a record page escapes the body, and embeds it for the browser only when a field is encrypted', () => {
    const row = { logId: 'log-1', seq: 3, ts: '2025-03-01T00:00:00.000Z', event: 'model_call', agent: HOSTILE, verified: true };
    const plain = recordPage(row, JSON.stringify({ text: `</pre>${HOSTILE}` }));
    assert.ok(!plain.body.value.includes('<script'));
    assert.deepEqual(plain.scripts, []);
    const enc = recordPage(row, JSON.stringify({ log_id: 'log-1', seq: 3, note: '</script><script>alert(1)</script>', text: { $enc: 'aes-256-gcm', kid: 'k', iv: 'a', ct: 'b', tag: 'c' } }));
    assert.deepEqual(enc.scripts, ['/assets/record-decrypt.js']);
    assert.equal(enc.body.value.match(/<\/script>/g)?.length, 1, 'the data block cannot be closed from inside');
    assert.ok(enc.body.value.includes('id="key-input"'));
  });

  test('ranges: UTC days (to counts whole), ISO times, the 30-day default, and nonsense refused', () => {
    const now = new Date('2025-03-30T12:00:00.000Z');
    assert.deepEqual(rangeOf(URL_OF('/?from=2025-03-01&to=2025-03-31'), now), { from: '2025-03-01T00:00:00.000Z', to: '2025-04-01T00:00:00.000Z' });
    assert.deepEqual(rangeOf(URL_OF('/'), now), { from: '2025-02-28T12:00:00.000Z', to: '2025-03-30T12:00:00.000Z' });
    assert.equal(rangeOf(URL_OF('/?from=yesterday'), now), undefined);
    assert.equal(rangeOf(URL_OF('/?from=2025-03-05&to=2025-03-01'), now), undefined);
    // ISO 8601 only, and canonical: an offset is applied, a time without one (whose zone?) or a day that does not exist is refused.
    assert.deepEqual(rangeOf(URL_OF(`/?from=${encodeURIComponent('2025-03-01T01:30:00+01:00')}&to=2025-03-02T00:00Z`), now), { from: '2025-03-01T00:30:00.000Z', to: '2025-03-02T00:00:00.000Z' });
    for (const bad of ['from=2025-02-30', 'from=2025-03-01T10:00', 'from=March%201%2C%202025', 'to=1740787200']) assert.equal(rangeOf(URL_OF(`/?${bad}`), now), undefined, bad);
    // Years before 100 are years, not 1900-1999.
    assert.deepEqual(rangeOf(URL_OF('/?from=0099-12-31&to=0100-01-01'), now), { from: '0099-12-31T00:00:00.000Z', to: '0100-01-02T00:00:00.000Z' });
  });
});

describe('charts', () => {
  test('deterministic, accessible, and every value in a tooltip', () => {
    const opts = { label: `Cost per day ${HOSTILE}`, labels: ['2025-03-01', '2025-03-02', '2025-03-03'], values: [0.5, 2.25, 0], format: (v: number) => `$${v}` };
    const a = columnChart(opts).value;
    assert.equal(a, columnChart(opts).value);
    assert.match(a, /<svg viewBox="0 0 640 240" role="img" aria-label="Cost per day &lt;script&gt;/);
    for (const t of ['<title>2025-03-01: $0.5</title>', '<title>2025-03-02: $2.25</title>', '<title>2025-03-03: $0</title>']) assert.ok(a.includes(t), t);
    assert.ok(a.includes('>03-01<'), 'x axis labels');
    assert.ok(a.includes('>2.5<'), 'y axis tops out at a round number');
    assert.ok(!a.includes('NaN'));
  });

  test('bar chart sorts, truncates long names, lumps the tail into "other"', () => {
    const rows = Array.from({ length: 14 }, (_, i) => ({ key: `task-${String(i).padStart(2, '0')}${i === 13 ? 'x'.repeat(40) : ''}`, value: i + 1 }));
    const svg = barChart({ label: 'Cost per task', rows, format: (v) => String(v) }).value;
    assert.equal(svg, barChart({ label: 'Cost per task', rows: [...rows].reverse(), format: (v) => String(v) }).value);
    assert.ok(svg.indexOf('task-13') < svg.indexOf('task-12'), 'largest first');
    assert.ok(svg.includes('<title>other (5): 15</title>'), 'the five smallest summed');
    assert.ok(svg.includes('…'));
  });

  test('line chart: series, legend, values; empty and single-point series do not break it', () => {
    const svg = lineChart({ label: 'Calls and errors', labels: ['a', 'b'], format: String, area: true, series: [{ name: 'calls', values: [3, 7] }, { name: 'errors', values: [0, 1] }] }).value;
    for (const t of ['<title>a calls: 3</title>', '<title>b errors: 1</title>', 'class="area s0"', '>errors<']) assert.ok(svg.includes(t), t);
    for (const values of [[], [0.5]]) {
      const one = lineChart({ label: 'Trust', labels: values.map(() => 'x'), max: 1, format: String, series: [{ name: 'trust', values }] }).value;
      assert.ok(!one.includes('NaN') && !one.includes('Infinity'), one);
    }
  });
});

describe('exports', () => {
  test('CSV is RFC 4180 (quoted, quotes doubled, CRLF) and defuses formulas', () => {
    assert.equal(csvField('a "b", c\nd'), '"a ""b"", c\nd"');
    for (const f of ['=1+1', '+1', '-1', '@SUM(A1)', '\t=x']) assert.equal(csvField(f), `"'${f}"`, f);
    assert.equal(csvField(-2.5), '"-2.5"', 'numbers are data');
    assert.equal(csvField(undefined), '""');
    const t = table<{ k: string; n: number }>({ name: 't', title: 'T', rows: [{ k: '=cmd|"/c calc"!A0', n: 1 }], columns: [{ key: 'k', label: 'K', value: (r) => r.k }, { key: 'n', label: 'N', value: (r) => r.n }] });
    assert.equal(toCsv(t), `"k","n"\r\n"'=cmd|""/c calc""!A0","1"\r\n`);
  });

  test('an agent page table exports the raw values, a formula-looking task name defused', () => {
    const tasks = agentPage(DETAIL, URL_OF('/agents/a')).tables.find((t) => t.name === 'tasks')!;
    assert.equal(toCsv(tasks).split('\r\n')[2], `"'=HYPERLINK(""http://evil"")","40","20000","2000","1.25"`);
  });
});

describe('sign-in', () => {
  const tokens = new Map([['tok-a', 'fleet-a'], ['tok-a2', 'fleet-a'], ['tok-b', 'fleet-b']]);

  test('a session verifies for its fleet, with any of its tokens; tampering, another fleet\'s token or expiry refuse it', () => {
    const now = Date.parse('2025-03-30T12:00:00Z');
    const good = signSession('fleet-a', 'tok-a2', now + 60_000);
    assert.equal(verifySession(good, tokens, now), 'fleet-a');
    assert.equal(verifySession(good, tokens, now + 60_000), undefined, 'expired');
    const [payload, sig] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ f: 'fleet-b', e: now + 60_000 })).toString('base64url');
    assert.equal(verifySession(`${forged}.${sig}`, tokens, now), undefined, 'payload swapped');
    const longer = Buffer.from(JSON.stringify({ f: 'fleet-a', e: now + 9e12 })).toString('base64url');
    assert.equal(verifySession(`${longer}.${sig}`, tokens, now), undefined, 'expiry extended');
    assert.equal(verifySession(`${payload}.${sig.slice(0, -2)}AA`, tokens, now), undefined, 'signature altered');
    assert.equal(verifySession(signSession('fleet-a', 'tok-b', now + 60_000), tokens, now), undefined, 'signed with another fleet\'s token');
    assert.equal(verifySession(signSession('fleet-a', 'tok-a', now + 60_000), new Map([['tok-b', 'fleet-b']]), now), undefined, 'token revoked');
    for (const junk of ['', '.', 'x.y', `${payload}.`, 'e30.e30']) assert.equal(verifySession(junk, tokens, now), undefined, junk);
  });

  test('next is followed only to a local path', () => {
    assert.equal(localPath('/agents/a%20b?from=2025-01-01'), '/agents/a%20b?from=2025-01-01');
    for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/\t/evil.example', '', null, 'agents',
      '/.//evil.example', '/..//evil.example', '/a/..//evil.example', '/%2e//evil.example', '/x/%2e%2e//evil.example']) {
      assert.equal(localPath(bad), '/', String(bad));
    }
  });

  test('a form post must come from this origin when the browser says where it came from', () => {
    const req = (headers: Record<string, string>) => ({ headers, socket: {} }) as never;
    assert.equal(sameOrigin(req({ host: 'c.test:8080' })), true, 'no Origin (curl, old browsers): SameSite=Strict is the guard');
    assert.equal(sameOrigin(req({ host: 'c.test:8080', origin: 'http://c.test:8080' })), true);
    assert.equal(sameOrigin(req({ host: 'c.test:8080', origin: 'http://evil.test' })), false);
    assert.equal(sameOrigin(req({ host: 'c.test:8080', origin: 'null' })), false, 'a sandboxed frame');
    assert.equal(sameOrigin(req({ host: 'c.test:8080', origin: 'null', 'sec-fetch-site': 'same-origin' })), true, 'our own form under no-referrer');
    assert.equal(sameOrigin(req({ host: 'c.test:8080', origin: 'http://c.test:8080', 'sec-fetch-site': 'cross-site' })), false);
    assert.equal(sameOrigin(req({ host: 'c.test:8080', 'sec-fetch-site': 'same-site' })), false, 'a sibling subdomain');
    assert.equal(sameOrigin(req({ host: 'c.test', origin: 'http://c.test', 'x-forwarded-proto': 'https' })), false, 'http origin on an https site');
    assert.equal(sameOrigin(req({ host: 'c.test', origin: 'https://c.test', 'x-forwarded-proto': 'https' })), true);
    // Behind a proxy that rewrites Host: the browser's host is the forwarded one.
    const proxied = { host: '127.0.0.1:15200', 'x-forwarded-host': 'dash.example.com', 'x-forwarded-proto': 'https' };
    assert.equal(sameOrigin(req({ ...proxied, origin: 'https://dash.example.com' })), true);
    assert.equal(sameOrigin(req({ ...proxied, origin: 'https://evil.example' })), false);
  });
});

describe('decrypting in the browser', () => {
  const key = randomBytes(32);
  const keyring: Keyring = { activeKid: 'k2025', keys: new Map([['k2025', key]]) };
  const secret = { log_id: 'log-7f3a', seq: 41, event: 'model_call', request: { text: 'the customer\'s card ends 4242', n: 3 }, response: { body: { choices: [{ text: 'ok' }], é: '€' } } };

  function protectedCopy(): Record<string, any> {
    const r = structuredClone(secret) as Record<string, any>;
    protectRecord(r, { encrypt: ['request.text', 'response.body'], mask: [] }, keyring, undefined);
    return r;
  }

  test('opens what field-protection.ts sealed (same AAD, ciphertext ‖ tag) with WebCrypto', async () => {
    const sealed = protectedCopy();
    assert.equal(sealed.request.text.$enc, 'aes-256-gcm');
    const out = await decryptFields(sealed, parseKeys(`other:${randomBytes(32).toString('base64')}, k2025:${key.toString('base64')}`), globalThis.crypto.subtle);
    assert.deepEqual(out.record, secret);
    assert.deepEqual(out.record, decryptRecord(sealed, keyring), 'the same as the CLI\'s decryption');
    assert.deepEqual(out.opened.sort(), ['request.text', 'response.body']);
    assert.deepEqual(out.failed, []);
  });

  test('a field moved to another seq or path, a wrong key or a missing key stays encrypted and is named', async () => {
    const moved = { ...protectedCopy(), seq: 42 };
    const keys = parseKeys(`k2025:${key.toString('base64')}`);
    const a = await decryptFields(moved, keys);
    assert.deepEqual(a.opened, []);
    assert.equal(a.failed.length, 2);
    assert.equal((a.record.request as any).text.$enc, 'aes-256-gcm');
    const swapped = protectedCopy();
    [swapped.request.text, swapped.response.body] = [swapped.response.body, swapped.request.text];
    assert.match((await decryptFields(swapped, keys)).failed.join('\n'), /request\.text: does not decrypt with key "k2025"/);
    assert.match((await decryptFields(protectedCopy(), parseKeys(`k2025:${randomBytes(32).toString('base64')}`))).failed[0], /does not decrypt/);
    assert.match((await decryptFields(protectedCopy(), new Map())).failed[0], /no key "k2025" given/);
  });
});

// ---- Over HTTP, on a real collector holding a real shipped log -------------------------------------

const AUDIT_KEY = randomBytes(32);
const AGENT = '<img src=x onerror=alert(1)>';
let collector: TestCollector;
let logId: string;

async function shipLog(): Promise<void> {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const protection = { encrypt: ['request.text'], mask: [], keyring: { activeKid: 'k1', keys: [['k1', AUDIT_KEY.toString('base64')]] as [string, string][] } };
  const log = await openAuditLog({ path, key: loadSigningKey(dir, {}), strict: true, protection, checkpointEveryRecords: 20, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
  for (let i = 0; i < 60; i++) {
    await log.append({
      event: 'model_call', ts: new Date().toISOString(), agent: { id: AGENT, version: '1.2.0' }, session: 's-1', task: i % 2 ? 'refund' : '=cmd()',
      model: { asked: 'gpt-4o-mini', served: 'gpt-4o-mini' }, status: i % 10 === 9 ? 500 : 200, latency_ms: 100 + i,
      usage: { input_tokens: 1_000, output_tokens: 100 }, cost_usd: 0.01, request: { text: `secret prompt ${i}` },
    });
  }
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const db = new Database(path);
  logId = (db.prepare("SELECT value FROM meta WHERE key = 'log_id'").get() as { value: string }).value;
  const last = (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
  const events: ShipperEvent[] = [];
  const shipper = startShipper({ db, logId, url: collector.url, token: TOKEN, backoffBaseMs: 50, report: (e) => events.push(e) });
  shipper.notify();
  try {
    await waitFor(() => events.some((e) => e.type === 'shipped' && e.through >= last), 15_000, 'shipping');
  } finally {
    await shipper.stop(0);
    db.close();
  }
}

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${collector.url}${path}`, { headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await request(`${collector.url}${path}`, { method: 'POST', body: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Writes raw bytes on one connection and returns every response head and status until it closes (or 3 s pass). */
async function exchange(bytes: string): Promise<{ status: number; head: string }[]> {
  const socket = connect(collector.port, '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.write(bytes);
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 3_000))]);
  socket.destroy();
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n/g)].map((m) => ({ status: Number(m[1]), head: m[2] }));
}

/** Signs in through the form and returns the Cookie header a browser would send. */
async function signIn(): Promise<string> {
  const res = await post('/login', { token: TOKEN, next: '/' });
  assert.equal(res.status, 303);
  return String(res.headers['set-cookie']).split(';')[0];
}

// Runs in the page (a string: this file is compiled without the DOM types).
const DECRYPTED = "document.getElementById('record-json').textContent.includes('secret prompt')";

describe('over HTTP', () => {
  before(async () => {
    collector = await startCollector();
    await shipLog();
  });
  after(() => collector.close());

  test('every page sends a signed-out browser to /login, keeping where it was going', async () => {
    for (const path of ['/', '/agents/a%20b?from=2025-01-01', '/records?agent=x', '/alerts', '/prices', '/nowhere']) {
      const res = await get(path);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.location, `/login?next=${encodeURIComponent(path)}`);
    }
    const login = await get('/login?next=%2Falerts');
    assert.equal(login.status, 200);
    assert.ok(login.text.includes('name="next" value="/alerts"'));
    assert.equal(login.headers['x-content-type-options'], 'nosniff');
    assert.equal(login.headers['referrer-policy'], 'no-referrer');
    assert.match(String(login.headers['content-security-policy']), /default-src 'self'.*script-src 'self'.*frame-ancestors 'none'/);
  });

  test('the API is unchanged: JSON errors, bearer tokens, /healthz open', async () => {
    assert.deepEqual(JSON.parse((await get('/healthz')).text), { ok: true });
    const anon = await get('/v1/records');
    assert.equal(anon.status, 401);
    assert.equal(JSON.parse(anon.text).error.code, 'WARDEN_ERR_UNAUTHORIZED');
    const negative = JSON.parse((await get('/v1/records?limit=-5', { authorization: `Bearer ${TOKEN}` })).text);
    assert.equal(negative.records.length, 1, 'a limit below 1 is 1, never "no limit"');
    const missing = await get('/v1/nothing', { authorization: `Bearer ${TOKEN}` });
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.text).error.code, 'WARDEN_ERR_ROUTE_NOT_FOUND');
  });

  test('sign-in: a wrong token is a 401 page; the right one a session cookie and a redirect to a local next only', async () => {
    const bad = await post('/login', { token: 'nope', next: '/alerts' });
    assert.equal(bad.status, 401);
    assert.match(String(bad.headers['content-type']), /text\/html/);
    assert.ok(bad.text.includes('not a fleet token') && bad.text.includes('value="/alerts"'));
    assert.equal(bad.headers['set-cookie'], undefined);
    const good = await post('/login', { token: TOKEN, next: '/alerts?x=1' });
    assert.equal(good.status, 303);
    assert.equal(good.headers.location, '/alerts?x=1');
    const cookie = String(good.headers['set-cookie']);
    assert.match(cookie, /^warden_session=[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
      assert.equal((await post('/login', { token: TOKEN, next })).headers.location, '/', next);
    }
    const overTls = await post('/login', { token: TOKEN }, { 'x-forwarded-proto': 'https' });
    assert.match(String(overTls.headers['set-cookie']), /; Secure$/);
  });

  test('a tampered or foreign cookie is refused; a bearer token works for pages too', async () => {
    const cookie = await signIn();
    assert.equal((await get('/alerts', { cookie })).status, 200);
    const [name, value] = cookie.split('=');
    const [payload, sig] = value.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const longer = Buffer.from(JSON.stringify({ ...claims, e: claims.e + 1e9 })).toString('base64url');
    for (const forged of [`${name}=${longer}.${sig}`, `${name}=${payload}.${sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`, `${name}=${signSession('test-fleet', 'guess', Date.now() + 1e6)}`]) {
      assert.equal((await get('/alerts', { cookie: forged })).status, 303, forged);
    }
    const bearer = await get('/alerts', { authorization: `Bearer ${TOKEN}` });
    assert.equal(bearer.status, 200);
    assert.ok(!bearer.text.includes('Sign out'), 'nothing to sign out of with a bearer token');
  });

  test('overview: counts, the agent escaped and linked, exports of its tables', async () => {
    const cookie = await signIn();
    const page = await get('/', { cookie });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.ok(!page.text.includes(AGENT) && page.text.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(page.text.includes(`href="/agents/${encodeURIComponent(AGENT)}"`));
    assert.ok(page.text.includes('Sign out'));
    const csv = await get('/?format=csv&table=agents', { cookie });
    assert.equal(csv.status, 200);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    assert.equal(csv.headers['content-disposition'], 'attachment; filename="overview-agents.csv"');
    assert.ok(csv.text.startsWith('"agent","version","calls"'), csv.text);
    assert.ok(csv.text.includes(`"${AGENT}","1.2.0","60"`), csv.text);
    const json = JSON.parse((await get('/?format=json&table=daily', { cookie })).text);
    assert.equal(json.rows.length, 30);
    assert.equal((await get('/?format=csv&table=nope', { cookie })).status, 404);
  });

  test('agent page: tasks and models with their cost, a formula-looking task defused in CSV', async () => {
    const cookie = await signIn();
    const path = `/agents/${encodeURIComponent(AGENT)}`;
    const page = await get(path, { cookie });
    assert.equal(page.status, 200);
    for (const s of ['refund', '=cmd()', 'gpt-4o-mini', 'role="img"', 'Latency p99']) assert.ok(page.text.includes(s), s);
    const tasks = await get(`${path}?format=csv&table=tasks`, { cookie });
    assert.ok(tasks.text.includes(`"'=cmd()"`), tasks.text);
    assert.equal((await get(`${path}?from=banana`, { cookie })).status, 400);
  });

  test('records: search, page through with the next link, open one, download it', async () => {
    const cookie = await signIn();
    const first = await get(`/records?agent=${encodeURIComponent(AGENT)}&event=model_call`, { cookie });
    assert.equal(first.status, 200);
    const next = /<a rel="next" href="([^"]+)"/.exec(first.text)?.[1].replace(/&amp;/g, '&');
    assert.ok(next, 'a next link after a full page');
    const second = await get(next, { cookie });
    assert.equal(second.status, 200);
    assert.ok(!second.text.includes('rel="next"'), '60 records: two pages');
    const json = JSON.parse((await get(`${next}&format=json&table=records`, { cookie })).text);
    assert.equal(json.rows.length, 10);
    const seq = json.rows[0].seq;
    const one = await get(`/records/${encodeURIComponent(logId)}/${seq}`, { cookie });
    assert.equal(one.status, 200);
    assert.ok(one.text.includes('&quot;$enc&quot;: &quot;aes-256-gcm&quot;'), 'the field stays encrypted on the server');
    assert.ok(one.text.includes('<script type="module" src="/assets/record-decrypt.js"></script>'));
    const body = await get(`/records/${encodeURIComponent(logId)}/${seq}?format=json`, { cookie });
    assert.equal(JSON.parse(body.text).seq, seq);
    const missing = await get(`/records/${encodeURIComponent(logId)}/99999`, { cookie });
    assert.equal(missing.status, 404);
    assert.match(missing.text, /<!doctype html>/);
    assert.equal((await get('/records?from=soon', { cookie })).status, 400);
  });

  test('prices: set through the form (same origin only), refused when invalid', async () => {
    const cookie = await signIn();
    const origin = collector.url;
    const foreign = await post('/prices', { model: 'm-1', inputPerMTok: '1', outputPerMTok: '2' }, { cookie, origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    const set = await post('/prices', { model: 'm-1', inputPerMTok: '1.5', outputPerMTok: '6' }, { cookie, origin });
    assert.equal(set.status, 303);
    assert.equal(set.headers.location, '/prices');
    const page = await get('/prices', { cookie });
    assert.ok(page.text.includes('m-1') && page.text.includes('$1.50') && page.text.includes('keeps the price it was recorded with'));
    const bad = await post('/prices', { model: 'm-2', inputPerMTok: '-1', outputPerMTok: 'x' }, { cookie, origin });
    assert.equal(bad.status, 400);
    assert.ok(bad.text.includes('value="m-2"') && bad.text.includes('USD per million tokens'));
    assert.equal((await post('/prices', { model: 'a\u0007b', inputPerMTok: '1', outputPerMTok: '1' }, { cookie, origin })).status, 400, 'control characters');
    assert.equal((await post('/prices', { model: 'm-3', inputPerMTok: '1', outputPerMTok: '1' })).status, 401, 'signed out');
  });

  test('an oversized form is refused with an answer, not a reset; a chunked one keeps the connection usable', async () => {
    const big = 'token=' + 'x'.repeat(200_000);
    const login = 'GET /login HTTP/1.1\r\nhost: collector\r\n\r\n';
    const declared = await exchange(`POST /login HTTP/1.1\r\nhost: collector\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: ${big.length}\r\n\r\n${big}${login}`);
    assert.deepEqual(declared.map((r) => r.status), [401], 'a declared oversize is answered, then the connection closes');
    assert.match(declared[0].head, /^connection: close$/im);
    const chunk = (t: string) => `${t.length.toString(16)}\r\n${t}\r\n`;
    const chunked = await exchange(`POST /login HTTP/1.1\r\nhost: collector\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n${chunk(big.slice(0, 100_000))}${chunk(big.slice(100_000))}0\r\n\r\n${login}`);
    assert.deepEqual(chunked.map((r) => r.status), [401, 200], 'read to its end: the next request on the connection is answered');
  });

  test('sign-out clears the cookie (and is refused from another site)', async () => {
    const cookie = await signIn();
    assert.equal((await post('/logout', {}, { cookie, origin: 'http://evil.example' })).status, 403);
    const out = await post('/logout', {}, { cookie, origin: collector.url });
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, '/login');
    assert.match(String(out.headers['set-cookie']), /^warden_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/);
  });

  test('unknown pages are an HTML 404; assets are served', async () => {
    const cookie = await signIn();
    const res = await get('/agents/a/b', { cookie });
    assert.equal(res.status, 404);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const css = await get('/assets/dashboard.css');
    assert.match(String(css.headers['content-type']), /^text\/css/);
    assert.equal((await get('/assets/nope.js')).status, 404);
    const head = await request(`${collector.url}/alerts`, { method: 'HEAD', headers: { cookie } });
    assert.equal(head.statusCode, 200, 'HEAD answers like GET, without a body');
    assert.equal(await head.body.text(), '');
    const asset = await request(`${collector.url}/assets/dashboard.css`, { method: 'HEAD' });
    assert.equal(asset.statusCode, 200, 'assets answer HEAD too');
    await asset.body.text();
  });

  test('in a browser: sign in, open an encrypted record, paste the key, read the plaintext (CSP intact)', async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
      const problems: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
      page.on('pageerror', (e) => problems.push(e.message));
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      const rows = JSON.parse((await get(`/records?event=model_call&format=json`, { authorization: `Bearer ${TOKEN}` })).text).rows;
      const seq = rows[3].seq;
      await page.goto(`${collector.url}/records/${encodeURIComponent(logId)}/${seq}`);
      assert.match(page.url(), /\/login\?next=/);
      await page.fill('input[name=token]', TOKEN);
      await page.click('button[type=submit]');
      await page.waitForSelector('#key-input');
      assert.ok(!(await page.textContent('#record-json'))!.includes('secret prompt'));
      await page.fill('#key-input', `k1:${AUDIT_KEY.toString('base64')}`);
      await page.click('#key-form button[type=submit]');
      await page.waitForFunction(DECRYPTED);
      assert.match((await page.textContent('#key-status'))!, /Decrypted in this browser: request\.text/);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-record-phone.png'), fullPage: true });
      // The key stays in this tab's session storage and decrypts again on reload.
      await page.reload();
      await page.waitForFunction(DECRYPTED);
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${collector.url}/`);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-overview.png'), fullPage: true });
      await page.goto(`${collector.url}/agents/${encodeURIComponent(AGENT)}`);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-agent.png'), fullPage: true });
      assert.deepEqual(problems, []);
      assert.deepEqual(requests.filter((u) => !u.startsWith(collector.url)), [], 'no request leaves the collector');
    } finally {
      await browser.close();
    }
  });
});
