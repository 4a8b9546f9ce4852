// The admin listener's page (GET /) and GET /calls/recent, black-box against a real sidecar: calls
// made with the official OpenAI SDK show up in the recent-calls ring (bounded, newest first, no
// bodies, masked where the audit log masks, filled with the audit log off too); every value on the
// page is escaped; the policy is shown without its secrets; pending escalations come with Approve and
// Reject buttons whose API refuses a request without the admin token (no CORS opening for another
// origin); and the page's headers lock it down (CSP with a per-response nonce, nosniff, no referrer,
// no framing).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { escapeHtml, html, raw } from '../../proxy/admin/html.ts';
import { RecentCalls, type CallSummary } from '../../proxy/admin/recent-calls.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startJsonTool, type JsonTool } from '../helpers/escalation.ts';
import { policyFor, startWarden, tempFile, waitFor } from '../helpers/warden.ts';

const TOKEN = 'adm-page-Zr4pW8qN2vK6xT1s';
const HOSTILE = '<img src=x onerror=alert(1)>';
const PROMPT = 'the-unique-prompt-text-7Hq2';
// Values the policy interpolates from the environment; none may reach the page.
const SECRETS = {
  ORDERS_API_TOKEN: 'tok-orders-9f8e7d6c5b4a',
  HOOK_TOKEN: 'hook-bearer-1a2b3c4d5e6f',
  UPSTREAM_EXTRA: 'upstream-extra-q1w2e3r4t5',
  LOOKUP_PASSWORD: 'lookup-pw-z9x8c7v6b5',
  LOOKUP_QUERY_KEY: 'lookup-qk-m1n2b3v4c5',
  DEMO_API_KEY: 'demo-key-p0o9i8u7y6',
  HOOK_PATH_SECRET: 'hookpath-k3j4h5g6f7',
  // Names no pattern would call secret: hidden because the policy interpolates them.
  SLACK_HOOK_PATH: 'T000/B000/slackpath-x7y8z9',
  DB_PWD: 'db pwd {a1s2d3f4}',
};

let fake: FakeUpstream;
let tool: JsonTool;
let hook: JsonTool;
let w: Sidecar;

