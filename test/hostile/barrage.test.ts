// The hostile-input barrage against the real CLI (`warden proxy` in a child process, a policy with an
// HTTP tool and an MCP server): malformed and 100k-deep JSON, bodies over the cap, invalid UTF-8 and
// NULs, header injection and request smuggling, path traversal into /tools and /mcp, absurd URLs and
// methods, slow-loris clients, and an upstream that sends a 50 MB SSE line or one that never ends.
// Afterwards the process is still up and serving, no client ever saw a stack trace, and
// `warden audit verify` passes with exactly one record per request that reached Warden.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { startCrmServer, startOrderService, type CrmServer, type OrderService } from '../helpers/tools.ts';
import { spawnWarden, tempDataDir, tempFile, WARDEN_BIN, type SpawnedWarden } from '../helpers/warden.ts';
import { CASES, SLOW_CASES, type Case, type Expect } from './barrage-cases.ts';
import { HOSTILE_HEADER, HOSTILE_TOOL_PATH, HUGE_LINE_BYTES, hostileUpstream } from './hostile-upstream.ts';
import { exchange, type RawReply } from './raw-exchange.ts';

const POLICY = `apiVersion: warden/v1
kind: Policy
agent: { id: hostile-test, version: 1.0.0, scopes: [customer_service] }
upstreams:
  openai: { baseUrl: "\${OPENAI_UPSTREAM}" }
  anthropic: { baseUrl: "\${ANTHROPIC_UPSTREAM}" }
  crm: { baseUrl: "\${CRM_MCP_URL}", provider: mcp }
limits: { maxBodyBytes: 256KiB }
tools:
  lookup_order:
    scope: customer_service
    args: { type: object, additionalProperties: false, required: [order_id], properties: { order_id: { type: string, pattern: "^ORD-[0-9]{6}$" } } }
    http: { url: "\${ORDERS_URL}/lookup", timeoutMs: 2000 }
  search_customers:
    scope: customer_service
    mcp: { server: crm }
  deep_result:
    scope: customer_service
    http: { url: "\${HOSTILE_TOOL_URL}/deep-json" }
  trap_result:
    scope: customer_service
    http: { url: "\${HOSTILE_TOOL_URL}/trap-json" }
`;

let fake: FakeUpstream;
let orders: OrderService;
let crm: CrmServer;
let warden: SpawnedWarden;
const dataDir = tempDataDir();
/** Records the requests so far must have left, and the request ids Warden answered with. */
let expectedRecords = 0;
const answeredIds = new Set<string>();

before(async () => {
  fake = await startFakeUpstream();
  fake.setHandler(hostileUpstream);
  orders = await startOrderService();
  crm = await startCrmServer({ json: true });
  warden = await spawnWarden(tempFile('hostile.yaml', POLICY), {
    WARDEN_DATA_DIR: dataDir, OPENAI_UPSTREAM: `${fake.url}/v1`, ANTHROPIC_UPSTREAM: fake.url, CRM_MCP_URL: crm.url, ORDERS_URL: orders.url,
    HOSTILE_TOOL_URL: `${fake.url}${HOSTILE_TOOL_PATH}`, WARDEN_CLIENT_HEADER_TIMEOUT_MS: '1000', WARDEN_CLIENT_BODY_TIMEOUT_MS: '1500', WARDEN_LOG_LEVEL: 'info',
  });
});
after(async () => {
  if (warden.proc.exitCode === null) warden.proc.kill('SIGKILL');
  await Promise.all([fake.close(), orders.close(), crm.close()]);
});

const STACK = /\n\s+at |node:internal|file:\/\/|\.ts:\d+:\d+/;

function checkReply(name: string, reply: RawReply, want: Expect): void {
  const text = reply.body.toString('utf8');
  const what = `${name}: ${reply.status} ${text.slice(0, 300)}`;
  assert.equal(reply.status, want.status, what);
  assert.doesNotMatch(text, STACK, `${what}: a stack trace reached the client`);
  if (reply.headers['x-warden-request-id']) answeredIds.add(reply.headers['x-warden-request-id']);
  if (want.shape === 'node' || want.shape === 'pass') return;
  assert.match(reply.headers['content-type'] ?? '', /^application\/json/, what);
  const body = JSON.parse(text);
  const error = want.shape === 'warden-mcp' ? body.error?.data : body.error;
  if (want.shape === 'warden-anthropic') assert.equal(body.type, 'error', what);
  if (want.shape === 'warden-mcp') assert.equal(body.jsonrpc, '2.0', what);
  assert.match(error?.type ?? '', /^warden_/, what);
  assert.equal(error?.code, want.code, what);
}

async function run(c: Case): Promise<void> {
  const send = c.send;
  const result = await exchange(warden.trafficUrl, typeof send === 'function' ? send : (s) => void s.write(send), {
    // Wait for every expected response, or, when none is due, for the server to act.
    replies: c.closes || c.expect.length === 0 ? undefined : c.expect.length,
    timeoutMs: c.expect.length === 0 && !c.closes ? 1_000 : 8_000,
  });
  expectedRecords += c.records;
  assert.equal(result.replies.length, c.expect.length, `${c.name}: ${result.replies.length} responses: ${result.raw.toString('latin1').slice(0, 300)}`);
  c.expect.forEach((want, i) => checkReply(c.name, result.replies[i], want));
  if (c.closes) assert.ok(result.closedByServer, `${c.name}: the connection was left open`);
}

