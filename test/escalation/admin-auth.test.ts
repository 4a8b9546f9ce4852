// Escalation decisions need the reviewer's admin token: the agent shares the task's localhost and
// can reach the admin listener, so without the token (401), with a wrong one (401), or on a sidecar
// that has none (403), a held call stays held. Reads stay open. The token comes from
// WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE (watched), the CLI sends it, and it appears in no
// log line or data file. Malformed percent-escapes in admin paths are a 404 (or 400), never a 500.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startJsonTool, warden, type JsonTool } from '../helpers/escalation.ts';
import { spawnWarden, startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

const TOKEN = 'adm-Zr4pW8qN2vK6xT1s';
let tool: JsonTool;
let policy: string;

before(async () => {
  tool = await startJsonTool('{"refund_id":"re_1","status":"pending"}');
  policy = tempFile('p.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: refund-agent, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:9/v1" }
tools:
  issue_refund: { approval: human, http: { url: "${tool.url}/refunds" } }
escalation: { timeoutMs: 30000 }
`);
});
after(() => tool.close());

/** Runs `fn` with the admin-token variables set as given (undefined: unset), restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[k];
      else process.env[k] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** The agent's refund, held for a person; `settled` turns true once Warden answers it. */
function holdRefund(trafficUrl: string, n: number) {
  const call = { settled: false, answer: undefined as unknown as Promise<{ status: number; outcome: unknown }> };
  call.answer = request(`${trafficUrl}/tools/issue_refund`, {
    method: 'POST', body: JSON.stringify({ order_id: `ORD-${n}`, amount: 900 }), headers: { 'content-type': 'application/json', 'x-warden-session': `s${n}` },
  }).then(async (r) => {
    await r.body.text();
    call.settled = true;
    return { status: r.statusCode, outcome: r.headers['x-warden-tool-outcome'] };
  });
  return call;
}

async function pendingId(adminUrl: string): Promise<string> {
  let id = '';
  await waitFor(async () => {
    const list = (await (await request(`${adminUrl}/escalations?state=pending`)).body.json()) as any;
    return !!(id = list.escalations[0]?.id ?? '');
  }, 5_000, 'a held call');
  return id;
}

async function decide(adminUrl: string, id: string, action: 'approve' | 'reject', authorization?: string) {
  const res = await request(`${adminUrl}/escalations/${id}/${action}`, {
    method: 'POST', body: '{"by":"mallory"}', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
  });
  return { status: res.statusCode, challenge: res.headers['www-authenticate'], json: (await res.body.json()) as any };
}

async function adminFailures(adminUrl: string): Promise<number> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text();
  return Number(/^warden_auth_failures_total\{reason="admin"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

test('a decision without the admin token, or with a wrong one, is a 401 and the call stays held; the CLI sends the token', () => withEnv({ WARDEN_ADMIN_TOKEN: TOKEN, WARDEN_ADMIN_TOKEN_FILE: undefined }, async () => {
  const w = await startWarden(policy);
  try {
    const held = holdRefund(w.trafficUrl, 1);
    const id = await pendingId(w.adminUrl);
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN]) {
      for (const action of ['approve', 'reject'] as const) {
        const r = await decide(w.adminUrl, id, action, authorization);
        assert.deepEqual([r.status, r.json.error.code, r.json.error.type], [401, 'WARDEN_ERR_ADMIN_UNAUTHORIZED', 'warden_unauthorized'], `${action} with ${authorization}`);
        assert.match(String(r.challenge ?? ''), /^Bearer /);
      }
    }
    assert.equal(await adminFailures(w.adminUrl), 10);
    // Refused before the id is looked up: an unknown id is no different.
    assert.equal((await decide(w.adminUrl, 'esc_nosuchthing00', 'approve')).status, 401);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(held.settled, false, 'the call is still held');
    assert.equal(w.ctx.services.escalations.get(id)!.state, 'pending');
    assert.equal(tool.received.length, 0);

    // Reads stay open on the admin listener.
    const shown = await request(`${w.adminUrl}/escalations/${id}`);
    assert.deepEqual([shown.statusCode, ((await shown.body.json()) as any).state], [200, 'pending']);

    // The CLI: a wrong --token exits 2 with the code; the right one (flag, or the inherited env) decides.
    const wrong = await warden('escalations', 'approve', id, '--token', 'not-the-token', '--admin', w.adminUrl);
    assert.equal(wrong.code, 2, wrong.err);
    assert.match(wrong.err, /admin token sent is not valid.*WARDEN_ERR_ADMIN_UNAUTHORIZED/);
    assert.doesNotMatch(wrong.err + wrong.out, /not-the-token/);
    const ok = await warden('escalations', 'approve', id, '--token', TOKEN, '--by', 'carol', '--admin', w.adminUrl);
    assert.equal(ok.code, 0, ok.err);
    assert.deepEqual(await held.answer, { status: 200, outcome: 'ok' });
    assert.equal(await adminFailures(w.adminUrl), 12);

    const again = holdRefund(w.trafficUrl, 2);
    const second = await pendingId(w.adminUrl);
    const viaEnv = await warden('escalations', 'reject', second, '--admin', w.adminUrl);
    assert.equal(viaEnv.code, 0, viaEnv.err);
    assert.equal((await again.answer).outcome, 'rejected');
  } finally {
    await w.shutdown();
  }
}));

test('with no admin token configured, decisions are a 403 naming WARDEN_ADMIN_TOKEN; --data-dir on the data volume still decides', () => withEnv({ WARDEN_ADMIN_TOKEN: undefined, WARDEN_ADMIN_TOKEN_FILE: undefined }, async () => {
  const dataDir = tempDataDir();
  const w = await startWarden(policy, false, dataDir);
  try {
    const held = holdRefund(w.trafficUrl, 3);
    const id = await pendingId(w.adminUrl);
    for (const authorization of [undefined, `Bearer ${TOKEN}`, 'Bearer ']) {
      const r = await decide(w.adminUrl, id, 'approve', authorization);
      assert.deepEqual([r.status, r.json.error.code, r.json.error.type], [403, 'WARDEN_ERR_ADMIN_TOKEN_REQUIRED', 'warden_forbidden']);
      assert.match(r.json.error.message, /set WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE.*--data-dir/);
    }
    assert.equal(await adminFailures(w.adminUrl), 0, 'a sidecar without a token counts no failed guesses');
    const cli = await warden('escalations', 'approve', id, '--admin', w.adminUrl);
    assert.equal(cli.code, 2);
    assert.match(cli.err, /WARDEN_ADMIN_TOKEN.*WARDEN_ERR_ADMIN_TOKEN_REQUIRED/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(held.settled, false, 'the call is still held');
    assert.equal(w.ctx.services.escalations.get(id)!.state, 'pending');

    // Whoever can write the sidecar's data volume (never the agent's container) decides on the file.
    const direct = await warden('escalations', 'approve', id, '--data-dir', dataDir, '--by', 'dana');
    assert.equal(direct.code, 0, direct.err);
    assert.deepEqual(await held.answer, { status: 200, outcome: 'ok' });
  } finally {
    await w.shutdown();
  }
}));

test('WARDEN_ADMIN_TOKEN_FILE: read at start, watched for rotation; unreadable, decisions are a 403 naming it and /status turns yellow', async () => {
  const file = tempFile('admin-token', `${TOKEN}\n`);
  await withEnv({ WARDEN_ADMIN_TOKEN: undefined, WARDEN_ADMIN_TOKEN_FILE: file }, async () => {
    const w = await startWarden(policy, true);
    try {
      const q = w.ctx.services.escalations;
      const open = (key: string) => q.open({ kind: 'tool_call', key, agent: 'refund-agent', requestId: key, tool: 'issue_refund', args: {}, reason: 'approval_required', timeoutMs: 60_000 });
      assert.equal((await decide(w.adminUrl, open('a').id, 'approve', `Bearer ${TOKEN}`)).status, 200);
      writeFileSync(file, 'adm-rotated-Q8m3Lx5Vn2\n');
      // Probed on an unknown id: 404 while the token is accepted, 401 once the rotation is read.
      await waitFor(async () => (await decide(w.adminUrl, 'esc_probe', 'reject', `Bearer ${TOKEN}`)).status === 401, 5_000, 'the old token refused');
      assert.equal((await decide(w.adminUrl, open('b').id, 'reject', 'Bearer adm-rotated-Q8m3Lx5Vn2')).status, 200);
      const status = (await (await request(`${w.adminUrl}/status`)).body.json()) as any;
      assert.equal(status.state, 'green', status.reasons.join('; '));
    } finally {
      await w.shutdown();
    }
  });
  await withEnv({ WARDEN_ADMIN_TOKEN: undefined, WARDEN_ADMIN_TOKEN_FILE: join(file, '..', 'missing') }, async () => {
    const w = await startWarden(policy);
    try {
      const id = w.ctx.services.escalations.open({ kind: 'tool_call', key: 'c', agent: 'refund-agent', requestId: 'c', tool: 'issue_refund', args: {}, reason: 'approval_required', timeoutMs: 60_000 }).id;
      const r = await decide(w.adminUrl, id, 'approve', `Bearer ${TOKEN}`);
      assert.deepEqual([r.status, r.json.error.code], [403, 'WARDEN_ERR_ADMIN_TOKEN_REQUIRED']);
      assert.match(r.json.error.message, /cannot read WARDEN_ADMIN_TOKEN_FILE .*missing \(ENOENT\)/);
      const status = (await (await request(`${w.adminUrl}/status`)).body.json()) as any;
      assert.equal(status.state, 'yellow');
      assert.ok(status.reasons.some((s: string) => /admin token: cannot read WARDEN_ADMIN_TOKEN_FILE/.test(s)), status.reasons.join('; '));
    } finally {
      await w.shutdown();
    }
  });
});

test('malformed percent-escapes in admin paths are a 404 (escalations) or a 400 (memory), never a 500', () => withEnv({ WARDEN_ADMIN_TOKEN: TOKEN, WARDEN_ADMIN_TOKEN_FILE: undefined }, async () => {
  const w = await startWarden(policy);
  try {
    for (const path of ['/escalations/%zz', '/escalations/%E0%A4%A']) {
      const got = await request(`${w.adminUrl}${path}`);
      assert.deepEqual([got.statusCode, ((await got.body.json()) as any).error.code], [404, 'WARDEN_ERR_ESCALATION_NOT_FOUND'], path);
      for (const action of ['approve', 'reject'] as const) {
        const r = await decide(w.adminUrl, path.slice('/escalations/'.length), action, `Bearer ${TOKEN}`);
        assert.deepEqual([r.status, r.json.error.code], [404, 'WARDEN_ERR_ESCALATION_NOT_FOUND'], `${action} ${path}`);
      }
    }
    for (const method of ['GET', 'DELETE'] as const) {
      const mem = await request(`${w.adminUrl}/memory/%zz`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
      assert.deepEqual([mem.statusCode, ((await mem.body.json()) as any).error.code], [400, 'WARDEN_ERR_INVALID_REQUEST'], method);
    }
  } finally {
    await w.shutdown();
  }
}));

test('the admin token, right or wrong, is in no log line and no data file', async () => {
  const dataDir = tempDataDir();
  const guess = 'adm-guess-Hy7Dc3Pk9Wm1';
  const w = await spawnWarden(policy, { WARDEN_ADMIN_TOKEN: TOKEN, WARDEN_ADMIN_TOKEN_FILE: '', WARDEN_DATA_DIR: dataDir, WARDEN_LOG_LEVEL: 'debug' });
  try {
    const held = holdRefund(w.trafficUrl, 4);
    const id = await pendingId(w.adminUrl);
    assert.equal((await decide(w.adminUrl, id, 'approve', `Bearer ${guess}`)).status, 401);
    assert.equal((await decide(w.adminUrl, id, 'approve', `Bearer ${TOKEN}`)).status, 200);
    assert.equal((await held.answer).outcome, 'ok');
  } finally {
    assert.equal(await w.stop(), 0);
  }
  const logs = w.lines.join('\n');
  assert.match(logs, /escalation decided/, 'the decision was logged');
  const files = readdirSync(dataDir, { withFileTypes: true }).filter((f) => f.isFile()).map((f) => readFileSync(join(dataDir, f.name)).toString('latin1'));
  for (const secret of [TOKEN, guess]) {
    assert.ok(!logs.includes(secret), 'not in the log');
    assert.ok(files.every((f) => !f.includes(secret)), 'not in a data file');
  }
});