before(async () => {
  Object.assign(process.env, SECRETS, { WARDEN_ADMIN_TOKEN: TOKEN });
  fake = await startFakeUpstream();
  tool = await startJsonTool('{"refund_id":"re_1","status":"pending"}');
  hook = await startJsonTool('{}');
  w = await startWarden(tempFile('page.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: page-agent, version: 2.0.1, scopes: [finance] }
upstreams:
  openai: { baseUrl: "${fake.url}/v1", headers: { x-extra-auth: "\${UPSTREAM_EXTRA}" } }
  anthropic: { baseUrl: "${fake.url}" }
models:
  gpt-4o: { pin: gpt-4o-2024-11-20, price: { inputPerMTok: 2.5, outputPerMTok: 10 } }
tools:
  issue_refund:
    scope: finance
    approval: human
    description: "refunds with key \${DEMO_API_KEY}"
    http: { url: "${tool.url}/refunds", headers: { authorization: "Bearer \${ORDERS_API_TOKEN}" } }
  lookup:
    scope: finance
    description: "reads the orders database as \${DB_PWD}"
    http: { url: "http://svc:\${LOOKUP_PASSWORD}@127.0.0.1:9/lookup?key=\${LOOKUP_QUERY_KEY}&v=2" }
  notify_team:
    scope: finance
    http: { url: "http://127.0.0.1:9/services/\${SLACK_HOOK_PATH}#key=fragment-key-q9w8e7" }
escalation:
  timeoutMs: 60000
  webhook: "${hook.url}/hooks/\${HOOK_PATH_SECRET}"
  webhookHeaders: { authorization: "Bearer \${HOOK_TOKEN}" }
`));
});
after(async () => {
  await w?.shutdown();
  await Promise.all([fake.close(), tool.close(), hook.close()]);
});

async function get(url: string) {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const page = () => get(`${w.adminUrl}/`);
const recent = async (query = ''): Promise<CallSummary[]> => JSON.parse((await get(`${w.adminUrl}/calls/recent${query}`)).text).calls;

function section(text: string, id: string): string {
  const m = new RegExp(`<section id="${id}"[\\s\\S]*?</section>`).exec(text);
  assert.ok(m, `section #${id}`);
  return m[0];
}

test('the ring keeps the last 100 summaries, newest first, in a fixed-size array', () => {
  const ring = new RecentCalls();
  assert.equal(ring.capacity, 100);
  assert.deepEqual(ring.list(), []);
  const summary = (i: number): CallSummary => ({ ts: new Date(i).toISOString(), request_id: `r${i}`, event: 'model_call', route: 'openai', status: 200, latency_ms: i });
  for (let i = 0; i < 250; i++) ring.push(summary(i));
  assert.equal(ring.size, 100);
  const ids = ring.list().map((c) => c.request_id);
  assert.equal(ids.length, 100);
  assert.deepEqual(ids.slice(0, 3), ['r249', 'r248', 'r247']);
  assert.equal(ids.at(-1), 'r150');
  assert.deepEqual(ring.list(2).map((c) => c.request_id), ['r249', 'r248']);
  const small = new RecentCalls(3);
  for (let i = 0; i < 2; i++) small.push(summary(i));
  assert.deepEqual(small.list().map((c) => c.request_id), ['r1', 'r0']);
  assert.throws(() => new RecentCalls(0), RangeError);
});

test('html escapes every interpolation (text and attributes), joins arrays, and trusts only html/raw output', () => {
  const out = html`<p title="${'"><script>x</script>'}">${HOSTILE}${['<b>', html`<i>${'&'}</i>`]}${undefined}${null}${false}${0}${raw('<hr>')}</p>`.value;
  assert.equal(out, '<p title="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">&lt;img src=x onerror=alert(1)&gt;&lt;b&gt;<i>&amp;</i>0<hr></p>');
  assert.equal(escapeHtml(`'\`&`), '&#39;&#96;&amp;');
});

test('calls through the OpenAI SDK appear on the page and in /calls/recent: newest first, no bodies, hostile values escaped', async () => {
  const openai = new OpenAI({
    baseURL: `${w.trafficUrl}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 10_000,
    defaultHeaders: { 'x-warden-session': HOSTILE, 'x-warden-task': 'task-"quoted"&' },
  });
  for (let i = 0; i < 3; i++) {
    await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `${PROMPT} ${i}` }] });
  }
  const res = await request(`${w.trafficUrl}/v1/nope/404`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  await res.body.text();

  // The ring is filled in the call's finally, just after the response is released.
  await waitFor(async () => (await recent()).length >= 4, 2_000, 'four summaries');
  const calls = await recent();
  assert.equal(calls.length, 4);
  const [passthrough, ...models] = calls;
  assert.equal(passthrough.event, 'passthrough');
  for (const c of models) {
    assert.deepEqual(
      [c.event, c.route, c.endpoint, c.session, c.task, c.model_asked, c.model_served, c.status, c.violations],
      ['model_call', 'openai', 'openai.chat', HOSTILE, 'task-"quoted"&', 'gpt-4o', 'gpt-4o-2024-11-20', 200, undefined],
    );
    assert.equal(typeof c.latency_ms, 'number');
    assert.ok(c.input_tokens! > 0 && c.output_tokens! > 0, 'tokens');
    assert.ok(c.cost_usd! > 0, 'cost');
    assert.ok(c.actions?.includes('model-pinned'));
    assert.ok(c.decisions?.length, 'stage decisions, as stage:decision');
    assert.match(c.request_id, /^[0-9a-f-]{36}$/);
  }
  assert.ok(Date.parse(models[0].ts) >= Date.parse(models[2].ts), 'newest first');
  assert.deepEqual((await recent('?limit=2')).map((c) => c.request_id), calls.slice(0, 2).map((c) => c.request_id));

  const { status, text } = await page();
  assert.equal(status, 200);
  const json = JSON.stringify(calls);
  assert.doesNotMatch(json + text, new RegExp(PROMPT), 'no request body reaches the ring or the page');
  const table = section(text, 'recent-calls');
  for (const c of calls) assert.match(table, new RegExp(`data-request-id="${c.request_id}"`));
  assert.ok(table.includes(escapeHtml(HOSTILE)), 'the hostile session id is shown as text');
  assert.ok(table.includes('task-&quot;quoted&quot;&amp;'));
  assert.ok(!text.includes(HOSTILE) && !/<img/i.test(text), 'no markup from a header reaches the page');
  assert.match(table, /gpt-4o-2024-11-20/);
  assert.match(table, /model-pinned/);
});

test('the page: status, policy identity, security headers with a per-response nonce, and no CORS opening', async () => {
  const a = await page();
  const b = await page();
  const csp = String(a.headers['content-security-policy']);
  for (const part of ["default-src 'none'", "connect-src 'self'", "img-src data:", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) assert.ok(csp.includes(part), part);
  const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
  assert.ok(nonce, 'a script nonce');
  assert.ok(csp.includes(`style-src 'nonce-${nonce}'`));
  assert.notEqual(nonce, /'nonce-([^']+)'/.exec(String(b.headers['content-security-policy']))?.[1], 'a fresh nonce per response');
  assert.equal(a.headers['x-content-type-options'], 'nosniff');
  assert.equal(a.headers['referrer-policy'], 'no-referrer');
  assert.equal(a.headers['x-frame-options'], 'DENY');
  assert.match(String(a.headers['content-type']), /^text\/html; charset=utf-8/);
  assert.equal(a.headers['access-control-allow-origin'], undefined);
  // One script and one style, both carrying the nonce; no external resource, no inline handler.
  assert.deepEqual(a.text.match(/<script[^>]*>/g), [`<script nonce="${nonce}">`]);
  assert.deepEqual(a.text.match(/<style[^>]*>/g), [`<style nonce="${nonce}">`]);
  // (Escaped text may spell `src=`; a tag never carries one.)
  assert.doesNotMatch(a.text, /<[a-z][^<>]*\s(src|href|style|on[a-z]+)=/i);

  for (const id of ['status', 'policy', 'recent-calls', 'escalations']) section(a.text, id);
  // What the page's refresh fetches: the same sections, without the style and script.
  const part = await get(`${w.adminUrl}/?part=sections`);
  assert.equal(part.status, 200);
  for (const id of ['status', 'policy', 'recent-calls', 'escalations']) section(part.text, id);
  assert.doesNotMatch(part.text, /<script|<style|<html/);
  assert.ok(part.headers['content-security-policy']);
  assert.match(a.text, /id="admin-token"/);
  assert.match(a.text, /id="action-result"/);
  const status = section(a.text, 'status');
  assert.match(status, /data-state="(green|yellow|red)"/);
  assert.match(status, /class="state state-(green|yellow|red)"/);
  for (const label of ['version', 'uptime', 'in flight', 'audit committed']) assert.match(status, new RegExp(`<dt>${label}</dt>`));
  const policy = section(a.text, 'policy');
  const sha = w.ctx.runtime.policy.source.sha256;
  for (const v of [sha, 'page-agent 2.0.1', 'enforce', escapeHtml(w.ctx.runtime.policy.source.file), w.ctx.runtime.loadedAt.toISOString()]) assert.ok(policy.includes(v), v);

  // Other origins get nothing that would let their script call the admin API: no preflight answer.
  for (const path of ['/escalations/esc_x/approve', '/calls/recent', '/']) {
    const pre = await request(`${w.adminUrl}${path}`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
    await pre.body.text();
    assert.equal(pre.headers['access-control-allow-origin'], undefined, path);
    assert.equal(pre.headers['access-control-allow-headers'], undefined, path);
  }
  const r = await request(`${w.adminUrl}/calls/recent`, { headers: { origin: 'https://evil.example' } });
  await r.body.text();
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});

test('the policy is shown with its settings but none of its secrets', async () => {
  const { text } = await page();
  for (const [name, value] of Object.entries(SECRETS)) assert.ok(!text.includes(value), `${name} is not on the page`);
  assert.ok(!text.includes('fragment-key-q9w8e7'), 'a URL fragment is not on the page');
  const policy = section(text, 'policy');
  // The settings are all there, secrets replaced by markers.
  for (const shown of ['issue_refund', 'x-extra-auth', '&quot;authorization&quot;: &quot;[redacted]&quot;', 'approval', '[redacted: $DEMO_API_KEY]', '/lookup?key=[redacted]&amp;v=[redacted]', '//[redacted]@127.0.0.1:9/lookup', '/[redacted]&quot;',
    'reads the orders database as [redacted: $DB_PWD]', '/services/[redacted: $SLACK_HOOK_PATH]#[redacted]']) {
    assert.ok(policy.includes(shown), shown);
  }
  assert.ok(policy.includes(`${hook.url}/[redacted]`), 'a webhook keeps only its origin');
  assert.ok(!text.includes(TOKEN), 'the admin token is never on the page');
});

test('pending escalations appear with Approve and Reject; the API refuses a decision without the token; with it, the call is released', async () => {
  const held = request(`${w.trafficUrl}/tools/issue_refund`, {
    method: 'POST', body: JSON.stringify({ order_id: 'ORD-1', note: '<script>alert("x")</script>' }),
    headers: { 'content-type': 'application/json', 'x-warden-session': 'esc-session', 'x-warden-task': 'esc-task' },
  }).then(async (r) => ({ status: r.statusCode, outcome: r.headers['x-warden-tool-outcome'], text: await r.body.text() }));
  let id = '';
  await waitFor(async () => !!(id = w.ctx.services.escalations.list({ state: 'pending' })[0]?.id ?? ''), 5_000, 'a held call');

  const { text } = await page();
  const escalations = section(text, 'escalations');
  const row = new RegExp(`<article class="esc" data-escalation="${id}">[\\s\\S]*?</article>`).exec(escalations)?.[0];
  assert.ok(row, 'a row for the pending escalation');
  assert.match(row, new RegExp(`<button type="button" data-action="approve" data-id="${id}">Approve</button>`));
  assert.match(row, new RegExp(`<button type="button" data-action="reject" data-id="${id}">Reject</button>`));
  assert.match(row, /<input data-note /);
  for (const v of ['tool issue_refund', 'esc-session', 'esc-task', 'approval', 'ORD-1']) assert.ok(row.includes(v), v);
  assert.ok(row.includes('&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt;'), 'arguments are shown escaped');
  assert.equal(text.match(/<script/g)?.length, 1, 'the arguments add no script');
  assert.match(escalations, /id="escalation-count">1</);

  // What a cross-site form could send (no authorization header), and a wrong token: refused, still held.
  const form = await request(`${w.adminUrl}/escalations/${id}/approve`, {
    method: 'POST', body: 'note=x', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
  });
  const formJson = (await form.body.json()) as any;
  assert.deepEqual([form.statusCode, formJson.error.code], [401, 'WARDEN_ERR_ADMIN_UNAUTHORIZED']);
  assert.equal(form.headers['access-control-allow-origin'], undefined);
  const wrong = await request(`${w.adminUrl}/escalations/${id}/reject`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' } });
  assert.equal(wrong.statusCode, 401);
  await wrong.body.text();
  assert.equal(w.ctx.services.escalations.get(id)!.state, 'pending');

  // What the page's button sends.
  const ok = await request(`${w.adminUrl}/escalations/${encodeURIComponent(id)}/approve`, {
    method: 'POST', body: JSON.stringify({ by: 'admin page', note: 'looks fine' }), headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(ok.statusCode, 200);
  assert.equal(((await ok.body.json()) as any).state, 'approved');
  assert.deepEqual([(await held).status, (await held).outcome], [200, 'ok']);
  const after = section((await page()).text, 'escalations');
  assert.doesNotMatch(after, /data-escalation=/);
  assert.match(after, /Nothing waits for a person/);
  const toolCall = (await recent()).find((c) => c.event === 'tool_call');
  assert.deepEqual([toolCall?.tool, toolCall?.session, toolCall?.status], ['issue_refund', 'esc-session', 200]);
  assert.doesNotMatch(JSON.stringify(toolCall), /ORD-1|alert/, 'no arguments in the summary');
});

test('the ring fills with the audit log off, and masks what the policy masks', async () => {
  // This sidecar starts without an admin token: the page says decisions over the API are off.
  delete process.env.WARDEN_ADMIN_TOKEN;
  let other: Sidecar;
  try {
    other = await startWarden(tempFile('off.yaml', policyFor(fake.url, 'audit: { enabled: false, mask: [task, model] }\n', 'quiet-agent')));
  } finally {
    process.env.WARDEN_ADMIN_TOKEN = TOKEN;
  }
  try {
    const openai = new OpenAI({ baseURL: `${other.trafficUrl}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-warden-task': 'secret-task', 'x-warden-session': 's1' } });
    await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    await waitFor(() => other.ctx.recentCalls.size === 1, 2_000, 'a summary');
    const [c] = JSON.parse((await get(`${other.adminUrl}/calls/recent`)).text).calls as CallSummary[];
    assert.deepEqual([c.session, c.task, c.model_asked, c.model_served, c.status], ['s1', '[masked]', '[masked]', '[masked]', 200]);
    const { text } = await get(`${other.adminUrl}/`);
    assert.ok(!text.includes('secret-task'));
    assert.match(section(text, 'status'), /<dt>audit<\/dt><dd>off<\/dd>/);
    const escalations = section(text, 'escalations');
    assert.match(escalations, /No admin token is configured on this sidecar: decisions over the API are refused/);
    assert.match(escalations, /Nothing waits for a person/);
    assert.doesNotMatch(section((await page()).text, 'escalations'), /No admin token is configured/, 'the first sidecar has one');
  } finally {
    await other.shutdown();
  }
});
