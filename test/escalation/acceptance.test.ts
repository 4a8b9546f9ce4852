// The acceptance test for human escalation, black-box over real sockets: three calls to an
// `approval: human` HTTP tool are held; the sidecar restarts while they are pending (the held requests
// get a 503, the agent sends them again to the new sidecar, and they attach to their escalations);
// then the real CLI approves the first with edited arguments (the tool receives exactly those), and
// rejects the second; the third times out at its original deadline and follows the policy's fallback.
// The queue's metrics and the audit log tell the same story.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { startJsonTool, warden } from '../helpers/escalation.ts';
import { startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

/** The payments service: records every refund request it receives. */
function startPayments() {
  return startJsonTool((args, n) => JSON.stringify({ refund_id: `re_${n}x7Kq2`, order_id: args.order_id, amount: args.amount, status: 'pending' }));
}

const dispatcher = new Agent({ connections: 16 });
// The reviewer's admin token: the sidecars read it at start, and the CLI (a child process) inherits it.
process.env.WARDEN_ADMIN_TOKEN = 'adm-acceptance-3kR9vQ2m';

/** POST /tools/issue_refund as the agent does; resolves when Warden answers. */
async function refund(w: Sidecar, n: number, args: object) {
  const res = await request(`${w.trafficUrl}/tools/issue_refund`, {
    method: 'POST', dispatcher, body: JSON.stringify(args),
    headers: { 'content-type': 'application/json', 'x-warden-session': 'conv-7', 'x-warden-tool-call-id': `call_${n}` },
  });
  const text = await res.body.text();
  return { status: res.statusCode, outcome: res.headers['x-warden-tool-outcome'], json: JSON.parse(text), at: Date.now() };
}

async function admin(w: Sidecar, path: string): Promise<any> {
  return (await request(`${w.adminUrl}${path}`, { dispatcher })).body.json();
}

async function metric(w: Sidecar, series: string): Promise<number | undefined> {
  const text = await (await request(`${w.adminUrl}/metrics`, { dispatcher })).body.text();
  const m = new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

test('held tool calls survive a restart; the CLI approves one with edited arguments and rejects another; the third times out into the fallback', async () => {
  const payments = await startPayments();
  const dataDir = tempDataDir();
  const policy = tempFile('refunds.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: refund-agent, version: 1.0.0, scopes: [finance] }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:9/v1" }
tools:
  issue_refund:
    scope: finance
    approval: human
    args:
      type: object
      additionalProperties: false
      required: [order_id, amount]
      properties:
        order_id: { type: string, pattern: "^ORD-[0-9]{6}$" }
        amount: { type: number, exclusiveMinimum: 0, maximum: 100 }
    http: { url: "${payments.url}/refunds", timeoutMs: 3000 }
escalation: { timeoutMs: 4000, onTimeout: fail, webhook: "" }
`);
  const calls = [{ order_id: 'ORD-100001', amount: 80 }, { order_id: 'ORD-100002', amount: 30 }, { order_id: 'ORD-100003', amount: 10 }];

  // First sidecar: three calls held, then a restart while they wait.
  const first = await startWarden(policy, false, dataDir);
  const cut = calls.map((args, i) => refund(first, i + 1, args));
  let pending: any[] = [];
  await waitFor(async () => (pending = (await admin(first, '/escalations?state=pending')).escalations).length === 3, 5_000, 'three held calls');
  const ids = calls.map((c) => pending.find((e) => e.args.order_id === c.order_id).id);
  assert.equal(new Set(ids).size, 3);
  assert.deepEqual(pending.map((e) => [e.kind, e.tool, e.agent, e.session]), Array(3).fill(['tool_call', 'issue_refund', 'refund-agent', 'conv-7']));
  await first.shutdown();
  for (const r of await Promise.all(cut)) {
    assert.equal(r.status, 503, 'a held call is answered at shutdown, so the agent can send it again');
    assert.equal(r.json.error.code, 'WARDEN_ERR_SHUTTING_DOWN');
  }
  assert.equal(payments.received.length, 0);

  // Second sidecar on the same data directory: the calls sent again attach to their escalations.
  const second = await startWarden(policy, false, dataDir);
  try {
    const held = calls.map((args, i) => refund(second, i + 1, args));
    await waitFor(async () => (await admin(second, '/status')).inFlight === 3, 5_000, 'the three calls held again');
    const listed = (await admin(second, '/escalations')).escalations;
    assert.deepEqual(listed.map((e: any) => e.id).sort(), [...ids].sort(), 'no new escalation: each call found its own');
    const deadline3 = Date.parse(listed.find((e: any) => e.id === ids[2]).deadline);

    const edited = { order_id: 'ORD-100001', amount: 50 };
    const [approved, rejected] = await Promise.all([
      warden('escalations', 'approve', ids[0], '--args', JSON.stringify(edited), '--by', 'alice', '--note', 'half now, rest after return', '--admin', second.adminUrl),
      warden('escalations', 'reject', ids[1], '--by', 'bob', '--note', 'duplicate of ORD-100001', '--admin', second.adminUrl),
    ]);
    assert.equal(approved.code, 0, approved.err);
    assert.match(approved.out, new RegExp(`^approved ${ids[0]} \\(arguments sha256 [0-9a-f]{16}…, edited\\)`));
    assert.equal(rejected.code, 0, rejected.err);
    assert.match(rejected.out, new RegExp(`^rejected ${ids[1]}`));

    const [one, two, three] = await Promise.all(held);
    // 1: released with the edited arguments, exactly; the tool's own answer comes back.
    assert.deepEqual([one.status, one.outcome], [200, 'ok']);
    assert.deepEqual(payments.received, [edited]);
    assert.deepEqual([one.json.order_id, one.json.amount], ['ORD-100001', 50]);
    // 2: rejected, as the degradation protocol's refusal.
    assert.deepEqual([two.status, two.outcome, two.json.error.type, two.json.error.code, two.json.error.escalation], [200, 'rejected', 'tool_blocked', 'WARDEN_ERR_ESCALATION_REJECTED', ids[1]]);
    assert.match(two.json.error.message, /rejected the call .*by bob.*duplicate of ORD-100001/);
    assert.match(two.json.error.instruction, /rejected it\. Do not retry/);
    // 3: nobody decided; at the deadline set before the restart, onTimeout: fail.
    assert.deepEqual([three.status, three.outcome, three.json.error.type, three.json.error.code], [200, 'escalation_timeout', 'tool_blocked', 'WARDEN_ERR_ESCALATION_TIMEOUT']);
    assert.ok(three.at >= deadline3, 'not before the original deadline');
    assert.equal(payments.received.length, 1, 'neither the rejected nor the timed-out refund reached the tool');

    // A decision is final; the CLI says so with exit code 1.
    const again = await warden('escalations', 'approve', ids[1], '--admin', second.adminUrl);
    assert.equal(again.code, 1);
    assert.match(again.err, /already rejected.*WARDEN_ERR_ESCALATION_DECIDED/);
    const shown = JSON.parse((await warden('escalations', 'show', ids[0], '--admin', second.adminUrl)).out);
    assert.deepEqual([shown.state, shown.decision.by, shown.decision.args, shown.decision.edited], ['approved', 'alice', edited, true]);

    for (const [state, n] of [['pending', 0], ['approved', 1], ['rejected', 1], ['timed_out', 1]] as const) {
      assert.equal(await metric(second, `warden_escalations{state="${state}"}`), n, state);
    }
    assert.equal(await metric(second, 'warden_escalation_wait_seconds_count{kind="tool_call",state="approved"}'), 1);
    assert.equal(await metric(second, 'warden_tool_calls_total{tool="issue_refund",outcome="rejected"}'), 1);
  } finally {
    await second.shutdown();
    await payments.close();
  }

  // The audit log: each escalation opened once (attaching is not opening), and each decision.
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  try {
    const events = (db.prepare("SELECT body FROM records WHERE event = 'escalation' ORDER BY seq").all() as { body: string }[]).map((r) => JSON.parse(r.body));
    assert.deepEqual(events.filter((e) => e.action === 'opened').map((e) => e.escalation.id).sort(), [...ids].sort());
    const decided = Object.fromEntries(events.filter((e) => e.action !== 'opened').map((e) => [e.escalation.id, e]));
    assert.deepEqual([decided[ids[0]].action, decided[ids[0]].decision.by, decided[ids[0]].decision.edited, decided[ids[0]].decision.args_hash],
      ['approved', 'alice', true, createHash('sha256').update('{"amount":50,"order_id":"ORD-100001"}').digest('hex')]);
    assert.deepEqual([decided[ids[1]].action, decided[ids[1]].decision.note], ['rejected', 'duplicate of ORD-100001']);
    assert.equal(decided[ids[2]].action, 'timed_out');
    assert.deepEqual(events[0].agent, { id: 'refund-agent', version: '1.0.0' });
    // The released call's own record carries the escalation in its decisions.
    const calls1 = (db.prepare("SELECT body FROM records WHERE event = 'tool_call'").all() as { body: string }[]).map((r) => JSON.parse(r.body))
      .filter((r) => r.decisions?.some((d: any) => d.stage === 'escalation' && d.decision === 'approved'));
    assert.equal(calls1.length, 1);
    assert.deepEqual(calls1[0].decisions.filter((d: any) => d.stage === 'escalation').map((d: any) => d.decision), ['attached', 'approved']);
    assert.equal(calls1[0].tool.escalation, ids[0]);
  } finally {
    db.close();
    await dispatcher.close();
  }
});
