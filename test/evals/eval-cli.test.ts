// `warden eval baseline|status|accept|rollback|remediate` as an operator runs them: the real CLI in a
// child process (spawned asynchronously, so the behaviour fake and the sidecar in this process keep
// answering) against a fake model whose snapshots pass each capability with set probabilities.
// Locally: a certified baseline lands in the file and in evals.db with the figures the CLI printed,
// and a model update that takes one capability from 90% to 50% is confirmed drift there, exit 1.
// Through a sidecar's admin API: certification, the admin token's refusals, accept, a 409, and status.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { EvalStore } from '../../evals/store.ts';
import type { Baseline } from '../../evals/types.ts';
import { createFakeBehaviour } from '../../proxy/demo/fake-behaviour.ts';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { ROOT, startWarden, tempDataDir, tempFile, WARDEN_BIN } from '../helpers/warden.ts';
import { admin, driftRig, pactYaml, snapshot } from './helpers.ts';

const STABLE = { returns: 0.9, orders: 0.9, scope: 0.9 };
const DROPPED = { ...STABLE, orders: 0.5 };
const ADMIN_TOKEN = 'eval-cli-admin-token-0123456789abcdef';

/** The real CLI, without the caller's admin token, admin URL, data dir or API keys leaking in. */
function warden(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_EVAL_API_KEY: '', OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '' };
  for (const k of ['WARDEN_ADMIN_TOKEN', 'WARDEN_ADMIN_TOKEN_FILE', 'WARDEN_ADMIN_URL', 'WARDEN_DATA_DIR']) delete env[k];
  const proc = spawn(process.execPath, [WARDEN_BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  return new Promise((resolve) => proc.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, out, err });
  }));
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('eval baseline certifies into the file and evals.db; eval status exits 0 on the same model and 1 with DRIFT after a capability falls 90% → 50%', async (t) => {
  const fake = await startFakeUpstream();
  const behaviour = createFakeBehaviour({
    seed: 11,
    aliases: { 'gpt-4o': 'snap-old' },
    models: { 'snap-old': snapshot(STABLE, 'fp_old'), 'snap-new': snapshot(DROPPED, 'fp_new') },
  });
  fake.setHandler(behaviour.handler);
  t.after(() => fake.close());
  const pactFile = tempFile('shop.pact.yaml', pactYaml());
  const dataDir = tempDataDir();
  const target = `${fake.url}/v1`;

  const certified = await warden(['eval', 'baseline', '--pact', pactFile, '--target', target, '--data-dir', dataDir, '--by', 'ci']);
  assert.equal(certified.code, 0, certified.out + certified.err);
  // The default file sits next to the pact, named after it.
  const file = join(dirname(pactFile), 'shop.pact.baseline.json');
  assert.ok(existsSync(file), `${file} written`);
  const baseline = JSON.parse(readFileSync(file, 'utf8')) as Baseline;
  assert.equal(baseline.agent, 'drift-agent');
  assert.deepEqual({ served: baseline.model.served, fp: baseline.model.systemFingerprint }, { served: 'snap-old', fp: 'fp_old' });
  // 10 cases × 5 trials × 3 looks, all up front, so later looks have trials to pair with.
  for (const cap of baseline.run.capabilities) for (const c of cap.cases) assert.equal(c.trials.length, 15, `${cap.name}/${c.id}`);

  const store = new EvalStore(join(dataDir, 'evals.db'));
  try {
    assert.equal(store.activeBaseline('drift-agent')?.id, baseline.id, 'the file and the store hold the same baseline');
    const history = store.history('drift-agent', { kinds: ['baseline_certified'] });
    assert.equal(history.length, 1);
    assert.equal(history[0].detail.baseline, baseline.id);
    assert.equal(history[0].detail.by, 'ci');
  } finally {
    store.close();
  }

  // Each capability's row carries the stored value, Wilson interval, trials and MDE.
  assert.match(certified.out, new RegExp(`^baseline ${baseline.id} for agent drift-agent`, 'm'));
  assert.match(certified.out, /served snap-old \(fingerprint fp_old\)/);
  for (const cap of baseline.run.capabilities) {
    const row = `^${cap.name}\\s+pass_rate\\s+${esc(pct(cap.value))}\\s+${esc(`[${pct(cap.interval[0])}, ${pct(cap.interval[1])}]`)}\\s+150\\s+${esc(pct(baseline.mde[cap.name]))}\\s+5\\.0%$`;
    assert.match(certified.out, new RegExp(row, 'm'), `${cap.name} row`);
    // 150 trials cannot see a 5-point move at the corrected level: certification says so, on stderr.
    const warned = certified.err.includes(`warden: warning: ${cap.name}: the smallest change this baseline can detect is ${(baseline.mde[cap.name] * 100).toFixed(1)} points`);
    assert.equal(warned, baseline.mde[cap.name] > 0.05, `${cap.name} MDE ${baseline.mde[cap.name]} warning`);
  }
  t.diagnostic(`MDE ${JSON.stringify(baseline.mde)}`);

  const same = await warden(['eval', 'status', '--pact', pactFile, '--target', target, '--baseline', file]);
  assert.equal(same.code, 0, same.out + same.err);
  assert.doesNotMatch(same.out, /DRIFT/);
  assert.match(same.out, /^(no drift: all 3 capabilities|inconclusive on .* add cases or trials)/m);
  t.diagnostic(same.out.split('\n').filter((l) => /^(returns|orders|scope) /.test(l)).join(' | '));

  behaviour.moveAlias('gpt-4o', 'snap-new');
  const drifted = await warden(['eval', 'status', '--pact', pactFile, '--target', target, '--baseline', file]);
  assert.equal(drifted.code, 1, drifted.out + drifted.err);
  const m = /^orders\s+DRIFT\s+(\d+\.\d)% → (\d+\.\d)%\s+(-\d+\.\d)%\s+\[(-?\d+\.\d)%, (-?\d+\.\d)%\]\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d)$/m.exec(drifted.out);
  assert.ok(m, drifted.out);
  const [, base, cand, delta, lo, hi, , , pairs] = m.map(Number);
  assert.ok(base - cand >= 25, `orders fell: ${base}% → ${cand}%`);
  assert.ok(delta <= -25 && lo <= delta && delta <= hi && hi < 0, `Δ ${delta} in [${lo}, ${hi}], excluding 0`);
  assert.ok(pairs >= 50, `pairs ${pairs}`);
  for (const other of ['returns', 'scope']) assert.doesNotMatch(drifted.out, new RegExp(`^${other}\\s+DRIFT`, 'm'), other);
  assert.match(drifted.out, new RegExp(`^baseline ${baseline.id} \\(certified .* on snap-old \\(fingerprint fp_old\\)\\)\\s+now served snap-new \\(fingerprint fp_new\\)$`, 'm'));
  assert.match(drifted.out, /^DRIFT confirmed on orders /m);
});

