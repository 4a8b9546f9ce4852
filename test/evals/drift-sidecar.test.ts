// Behavioural pacts inside a running sidecar, end to end: a certified baseline, a simulated model
// update that degrades one capability (90% → 70%), the drift decision, a rollback that pins the old
// snapshot, and a silent alias move seen in live traffic that starts an evaluation by itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditRecords } from '../helpers/audit.ts';
import { startWarden, tempDataDir } from '../helpers/warden.ts';
import { admin, driftRig, type DriftRig } from './helpers.ts';

const ADMIN_TOKEN = 'drift-test-admin-token-0123456789';
const STABLE = { returns: 0.9, orders: 0.9, scope: 0.9 };

let saved: string | undefined;
before(() => {
  saved = process.env.WARDEN_ADMIN_TOKEN;
  process.env.WARDEN_ADMIN_TOKEN = ADMIN_TOKEN;
});
after(() => {
  if (saved === undefined) delete process.env.WARDEN_ADMIN_TOKEN;
  else process.env.WARDEN_ADMIN_TOKEN = saved;
});

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a model update that takes one capability from 90% to 70% is confirmed drift on it and no other; rollback to the pin restores it', async (t) => {
  const rig: DriftRig = await driftRig({ old: STABLE, new: { ...STABLE, orders: 0.7 } });
  const dataDir = tempDataDir();
  const warden: Sidecar = await startWarden(rig.policyFile, false, dataDir);
  t.after(async () => {
    await warden.shutdown();
    await rig.close();
  });
  const url = warden.adminUrl;
  // Actions need the admin token: the agent shares the task's localhost.
  assert.equal((await admin(url, 'POST', '/evals/baseline')).status, 401);
  const certified = await admin(url, 'POST', '/evals/baseline', ADMIN_TOKEN, { by: 'test' });
  assert.equal(certified.status, 200, JSON.stringify(certified.json));
  assert.equal(certified.json.model.served, 'snap-old');
  // 10 cases × 5 trials × 3 looks, all up front.
  assert.equal(certified.json.capabilities[0].cases[0].trials, 15);
  t.diagnostic(`baseline ${certified.json.baseline}: ${certified.json.capabilities.map((c: any) => `${c.name} ${c.value}`).join(', ')}; MDE ${JSON.stringify(certified.json.mde)}`);

  rig.behaviour.moveAlias('gpt-4o', 'snap-new');
  const run = await admin(url, 'POST', '/evals/run', ADMIN_TOKEN);
  assert.equal(run.status, 200);
  const caps = Object.fromEntries(run.json.report.capabilities.map((c: any) => [c.name, c]));
  t.diagnostic(`after the update: ${run.json.report.capabilities.map((c: any) => `${c.name} ${c.state} Δ=${c.delta} [${c.interval}] p=${c.p.toExponential(2)} n=${c.n} looks=${c.looks}`).join('; ')}`);
  assert.equal(caps.orders.state, 'drift');
  assert.ok(caps.orders.delta <= -0.05, `orders fell: ${caps.orders.delta}`);
  assert.ok(caps.orders.interval[1] < 0, 'the interval excludes 0');
  assert.notEqual(caps.returns.state, 'drift');
  assert.notEqual(caps.scope.state, 'drift');
  assert.equal(run.json.report.served.model, 'snap-new');

  // The drift is everywhere an operator looks: /status, metrics, the history and the audit log.
  const status = await admin(url, 'GET', '/status');
  assert.notEqual(status.json.state, 'green');
  assert.match(status.json.reasons.join('\n'), /behavioural drift confirmed .*orders/);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /warden_drift_deviation\{capability="orders"\} -0\.\d+/);
  assert.match(metrics, /warden_trust_score\{agent="drift-agent"\} 0\.\d+/);
  const history = await admin(url, 'GET', '/evals/history?kind=drift');
  assert.equal(history.json.history.length, 1);
  await waitFor('the drift audit record', () => auditRecords(dataDir, 'drift').length === 1 || undefined);
  // Each evaluation leaves an audit record with the trust score it left, for the collector's history.
  const [evaluation] = auditRecords(dataDir, 'evaluation');
  assert.equal(evaluation.state, 'drift');
  assert.deepEqual(evaluation.drifted, ['orders']);
  assert.ok(evaluation.trust_score > 0 && evaluation.trust_score < 1, `trust_score ${evaluation.trust_score}`);

  const rolled = await admin(url, 'POST', '/evals/rollback', ADMIN_TOKEN, { by: 'oncall', note: 'orders regressed' });
  assert.equal(rolled.status, 200, JSON.stringify(rolled.json));
  assert.deepEqual({ alias: rolled.json.alias, snapshot: rolled.json.snapshot }, { alias: 'gpt-4o', snapshot: 'snap-old' });
  // The pinning stage sends the old snapshot from the next call on, the agent's calls included.
  const agent = new OpenAI({ apiKey: 'unused', baseURL: `${warden.trafficUrl}/v1` });
  const reply = await agent.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'orders question number 3' }] });
  assert.equal(reply.model, 'snap-old');
  // The rollback's own evaluation shows the capability back where the baseline had it.
  await warden.ctx.services.pacts!.idle();
  const after = await admin(url, 'GET', '/evals');
  const orders = after.json.lastReport.capabilities.find((c: any) => c.name === 'orders');
  t.diagnostic(`after the rollback: orders ${orders.state}, ${orders.candidate} vs baseline ${orders.baseline}`);
  assert.equal(after.json.last.reason, 'rollback');
  assert.notEqual(orders.state, 'drift');
  assert.ok(Math.abs(orders.candidate - orders.baseline) < 0.1);
  assert.equal(after.json.openDrift, undefined);
  assert.deepEqual(after.json.pins.map((p: any) => [p.alias, p.snapshot]), [['gpt-4o', 'snap-old']]);
  const kinds = (await admin(url, 'GET', '/evals/history')).json.history.map((h: any) => h.kind).reverse();
  assert.deepEqual(kinds, ['baseline_certified', 'evaluation', 'drift', 'rollback', 'evaluation']);
});