test('a barrage of malformed, oversized, smuggled and traversing requests gets proper answers', async () => {
  // All at once: Warden must keep them apart, and it keeps the test fast.
  await Promise.all(CASES.map(run));
});

test('slow-loris clients are cut at the header and body deadlines', async () => {
  const started = Date.now();
  await Promise.all(SLOW_CASES.map(run));
  // 1 s for headers, 1.5 s for bodies, checked every 250 ms: nobody holds a connection for long.
  assert.ok(Date.now() - started < 6_000, `took ${Date.now() - started} ms`);
});

/** The child's resident memory now and at its peak, in MiB. */
function rssMiB(): { now: number; peak: number } {
  const status = readFileSync(`/proc/${warden.proc.pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

async function streamChat(kind: string, stopAfter = Infinity): Promise<{ status: number; bytes: number; text: string }> {
  const ac = new AbortController();
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', [HOSTILE_HEADER]: kind },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  let bytes = 0;
  let text = '';
  try {
    for await (const chunk of res.body) {
      bytes += chunk.length;
      if (text.length < 4096) text += chunk.toString('utf8');
      if (bytes >= stopAfter) ac.abort();
    }
  } catch (err) {
    if (bytes < stopAfter) throw err;
  }
  answeredIds.add(String(res.headers['x-warden-request-id']));
  expectedRecords++;
  return { status: res.statusCode, bytes, text };
}

test('an upstream that sends a 50 MB SSE line, or a line without end, is passed through without being held', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  // Resets the peak (VmHWM) to the current size: what follows is measured on its own.
  writeFileSync(`/proc/${warden.proc.pid}/clear_refs`, '5');
  const before = rssMiB().now;
  const started = performance.now();
  const huge = await streamChat('huge-line');
  assert.equal(huge.status, 200);
  assert.ok(huge.bytes > HUGE_LINE_BYTES, `got ${huge.bytes} bytes`);
  assert.match(huge.text, /"content":"before"/, 'the event before the huge line came through parsed');
  const endless = await streamChat('endless-line', 200 * 1024 * 1024);
  assert.ok(endless.bytes >= 200 * 1024 * 1024);
  // 250 MB went through. Holding a line (or re-copying it per chunk) shows in memory and time.
  const grew = rssMiB().peak - before;
  assert.ok(grew < 150, `peak RSS grew by ${Math.round(grew)} MiB`);
  assert.ok(performance.now() - started < 15_000, `took ${Math.round(performance.now() - started)} ms`);
});

test('upstream events that are not objects or not UTF-8, and JSON 100k deep, pass through', async () => {
  const odd = await streamChat('odd-events');
  assert.equal(odd.status, 200);
  assert.match(odd.text, /data: null\n\n[\s\S]*"content":"ok"[\s\S]*data: \[DONE\]/);
  for (const kind of ['deep-json', 'bad-utf8-json']) {
    const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', [HOSTILE_HEADER]: kind }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, `${kind}: ${text.slice(0, 200)}`);
    answeredIds.add(String(res.headers['x-warden-request-id']));
    expectedRecords++;
  }
});

test('after it all, Warden is up and serving, and its audit log verifies with every record', async () => {
  assert.equal(warden.proc.exitCode, null, 'the process is still running');
  assert.doesNotThrow(() => process.kill(warden.proc.pid!, 0));
  assert.equal((await request(`${warden.adminUrl}/healthz`)).statusCode, 200);
  const normal = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'still there?' }] }),
  });
  assert.equal(normal.statusCode, 200);
  assert.match(await normal.body.text(), /You said: still there\?/);
  expectedRecords++;

  const internal = warden.lines.filter((l) => /"msg":"internal error"|uncaught|unhandled/i.test(l));
  assert.deepEqual(internal, [], 'no request ended in an internal error');

  warden.proc.kill('SIGTERM');
  assert.equal(await warden.exited, 0);
  const db = join(dataDir, 'audit.db');
  const verify = spawnSync(process.execPath, [WARDEN_BIN, 'audit', 'verify', '--db', db], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
  // log_open and log_close, and one record per request that reached Warden.
  const total = Number(/, (\d+) records,/.exec(verify.stdout)?.[1]);
  const rows = new Database(db, { readonly: true }).prepare('SELECT event, body FROM records ORDER BY seq').all() as { event: string; body: string }[];
  const calls = rows.filter((r) => r.event !== 'log_open' && r.event !== 'log_close');
  assert.equal(total, rows.length);
  assert.equal(calls.length, expectedRecords, `records by event: ${JSON.stringify(calls.map((r) => [r.event, JSON.parse(r.body).status, JSON.parse(r.body).path?.slice(0, 40)]))}`);
  const recorded = new Set(calls.map((r) => JSON.parse(r.body).request_id));
  for (const id of answeredIds) assert.ok(recorded.has(id), `request ${id} was answered but not recorded`);
});

test('the client deadlines take positive milliseconds, from a flag or the environment', () => {
  for (const [args, env] of [[['--client-header-timeout-ms', 'soon'], {}], [[], { WARDEN_CLIENT_BODY_TIMEOUT_MS: '-5' }]] as const) {
    const r = spawnSync(process.execPath, [WARDEN_BIN, 'proxy', '--policy', 'nope.yaml', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--client-(header|body)-timeout-ms must be a positive number of milliseconds/);
  }
});
