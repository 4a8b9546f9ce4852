// The drift decision on constructed runs, where the right answer is known: per-case regressions that
// the aggregate hides, score metrics through the paired bootstrap, the three states, Holm across
// capabilities, and pairing only over the trials both runs have.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideDrift, worstState } from '../../evals/drift.ts';
import { seededRandom } from '../../evals/stats.ts';
import type { CapabilityResult, Metric, Pact, RunResult } from '../../evals/types.ts';

const PACT = { alpha: 0.05, looks: 3, tolerance: 0.05, capabilities: [] } as unknown as Pact;

/** A capability whose case i passes trial j when pass(i, j), with score(i, j). */
function capability(name: string, cases: number, trials: number, pass: (i: number, j: number) => boolean, metric: Metric = 'pass_rate', score?: (i: number, j: number) => number): CapabilityResult {
  const cs = Array.from({ length: cases }, (_, i) => {
    const ts = Array.from({ length: trials }, (_, j) => ({ trial: j, pass: pass(i, j), score: score ? score(i, j) : pass(i, j) ? 1 : 0, checks: [], observation: { status: 200, text: '', toolCalls: [], latencyMs: 1 } }));
    return { id: `${name}#${i + 1}`, trials: ts, passes: ts.filter((t) => t.pass).length, meanScore: ts.reduce((s, t) => s + t.score, 0) / trials };
  });
  return { name, metric, threshold: 0.5, value: 0, interval: [0, 1], passed: true, cases: cs };
}

function run(...capabilities: CapabilityResult[]): RunResult {
  return { pact: { file: 'p', sha256: 'x', agent: 'a' }, target: 't', startedAt: '', finishedAt: '', served: {}, capabilities, passed: true };
}

test('a case that falls from 3/3 to 1/3 is reported even when its capability holds', () => {
  const base = run(capability('c', 20, 3, () => true));
  const cand = run(capability('c', 20, 3, (i, j) => i !== 4 || j === 0));
  const [c] = decideDrift(PACT, base, cand, { look: 1 });
  assert.notEqual(c.state, 'drift');
  assert.deepEqual(c.regressions, [{ id: 'c#5', baseline: { passes: 3, trials: 3 }, candidate: { passes: 1, trials: 3 } }]);
  assert.equal(c.n, 60);
});

test('identical behaviour over many pairs is no_drift: the interval sits inside ±tolerance', () => {
  const same = (i: number, j: number) => (i * 7 + j) % 10 !== 0;
  const [c] = decideDrift(PACT, run(capability('c', 100, 15, same)), run(capability('c', 100, 15, same)), { look: 1 });
  assert.equal(c.state, 'no_drift');
  assert.equal(c.delta, 0);
  assert.ok(c.interval[0] > -0.05 && c.interval[1] < 0.05, `${c.interval}`);
});

test('a fall of 30 points on one capability is drift, after Holm, and only there', () => {
  const rnd = seededRandom(5);
  const draws = Array.from({ length: 3 }, () => Array.from({ length: 600 }, () => rnd()));
  const at = (k: number, p: number) => (i: number, j: number) => draws[k][i * 20 + j] < p;
  const base = run(capability('a', 30, 20, at(0, 0.9)), capability('b', 30, 20, at(1, 0.9)));
  const cand = run(capability('a', 30, 20, (i, j) => at(0, 0.9)(i, j) && (i + j) % 3 !== 0), capability('b', 30, 20, at(1, 0.9)));
  const caps = decideDrift(PACT, base, cand, { look: 1 });
  const [a, b] = caps;
  assert.equal(a.state, 'drift');
  assert.ok(a.delta <= -0.25 && a.interval[1] < 0, `${a.delta} ${a.interval}`);
  assert.notEqual(b.state, 'drift');
  assert.equal(worstState(caps), 'drift');
  // Holm: the smaller p is held to alpha / looks / 2, the other to alpha / looks.
  assert.ok(Math.abs(a.alphaUsed - 0.05 / 3 / 2) < 1e-12);
  assert.ok(Math.abs(b.alphaUsed - 0.05 / 3) < 1e-12);
});

test('score metrics: a paired bootstrap over cases tells a 0.2 fall from noise', () => {
  const rnd = seededRandom(9);
  const noise = Array.from({ length: 40 * 3 }, () => (rnd() - 0.5) * 0.1);
  const scoreAt = (shift: number) => (i: number, j: number) => Math.min(1, Math.max(0, 0.5 + (i % 5) * 0.1 + noise[i * 3 + j] + shift));
  const base = run(capability('s', 40, 3, () => true, 'mean_score', scoreAt(0)));
  const [fell] = decideDrift(PACT, base, run(capability('s', 40, 3, () => true, 'mean_score', scoreAt(-0.2))), { look: 1, seed: 1 });
  assert.equal(fell.metric, 'mean_score');
  assert.equal(fell.state, 'drift');
  assert.ok(Math.abs(fell.delta + 0.2) < 0.03, `${fell.delta}`);
  assert.equal(fell.n, 40);
  const [same] = decideDrift(PACT, base, run(capability('s', 40, 3, () => true, 'mean_score', scoreAt(0))), { look: 1, seed: 1 });
  assert.equal(same.state, 'no_drift');
});

test('only the trials both runs have are paired; a capability missing from the baseline is not decided', () => {
  const base = run(capability('c', 10, 2, () => true));
  const cand = run(capability('c', 10, 5, () => true), capability('new', 10, 5, () => true));
  const caps = decideDrift(PACT, base, cand, { look: 1 });
  assert.deepEqual(caps.map((c) => [c.name, c.n]), [['c', 20]]);
  // A look limited to some capabilities decides only those.
  assert.deepEqual(decideDrift(PACT, run(capability('c', 10, 2, () => true), capability('d', 10, 2, () => true)), run(capability('c', 10, 2, () => true), capability('d', 10, 2, () => true)), { look: 2, capabilities: ['d'] }).map((c) => c.name), ['d']);
});

test('trials whose call failed (an outage, a spent budget) are left out of the pairs, never counted as drift', () => {
  const base = run(capability('c', 20, 5, () => true));
  const cand = run(capability('c', 20, 5, () => true));
  // The candidate's upstream answered 503 to every third trial: those trials "fail" every check.
  for (const k of cand.capabilities[0].cases) {
    k.trials.forEach((t, j) => {
      if (j % 3 === 0) Object.assign(t, { pass: false, observation: { ...t.observation, status: 503, error: 'HTTP 503' } });
    });
  }
  const [c] = decideDrift(PACT, base, cand, { look: 1 });
  assert.equal(c.n, 60, 'the 40 pairs with a failed call are left out');
  assert.equal(c.delta, 0);
  assert.notEqual(c.state, 'drift');
  assert.deepEqual(c.regressions, []);
});