test('a silent model change (same alias, new served model) starts an evaluation without waiting for the schedule', async (t) => {
  const rig = await driftRig({ old: STABLE, new: STABLE, evals: 'every: 24h, onModelChange: true' });
  const warden = await startWarden(rig.policyFile);
  t.after(async () => {
    await warden.shutdown();
    await rig.close();
  });
  const pacts = warden.ctx.services.pacts!;
  await pacts.certify('test');
  const agent = new OpenAI({ apiKey: 'unused', baseURL: `${warden.trafficUrl}/v1` });
  const ask = () => agent.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello there' }] });
  // The model the baseline was certified on: nothing to evaluate.
  assert.equal((await ask()).model, 'snap-old');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(pacts.last, undefined, 'no evaluation for the certified model');
  const before = rig.behaviour.requests('snap-new');
  rig.behaviour.moveAlias('gpt-4o', 'snap-new');
  assert.equal((await ask()).model, 'snap-new');
  const last = await waitFor('an evaluation', () => pacts.last, 30_000);
  assert.equal(last.reason, 'model_change');
  assert.equal(last.served.model, 'snap-new');
  await pacts.idle();
  // The evaluation's trials reached the new snapshot; the schedule (24 h) had nothing to do with it.
  assert.ok(rig.behaviour.requests('snap-new') - before >= 150, `evaluation calls: ${rig.behaviour.requests('snap-new') - before}`);
  const changes = pacts.deps.store.history('drift-agent', { kinds: ['model_change'] });
  assert.equal(changes.length, 1);
  assert.equal(changes[0].detail.served, 'snap-new');
  // Its own evaluation calls are not news: one change, one evaluation.
  assert.equal(pacts.deps.store.history('drift-agent', { kinds: ['evaluation'] }).length, 1);
  const metrics = await (await fetch(`${warden.adminUrl}/metrics`)).text();
  assert.match(metrics, /warden_model_changes_total 1\b/);
  assert.match(metrics, /warden_eval_runs_total\{reason="model_change",state="\w+"\} 1/);
});