test('eval baseline|accept|rollback|remediate|status --admin drive a running sidecar, with its admin token', async (t) => {
  const saved = process.env.WARDEN_ADMIN_TOKEN;
  process.env.WARDEN_ADMIN_TOKEN = ADMIN_TOKEN;
  const rig = await driftRig({ old: STABLE, new: DROPPED });
  const sidecar = await startWarden(rig.policyFile);
  t.after(async () => {
    await sidecar.shutdown();
    await rig.close();
    if (saved === undefined) delete process.env.WARDEN_ADMIN_TOKEN;
    else process.env.WARDEN_ADMIN_TOKEN = saved;
  });
  const url = sidecar.adminUrl;

  const certified = await warden(['eval', 'baseline', '--admin', url, '--token', ADMIN_TOKEN]);
  assert.equal(certified.code, 0, certified.out + certified.err);
  const first = (await admin(url, 'GET', '/evals')).json.baseline;
  assert.ok(first?.id, 'the sidecar holds a baseline');
  assert.match(certified.out, new RegExp(`^baseline ${first.id} certified by the sidecar`, 'm'));
  assert.match(certified.out, new RegExp(`^orders\\s+pass_rate\\s+\\d+\\.\\d%\\s+\\[.*\\]\\s+150\\s+${esc(pct(first.mde.orders))}$`, 'm'));

  // Actions without the token, or with a wrong one, cannot run as set up: exit 2, naming the token.
  const anonymous = await warden(['eval', 'rollback', '--admin', url]);
  assert.equal(anonymous.code, 2, anonymous.out + anonymous.err);
  assert.match(anonymous.err, /admin token/);
  assert.match(anonymous.err, /--token T or set WARDEN_ADMIN_TOKEN/);
  const wrong = await warden(['eval', 'rollback', '--admin', url, '--token', 'not-the-token-at-all']);
  assert.equal(wrong.code, 2, wrong.out + wrong.err);
  assert.match(wrong.err, /admin token sent is not valid/);
  assert.deepEqual((await admin(url, 'GET', '/evals')).json.pins, [], 'nothing was rolled back');

  const accepted = await warden(['eval', 'accept', '--admin', url, '--token', ADMIN_TOKEN, '--by', 'oncall', '--note', 'looks fine']);
  assert.equal(accepted.code, 0, accepted.out + accepted.err);
  const second = (await admin(url, 'GET', '/evals')).json.baseline;
  assert.notEqual(second.id, first.id, 'accept certified a new baseline');
  assert.equal(accepted.out.trim(), `accepted: baseline ${second.id} is now the active baseline`);
  const acceptEntry = (await admin(url, 'GET', '/evals/history?kind=accept')).json.history[0];
  assert.deepEqual({ by: acceptEntry.detail.by, note: acceptEntry.detail.note }, { by: 'oncall', note: 'looks fine' });

  // The policy names no evals.remediate URL: the sidecar's 409, exit 1.
  const remediated = await warden(['eval', 'remediate', '--admin', url, '--token', ADMIN_TOKEN]);
  assert.equal(remediated.code, 1, remediated.out + remediated.err);
  assert.match(remediated.err, /the policy names no remediation URL \(evals\.remediate\) \(WARDEN_ERR_EVAL_ACTION\)/);

  const calm = await warden(['eval', 'status', '--admin', url]);
  assert.equal(calm.code, 0, calm.out + calm.err);
  assert.match(calm.out, new RegExp(`^pact ${esc(rig.pactFile)}\\s+agent drift-agent\\s+model gpt-4o\\s+capabilities returns, orders, scope$`, 'm'));
  assert.match(calm.out, new RegExp(`^baseline ${second.id} certified .* on snap-old \\(fingerprint fp_old\\)`, 'm'));
  assert.match(calm.out, /^open drift: none$/m);

  // A model update the sidecar's own evaluation confirms: status reports it and exits 1; rollback answers it.
  rig.behaviour.moveAlias('gpt-4o', 'snap-new');
  const run = await admin(url, 'POST', '/evals/run', ADMIN_TOKEN);
  assert.equal(run.json.report?.state, 'drift', JSON.stringify(run.json));
  const alarmed = await warden(['eval', 'status', '--admin', url]);
  assert.equal(alarmed.code, 1, alarmed.out + alarmed.err);
  assert.match(alarmed.out, /^\s+orders\s+DRIFT\s+\d+\.\d% → \d+\.\d%\s+-\d+\.\d%\s+\[-\d+\.\d%, -\d+\.\d%\]/m);
  assert.match(alarmed.out, /^open drift: orders /m);
  const rolled = await warden(['eval', 'rollback', '--admin', url, '--token', ADMIN_TOKEN]);
  assert.equal(rolled.code, 0, rolled.out + rolled.err);
  assert.match(rolled.out, /^rolled back: gpt-4o is pinned to snap-old/);
  await sidecar.ctx.services.pacts!.idle();
});

test('usage errors exit 2 before anything runs', async () => {
  const pactFile = tempFile('x.pact.yaml', pactYaml({ cases: 1, trials: 1 }));
  const cases: [string[], RegExp][] = [
    [['eval', 'baseline', '--pact', pactFile], /eval baseline needs --target URL/],
    [['eval', 'status', '--pact', pactFile, '--target', 'http://127.0.0.1:9/v1'], /eval status needs --baseline FILE/],
    [['eval', 'baseline', '--admin', 'http://127.0.0.1:9', '--pact', pactFile], /--pact is for a local certification/],
    [['eval', 'rollback', '--unpin'], /--unpin goes with eval accept/],
    [['eval', 'accept', 'now'], /eval accept takes flags only/],
  ];
  for (const [args, message] of cases) {
    const r = await warden(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}${r.err}`);
    assert.match(r.err, message, args.join(' '));
  }
});
