// The demo's behavioural-pact scenes: a baseline certified on the model as served today, a silent
// model update at the provider that the sidecar notices in live traffic and evaluates by itself (drift
// on order lookups and scope), and a rollback that pins the certified snapshot and clears it.
// The demo's main sidecar runs the plain echo fake and another agent's policy, so these scenes bring
// their own: the behaviour fake (demoProfile) and a sidecar on policies/examples/drift-demo.yaml, with an
// admin token for the operator's actions. The first scene starts them, the last one stops them; a
// scene that fails stops them at once. Every run prints the same figures: the fake's answers are a
// seeded function of (snapshot, question, how often it was asked), the runner asks a case's trials in
// order, and the agent's own calls here ask questions no pact case asks, so they draw nothing from them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sidecar } from '../sidecar.ts';
import { createFakeBehaviour, demoProfile, type FakeBehaviour } from './fake-behaviour.ts';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.ts';
import { call, expect, startDemoSidecar, type CallResult, type Scene } from './scene-kit.ts';

const DRIFT_POLICY = fileURLToPath(new URL('../../policies/examples/drift-demo.yaml', import.meta.url));
const OLD = 'gpt-4o-2024-08-06';
const NEW = 'gpt-4o-2024-11-20';
// What demoProfile degrades on NEW, and what it leaves alone.
const DEGRADED = ['order_lookup', 'refuses_out_of_scope'];
const KEPT = ['return_policy'];
// An evaluation of the demo pact takes well under a second here; the deadline only bounds a hang.
const EVAL_DEADLINE_MS = 30_000;

interface Rig {
  fake: FakeUpstream;
  behaviour: FakeBehaviour;
  sidecar: Sidecar;
  token: string;
  dataDir: string;
  restoreEnv(): void;
}

let rig: Rig | undefined;

