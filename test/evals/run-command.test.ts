// `warden eval run` as a user runs it: the real CLI in a child process against a fake model (started
// in this process) whose behaviour is known draw by draw, so the expected pass counts, values and
// Wilson intervals are computed here independently of the runner and compared with what it prints.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadPactFile } from '../../evals/pact.ts';
import { wilson } from '../../evals/stats.ts';
import type { Pact, RunResult } from '../../evals/types.ts';
import { behaviourDraw, createFakeBehaviour, demoProfile, type BehaviourProfile } from '../../proxy/demo/fake-behaviour.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { ROOT, tempFile, WARDEN_BIN } from '../helpers/warden.ts';

const DEMO = 'evals/examples/demo.pact.yaml';
let fake: FakeUpstream;
let pact: Pact;
before(async () => {
  fake = await startFakeUpstream();
  pact = await loadPactFile(join(ROOT, DEMO));
});
after(() => fake.close());

/** Runs the CLI without blocking this process's event loop (the fake it talks to lives here). */
function warden(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const proc = spawn(process.execPath, [WARDEN_BIN, ...args], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WARDEN_EVAL_API_KEY: '', OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', ...env },
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => proc.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, out, err });
  }));
}

/** Passes and trials per capability as the profile's draws decide them for the given snapshot. */
function expected(profile: BehaviourProfile, snapshot: string): Map<string, { k: number; n: number }> {
  const rules = profile.models[snapshot].rules;
  const out = new Map<string, { k: number; n: number }>();
  for (const cap of pact.capabilities) {
    let k = 0;
    for (const c of cap.cases) {
      const message = c.messages.at(-1)!.content;
      const rule = rules.find((r) => message.toLowerCase().includes(r.match.toLowerCase()));
      assert.ok(rule, `the demo profile has a rule for ${c.id}`);
      for (let i = 0; i < cap.trials; i++) if (behaviourDraw(profile.seed, snapshot, message, i) < rule.pass) k++;
    }
    out.set(cap.name, { k, n: cap.cases.length * cap.trials });
  }
  return out;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

test('exit 1 when a capability misses its threshold, printing which and its Wilson interval', async () => {
  const profile = demoProfile(1);
  const behaviour = createFakeBehaviour(profile);
  behaviour.moveAlias('gpt-4o', 'gpt-4o-2024-11-20');
  fake.setHandler(behaviour.handler);
  const want = expected(profile, 'gpt-4o-2024-11-20');
  const orders = want.get('order_lookup')!;
  assert.ok(orders.k / orders.n < 0.8, `the drifted snapshot misses order_lookup (${orders.k}/${orders.n})`);

  const r = await warden(['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`]);
  assert.equal(r.code, 1, r.out + r.err);
  const [lo, hi] = wilson(orders.k, orders.n);
  const line = r.out.split('\n').find((l) => l.startsWith('warden: order_lookup missed its threshold'));
  assert.ok(line, r.out);
  assert.equal(line, `warden: order_lookup missed its threshold: pass_rate ${pct(orders.k / orders.n)} < 80.0% (Wilson 95% interval [${pct(lo)}, ${pct(hi)}])`);
  // The table row says the same.
  assert.match(r.out, new RegExp(`^order_lookup\\s+pass_rate\\s+${pct(orders.k / orders.n)}\\s+\\[${pct(lo)}, ${pct(hi)}\\]\\s+80\\.0%\\s+12\\s+FAIL$`, 'm'));
  assert.match(r.out, /served gpt-4o-2024-11-20 \(fp_demo1120\)/);
  for (const [name, { k, n }] of want) {
    const missed = k / n < pact.capabilities.find((c) => c.name === name)!.threshold;
    assert.equal(r.out.includes(`warden: ${name} missed its threshold`), missed, name);
  }
  assert.equal(behaviour.requests('gpt-4o-2024-11-20'), 36, 'every trial was asked (3 capabilities × 4 cases × 3 trials)');
});

test('exit 0 when every capability meets its threshold; the key comes from WARDEN_EVAL_API_KEY', async () => {
  const profile = demoProfile(1);
  const want = expected(profile, 'gpt-4o-2024-08-06');
  for (const cap of pact.capabilities) assert.ok(want.get(cap.name)!.k / want.get(cap.name)!.n >= cap.threshold, `seed 1 keeps ${cap.name}`);
  fake.setHandler(createFakeBehaviour(profile).handler);
  const start = fake.requests.length;
  const r = await warden(['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--header', 'x-warden-task: nightly-eval'], { WARDEN_EVAL_API_KEY: 'sk-eval' });
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /all 3 capabilities met their thresholds/);
  assert.doesNotMatch(r.out, /missed its threshold/);
  const sent = fake.requests.slice(start);
  assert.ok(sent.length >= 36);
  assert.ok(sent.every((q) => q.headers.authorization === 'Bearer sk-eval' && q.headers['x-warden-task'] === 'nightly-eval'));
  assert.equal(r.err, '', 'no progress bar when stderr is not a TTY');
});

test('--json prints the run result alone, matching the profile', async () => {
  const profile = demoProfile(1);
  fake.setHandler(createFakeBehaviour(profile).handler);
  const r = await warden(['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--json', '--concurrency', '2']);
  assert.equal(r.code, 0, r.err);
  const result: RunResult = JSON.parse(r.out);
  assert.equal(result.pact.agent, 'demo-agent');
  assert.equal(result.pact.sha256, pact.sha256);
  assert.equal(result.target, `${fake.url}/v1`);
  assert.deepEqual(result.served, { model: 'gpt-4o-2024-08-06', systemFingerprint: 'fp_demo0806' });
  assert.equal(result.passed, true);
  const want = expected(profile, 'gpt-4o-2024-08-06');
  assert.deepEqual(result.capabilities.map((c) => c.name), ['return_policy', 'order_lookup', 'refuses_out_of_scope']);
  for (const cap of result.capabilities) {
    const { k, n } = want.get(cap.name)!;
    assert.equal(cap.value, k / n, cap.name);
    assert.deepEqual(cap.interval, wilson(k, n));
    assert.equal(cap.cases.reduce((t, c) => t + c.trials.length, 0), n);
  }
  // --trials overrides every capability's count.
  fake.setHandler(createFakeBehaviour(profile).handler);
  const more = await warden(['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--json', '--trials', '5', '--capability', 'order_lookup']);
  const only: RunResult = JSON.parse(more.out);
  assert.deepEqual(only.capabilities.map((c) => [c.name, c.cases.map((k) => k.trials.length)]), [['order_lookup', [5, 5, 5, 5]]]);
});

test('exit 2 with file:line:col for a bad pact', async () => {
  const bad = tempFile('bad.pact.yaml', `apiVersion: warden/v1
kind: Pact
agent: demo-agent
model: gpt-4o
capabilities:
  answers:
    threshold: 1.5
    cases:
      - messages: [{ role: user, content: "hi" }]
        expect: [{ contians: "hello" }]
`);
  const r = await warden(['eval', 'run', '--pact', bad, '--target', `${fake.url}/v1`]);
  assert.equal(r.code, 2, r.out + r.err);
  assert.equal(r.out, '');
  const esc = bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(r.err, new RegExp(`^${esc}:7:\\d+: `, 'm'));
  assert.match(r.err, new RegExp(`^${esc}:10:\\d+: `, 'm'));
  assert.match(r.err, /the pact is invalid; nothing was run/);
  const missing = await warden(['eval', 'run', '--pact', join(ROOT, 'no-such.pact.yaml'), '--target', `${fake.url}/v1`]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /no-such\.pact\.yaml:1:1: cannot read the pact file/);
});

test('exit 2 for missing or bad flags, and for a target no trial reaches', async () => {
  const cases: [string[], RegExp][] = [
    [['eval'], /unknown eval subcommand ""/],
    [['eval', 'frob'], /unknown eval subcommand "frob"/],
    [['eval', 'run'], /eval run needs --pact FILE/],
    [['eval', 'run', '--pact', DEMO], /eval run needs --target URL/],
    [['eval', 'run', '--pact', DEMO, '--target', 'nowhere'], /--target must be an http\(s\) URL/],
    [['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--trials', '0'], /--trials must be a whole number/],
    [['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--header', 'no colon'], /--header must be "Name: value"/],
    [['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--capability', 'flying'], /--capability flying: the pact has no such capability/],
    [['eval', 'run', '--pact', DEMO, '--target', `${fake.url}/v1`, '--frobnicate'], /Unknown option '--frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = await warden(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
    // The error and a pointer to the command's usage, not the whole usage text after it.
    assert.match(r.err, /\n\(run `warden help eval` for the usage\)\n$/);
    assert.equal(r.err.trim().split('\n').length, 2, r.err);
  }
  const down = await warden(['eval', 'run', '--pact', DEMO, '--target', 'http://127.0.0.1:1/v1', '--capability', 'return_policy']);
  assert.equal(down.code, 2, down.err);
  assert.match(down.err, /no trial reached the target http:\/\/127\.0\.0\.1:1\/v1: cannot reach .*ECONNREFUSED/);
});
