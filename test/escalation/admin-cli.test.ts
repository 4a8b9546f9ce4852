// The escalation queue's admin API and the `warden escalations` CLI: JSON errors with stable codes,
// model answers decided by candidate index, exit codes, and decisions written to the file with
// --data-dir while the sidecar is down (the call sent again to the next sidecar is released at once).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startJsonTool, warden, type JsonTool } from '../helpers/escalation.ts';
import { startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

let tool: JsonTool;
let policy: string;
// The reviewer's credential: read by each sidecar at start, and by the CLI (a child process inheriting it).
const ADMIN_TOKEN = 'adm-7Hq2xV9kLp4Rt8Wz';
process.env.WARDEN_ADMIN_TOKEN = ADMIN_TOKEN;

before(async () => {
  tool = await startJsonTool('{"refund_id":"re_9Qw2x","status":"pending"}');
  policy = tempFile('p.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: review-agent, version: 2.0.0 }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:9/v1" }
tools:
  issue_refund:
    approval: human
    args: { type: object, required: [order_id, amount], properties: { order_id: { type: string }, amount: { type: number, maximum: 100 } } }
    http: { url: "${tool.url}/refunds" }
`);
});
after(() => tool.close());

async function post(w: Sidecar, path: string, body: string) {
  const res = await request(`${w.adminUrl}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` } });
  return { status: res.statusCode, json: (await res.body.json()) as any };
}

test('admin API: list, show, and decisions with JSON errors (404 unknown, 409 decided, 400 invalid); model answers by --choice', async () => {
  const w = await startWarden(policy);
  try {
    const q = w.ctx.services.escalations;
    const missing = await request(`${w.adminUrl}/escalations/esc_nosuchthing00`);
    assert.equal(missing.statusCode, 404);
    assert.equal(((await missing.body.json()) as any).error.code, 'WARDEN_ERR_ESCALATION_NOT_FOUND');
    assert.equal((await request(`${w.adminUrl}/escalations?state=maybe`)).statusCode, 400);

    const tool = q.open({ kind: 'tool_call', key: 't', agent: 'review-agent', requestId: 'r1', tool: 'issue_refund', args: { order_id: 'ORD-1', amount: 80 }, reason: 'approval_required', timeoutMs: 60_000 });
    const invalid = await post(w, `/escalations/${tool.id}/approve`, JSON.stringify({ args: { order_id: 'ORD-1', amount: 900 } }));
    assert.deepEqual([invalid.status, invalid.json.error.code], [400, 'WARDEN_ERR_INVALID_APPROVAL']);
    assert.match(invalid.json.error.message, /\/amount must be <= 100/, 'checked against the running policy\'s schema');
    assert.equal((await post(w, `/escalations/${tool.id}/approve`, '{not json')).status, 400);
    const rejected = await post(w, `/escalations/${tool.id}/reject`, JSON.stringify({ by: 'erin', note: 'too much' }));
    assert.deepEqual([rejected.status, rejected.json.state, rejected.json.decision.by], [200, 'rejected', 'erin']);
    const twice = await post(w, `/escalations/${tool.id}/approve`, '{}');
    assert.deepEqual([twice.status, twice.json.error.code], [409, 'WARDEN_ERR_ESCALATION_DECIDED']);

    // A parallel jury's disagreement, as the retry stage opens it: a person picks candidate 1.
    const candidates = [{ text: 'Refunds take 5 days.', votes: 2 }, { text: 'Refunds take 10 days.', votes: 1 }];
    const jury = q.open({ kind: 'model_answer', key: 'model:r2', agent: 'review-agent', requestId: 'r2', candidates, reason: 'the jury agreed at 0.67', timeoutMs: 60_000 });
    const decision = q.wait(jury.id, new AbortController().signal);
    const listed = await warden('escalations', 'list', '--state', 'pending', '--admin', w.adminUrl);
    assert.equal(listed.code, 0, listed.err);
    assert.match(listed.out, new RegExp(`^${jury.id}\\s+pending\\s+model_answer\\s+review-agent\\s+-\\s+\\d+s left\\s+the jury agreed at 0\\.67$`, 'm'));
    const shown = JSON.parse((await warden('escalations', 'show', jury.id, '--admin', w.adminUrl)).out);
    assert.deepEqual(shown.candidates, candidates);
    const bad = await warden('escalations', 'approve', jury.id, '--choice', '7', '--admin', w.adminUrl);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /choice must be a candidate's index, 0 to 1.*WARDEN_ERR_INVALID_APPROVAL/);
    const ok = await warden('escalations', 'approve', jury.id, '--choice', '1', '--by', 'frank', '--admin', w.adminUrl);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, new RegExp(`^approved ${jury.id} \\(candidate 1\\)`));
    assert.deepEqual(await decision, { state: 'approved', args: undefined, argsHash: undefined, edited: undefined, choice: 1, by: 'frank', note: undefined });
    const json = (await warden('escalations', 'list', '--state', 'approved', '--json', '--admin', w.adminUrl)).out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(json.map((e) => [e.id, e.decision.choice]), [[jury.id, 1]]);
  } finally {
    await w.shutdown();
  }
});

test('CLI usage errors exit 2; an unreachable sidecar exits 2 naming --admin and --data-dir', async () => {
  for (const args of [['approve'], ['approve', 'esc_a', 'esc_b'], ['approve', 'esc_a', '--args', '{nope'], ['list', '--state', 'sideways'], ['frob'], ['reject', 'esc_a', '--choice', '1']]) {
    const r = await warden('escalations', ...args, '--admin', 'http://127.0.0.1:9');
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
  }
  const down = await warden('escalations', 'list', '--admin', 'http://127.0.0.1:9');
  assert.equal(down.code, 2);
  assert.match(down.err, /cannot reach the sidecar's admin API at http:\/\/127\.0\.0\.1:9 .*--admin URL.*--data-dir DIR/);
});

test('approved on the file with --data-dir while the sidecar is down: the call sent again is released at once', async () => {
  const dataDir = tempDataDir();
  const first = await startWarden(policy, false, dataDir);
  const send = (w: Sidecar) => request(`${w.trafficUrl}/tools/issue_refund`, {
    method: 'POST', body: JSON.stringify({ order_id: 'ORD-42', amount: 99 }), headers: { 'content-type': 'application/json', 'x-warden-session': 's9' },
  }).then(async (r) => ({ status: r.statusCode, outcome: r.headers['x-warden-tool-outcome'], json: (await r.body.json()) as any }));
  const cut = send(first);
  let id = '';
  await waitFor(() => !!(id = first.ctx.services.escalations.list({ state: 'pending' })[0]?.id ?? ''), 5_000, 'a held call');
  await first.shutdown();
  assert.equal((await cut).status, 503);

  const edited = await warden('escalations', 'approve', id, '--data-dir', dataDir, '--args', '{"order_id":"ORD-42","amount":120}');
  assert.equal(edited.code, 1, 'checked against the schema saved with the escalation');
  assert.match(edited.err, /\/amount must be <= 100/);
  const approved = await warden('escalations', 'approve', id, '--data-dir', dataDir, '--args', '{"order_id":"ORD-42","amount":60}', '--by', 'gina');
  assert.equal(approved.code, 0, approved.err);

  const second = await startWarden(policy, false, dataDir);
  try {
    const r = await send(second);
    assert.deepEqual([r.status, r.outcome, r.json.refund_id], [200, 'ok', 're_9Qw2x']);
    assert.deepEqual(tool.received.at(-1), { order_id: 'ORD-42', amount: 60 });
    // The approval was for that one call: the same call again is a new escalation.
    const again = send(second);
    await waitFor(() => second.ctx.services.escalations.list({ state: 'pending' }).length === 1, 5_000, 'a new escalation');
    const fresh = second.ctx.services.escalations.list({ state: 'pending' })[0];
    assert.notEqual(fresh.id, id);
    second.ctx.services.escalations.reject(fresh.id);
    assert.equal((await again).outcome, 'rejected');
  } finally {
    await second.shutdown();
  }
});