/** Sets environment variables and returns how to put them back. */
function setEnv(vars: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** The admin token the scene's sidecar will read at start: the operator's when set, else a throwaway one. */
function adminToken(): { token: string; vars: Record<string, string> } {
  const file = process.env.WARDEN_ADMIN_TOKEN_FILE?.trim();
  if (file) return { token: readFileSync(file, 'utf8').trim(), vars: {} };
  const set = process.env.WARDEN_ADMIN_TOKEN?.trim();
  if (set) return { token: set, vars: {} };
  const token = randomBytes(24).toString('base64url');
  return { token, vars: { WARDEN_ADMIN_TOKEN: token } };
}

async function openRig(): Promise<Rig> {
  const { token, vars } = adminToken();
  const fake = await startFakeUpstream({ host: '127.0.0.1', port: 0 });
  const behaviour = createFakeBehaviour(demoProfile());
  fake.setHandler(behaviour.handler);
  const restoreEnv = setEnv({ ...vars, WARDEN_DEMO_BEHAVIOUR_UPSTREAM: fake.url });
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-demo-drift-'));
  try {
    const sidecar = await startDemoSidecar(DRIFT_POLICY, dataDir);
    return { fake, behaviour, sidecar, token, dataDir, restoreEnv };
  } catch (err) {
    restoreEnv();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function closeRig(): Promise<void> {
  const r = rig;
  rig = undefined;
  if (!r) return;
  try {
    await r.sidecar.shutdown();
    await r.fake.close();
  } finally {
    r.restoreEnv();
    rmSync(r.dataDir, { recursive: true, force: true });
  }
}

function need(): Rig {
  expect(rig !== undefined, 'the drift sidecar started by the first pact scene');
  return rig!;
}

/** An operator action on the scene's sidecar (POST, with the admin token). */
function act(r: Rig, action: string, body: Record<string, unknown> = {}): Promise<CallResult> {
  return call(`${r.sidecar.adminUrl}/evals/${action}`, body, { authorization: `Bearer ${r.token}` });
}

async function get(r: Rig, path: string): Promise<Record<string, any>> {
  return (await call(`${r.sidecar.adminUrl}${path}`, undefined)).json ?? {};
}

/** One ordinary call of the agent through the scene's sidecar. */
function agentAsks(r: Rig, content: string): Promise<CallResult> {
  return call(`${r.sidecar.trafficUrl}/v1/chat/completions`, { model: 'gpt-4o', messages: [{ role: 'user', content }] }, { 'x-warden-task': 'demo-drift' });
}

/** Polls GET /evals until the sidecar has finished an evaluation for `reason` that started at `since` or later. */
async function evaluationFor(r: Rig, reason: string, since: string): Promise<Record<string, any>> {
  const deadline = Date.now() + EVAL_DEADLINE_MS;
  for (;;) {
    const view = await get(r, '/evals');
    if (view.last?.reason === reason && view.last.at >= since) {
      // Nothing queued behind it either, so the figures below are final.
      const idle = r.sidecar.ctx.services.pacts?.idle() ?? Promise.resolve();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((res) => (timer = setTimeout(res, Math.max(0, deadline - Date.now()), 'late')));
      try {
        expect((await Promise.race([idle, late])) !== 'late', `no evaluation still running within ${EVAL_DEADLINE_MS / 1000} s`);
      } finally {
        clearTimeout(timer);
      }
      return get(r, '/evals');
    }
    expect(Date.now() < deadline, `an evaluation (reason ${reason}) within ${EVAL_DEADLINE_MS / 1000} s, last is ${JSON.stringify(view.last ?? null)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pts = (x: number) => `${x > 0 ? '+' : ''}${(x * 100).toFixed(1)}`;
const pad = (s: string) => s.padEnd(21);

/** One line per capability of a drift decision: state, baseline → candidate, the interval of the change. */
function driftLines(report: Record<string, any> | undefined): string[] {
  return (report?.capabilities ?? []).map((c: any) =>
    `${pad(c.name)} ${String(c.state).padEnd(12)} ${pct(c.baseline)} → ${pct(c.candidate)}  Δ ${pts(c.delta)} pts, interval [${pts(c.interval[0])}, ${pts(c.interval[1])}]  (${c.n} pairs, ${c.looks} look${c.looks === 1 ? '' : 's'})`);
}

async function statusLine(r: Rig): Promise<{ state: string; reasons: string[]; line: string }> {
  const s = await get(r, '/status');
  const reasons: string[] = s.reasons ?? [];
  return { state: s.state, reasons, line: `/status: ${s.state}${reasons.length ? ` — ${reasons.join('; ')}` : ''}` };
}

/** Runs a scene's body; a failure stops the rig, so nothing is left listening. */
async function orClose<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    await closeRig();
    throw err;
  }
}

export const PACT_SCENES: Scene[] = [
  {
    title: 'Behavioural pacts: certify a baseline of the agent\'s pact on the model as served today',
    async run() {
      await closeRig();
      rig = await openRig();
      const r = rig;
      return orClose(async () => {
        const res = await act(r, 'baseline', { by: 'warden demo' });
        expect(res.status === 200, `the baseline certified, got ${res.status} ${res.text.slice(0, 200)}`);
        const b = res.json!;
        expect(b.model?.served === OLD, `the baseline certified on ${OLD}, got ${b.model?.served}`);
        expect(b.passed === true, 'every capability to meet its threshold on the certified model');
        const trials = (c: any) => c.cases.reduce((n: number, k: any) => n + k.trials, 0);
        const warnings: string[] = b.warnings ?? [];
        return [
          `own sidecar on policies/examples/drift-demo.yaml (agent ${r.sidecar.ctx.runtime.policy.agent.id}, gpt-4o not pinned), behaviour fake at ${r.fake.url}`,
          `POST /evals/baseline → ${b.baseline}: gpt-4o served as ${b.model.served} (${b.model.systemFingerprint}); each case's trials for every look (3 × 3) up front`,
          ...b.capabilities.map((c: any) =>
            `${pad(c.name)} pass rate ${pct(c.value).padStart(6)} [${pct(c.interval[0])}, ${pct(c.interval[1])}] over ${trials(c)} trials, threshold ${pct(c.threshold)}, detects a change of ${(b.mde[c.name] * 100).toFixed(1)} pts`),
          ...(warnings.length ? warnings.map((w) => `MDE warning: ${w}`) : ['no MDE warnings: each capability can see a change the size of its tolerance']),
        ];
      });
    },
  },
  {
    title: 'A silent model update: the provider moves gpt-4o to a new snapshot; the sidecar notices and evaluates by itself',
    async run() {
      const r = need();
      return orClose(async () => {
        r.behaviour.moveAlias('gpt-4o', NEW);
        const since = new Date().toISOString();
        const started = performance.now();
        const reply = await agentAsks(r, 'How long do I have to return an item I bought last week?');
        expect(reply.status === 200 && reply.json?.model === NEW, `the agent's call served by ${NEW}, got ${reply.status} ${reply.json?.model}`);
        const view = await evaluationFor(r, 'model_change', since);
        const took = (performance.now() - started) / 1000;
        const report = view.lastReport;
        const drifted = (report?.capabilities ?? []).filter((c: any) => c.state === 'drift').map((c: any) => c.name);
        expect(report?.served?.model === NEW, `the evaluation to reach ${NEW}, got ${report?.served?.model}`);
        expect(DEGRADED.every((n) => drifted.includes(n)), `drift on ${DEGRADED.join(' and ')}, got drift on ${drifted.join(', ') || 'nothing'}`);
        expect(KEPT.every((n) => !drifted.includes(n)), `no drift on ${KEPT.join(', ')}, got drift on ${drifted.join(', ')}`);
        const status = await statusLine(r);
        expect(status.state !== 'green' && status.reasons.some((x) => /behavioural drift confirmed/.test(x)), `/status to report the drift, got ${status.line}`);
        return [
          `the provider now serves gpt-4o as ${NEW}; nobody was told, and the policy does not pin gpt-4o`,
          `the agent asks gpt-4o as usual → served ${reply.json?.model} (${reply.json?.system_fingerprint}): "${String(reply.json?.choices?.[0]?.message?.content).slice(0, 70)}"`,
          `a served model the baseline was not certified on → evaluation (reason ${view.last.reason}) done ${took.toFixed(1)} s after the call: ${report.state}`,
          ...driftLines(report),
          status.line,
        ];
      });
    },
  },
  {
    title: 'Rollback: gpt-4o is pinned back to the certified snapshot, and the drift clears',
    async run() {
      const r = need();
      try {
        const since = new Date().toISOString();
        const res = await act(r, 'rollback', { by: 'warden demo', note: 'order lookups regressed' });
        expect(res.status === 200 && res.json?.snapshot === OLD, `gpt-4o pinned to ${OLD}, got ${res.status} ${res.text.slice(0, 200)}`);
        const view = await evaluationFor(r, 'rollback', since);
        const report = view.lastReport;
        const drifted = (report?.capabilities ?? []).filter((c: any) => c.state === 'drift').map((c: any) => c.name);
        expect(report?.served?.model === OLD, `the rollback's evaluation served by ${OLD}, got ${report?.served?.model}`);
        expect(drifted.length === 0 && !view.openDrift, `no capability in drift, got ${drifted.join(', ')}`);
        const reply = await agentAsks(r, 'How long do I have to return an item? Just checking again.');
        expect(reply.status === 200 && reply.json?.model === OLD, `the agent's next call served by ${OLD}, got ${reply.status} ${reply.json?.model}`);
        const status = await statusLine(r);
        expect(!status.reasons.some((x) => /behavioural drift/.test(x)), `/status without drift, got ${status.line}`);
        const pins = (view.pins ?? []).map((p: any) => `${p.alias} → ${p.snapshot}`).join(', ');
        return [
          `POST /evals/rollback → ${res.json!.alias} pinned to ${res.json!.snapshot} (before: ${res.json!.previous ?? 'unpinned'}); pins: ${pins}`,
          `the rollback's own evaluation (reason ${view.last.reason}): ${report.state}, no capability in drift`,
          ...driftLines(report),
          'inconclusive: no change past the tolerance (10 pts) was found, nor ruled out with this few trials (see the MDE warnings)',
          `the agent asks gpt-4o again → served ${reply.json?.model} (${reply.json?.system_fingerprint}), without changing a line of its code`,
          status.line,
        ];
      } finally {
        await closeRig();
      }
    },
  },
];
