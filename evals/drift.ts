// The drift decision: has a capability's behaviour moved from the certified baseline by at least its
// tolerance, or is the difference noise? Paired per case (trial j of a case on the candidate against
// trial j of the same case on the baseline), so the variation between cases, usually the largest
// source of noise, cancels out.
//
// Each capability ends in one of three states:
// - drift: the test rejects "no change" after correction, the interval of Δ excludes 0, and |Δ| is
//   at least the tolerance;
// - no_drift: the interval of Δ lies inside ±tolerance;
// - inconclusive: neither, so the caller adds trials (another look) until the pact's looks run out.
//
// False alarms are bounded by the pact's alpha for a whole decision: each look gets alpha / looks
// (a Bonferroni split, valid whatever the stopping rule), and within a look Holm's procedure spreads
// that share over the capabilities still being decided. Each interval is drawn at the level its test
// was held to, so a capability reported as drift has an interval that agrees with its test.
import type { Baseline, CapabilityDrift, CapabilityResult, CaseRegression, CaseResult, DriftState, Pact, RunResult } from './types.ts';
import { callFailed } from './assertions.ts';
import { holm, holmLevels, mcnemarExact, newcombePaired, pairedBootstrap } from './stats.ts';

/** What one look measured for one capability, before the correction across capabilities. */
interface Measured {
  name: string;
  metric: CapabilityResult['metric'];
  tolerance: number;
  delta: number;
  p: number;
  /** The interval of delta at a given confidence. */
  interval(confidence: number): [number, number];
  n: number;
  baselineValue: number;
  candidateValue: number;
  regressions: CaseRegression[];
}

// A case regressed when it lost at least two passes and at least 40% of its paired trials: 3/3 → 1/3
// qualifies, 10/10 → 9/10 does not. Reported for a person to look at; it never changes a state.
const REGRESSION_MIN_DROP = 2;
const REGRESSION_MIN_SHARE = 0.4;

function casesById(cap: CapabilityResult): Map<string, CaseResult> {
  return new Map(cap.cases.map((c) => [c.id, c]));
}

/** Paired pass/fail counts over the trials both runs have for each case. */
function measurePassRate(name: string, tolerance: number, base: CapabilityResult, cand: CapabilityResult): Measured {
  let n11 = 0;
  let n10 = 0;
  let n01 = 0;
  let n00 = 0;
  const regressions: CaseRegression[] = [];
  const baseCases = casesById(base);
  for (const c of cand.cases) {
    const b = baseCases.get(c.id);
    if (!b) continue;
    const pairs = Math.min(b.trials.length, c.trials.length);
    let basePasses = 0;
    let candPasses = 0;
    let used = 0;
    for (let j = 0; j < pairs; j++) {
      // A trial whose call failed says nothing about behaviour; its pair is left out.
      if (callFailed(b.trials[j].observation) || callFailed(c.trials[j].observation)) continue;
      used++;
      const x = b.trials[j].pass;
      const y = c.trials[j].pass;
      if (x) basePasses++;
      if (y) candPasses++;
      if (x && y) n11++;
      else if (x) n10++;
      else if (y) n01++;
      else n00++;
    }
    const drop = basePasses - candPasses;
    if (used > 0 && drop >= REGRESSION_MIN_DROP && drop / used >= REGRESSION_MIN_SHARE) {
      regressions.push({ id: c.id, baseline: { passes: basePasses, trials: used }, candidate: { passes: candPasses, trials: used } });
    }
  }
  const n = n11 + n10 + n01 + n00;
  return {
    name, metric: 'pass_rate', tolerance, n, regressions,
    delta: n === 0 ? 0 : (n01 - n10) / n,
    p: mcnemarExact(n10, n01),
    interval: (confidence) => (n === 0 ? [-1, 1] : newcombePaired(n11, n10, n01, n00, confidence)),
    baselineValue: n === 0 ? 0 : (n11 + n10) / n,
    candidateValue: n === 0 ? 0 : (n11 + n01) / n,
  };
}

function meanScore(c: CaseResult, trials: number): number {
  let sum = 0;
  for (let j = 0; j < trials; j++) sum += c.trials[j].score;
  return sum / trials;
}

/** Per-case differences of mean scores over paired trials, judged by a paired bootstrap over cases. */
function measureScore(name: string, tolerance: number, base: CapabilityResult, cand: CapabilityResult, seed: number): Measured {
  const diffs: number[] = [];
  let baseSum = 0;
  let candSum = 0;
  const regressions: CaseRegression[] = [];
  const baseCases = casesById(base);
  for (const c of cand.cases) {
    const b = baseCases.get(c.id);
    const pairs = b ? Math.min(b.trials.length, c.trials.length) : 0;
    if (!b || pairs === 0) continue;
    const x = meanScore(b, pairs);
    const y = meanScore(c, pairs);
    diffs.push(y - x);
    baseSum += x;
    candSum += y;
  }
  const n = diffs.length;
  // The p-value does not depend on the interval's level; the interval is drawn again at the level Holm assigns.
  const boot = n === 0 ? undefined : pairedBootstrap(diffs, { seed });
  return {
    name, metric: 'mean_score', tolerance, n, regressions,
    delta: boot?.mean ?? 0,
    p: boot?.p ?? 1,
    interval: (confidence) => (n === 0 ? [-1, 1] : pairedBootstrap(diffs, { confidence, seed }).interval),
    baselineValue: n === 0 ? 0 : baseSum / n,
    candidateValue: n === 0 ? 0 : candSum / n,
  };
}

export interface DecideOptions {
  /** This look, from 1. */
  look: number;
  /** Capabilities to decide at this look (those still inconclusive); default: all in the candidate. */
  capabilities?: readonly string[];
  /** Seed for the bootstrap, so a decision can be reproduced from its data. */
  seed?: number;
}

/** Decides drift for the capabilities of one look, from a baseline's and a candidate's trials. */
export function decideDrift(pact: Pact, baseline: RunResult, candidate: RunResult, opts: DecideOptions): CapabilityDrift[] {
  const wanted = opts.capabilities && new Set(opts.capabilities);
  const baseCaps = new Map(baseline.capabilities.map((c) => [c.name, c]));
  const measured: Measured[] = [];
  for (const cand of candidate.capabilities) {
    const base = baseCaps.get(cand.name);
    if (!base || (wanted && !wanted.has(cand.name))) continue;
    const tolerance = pact.capabilities.find((c) => c.name === cand.name)?.tolerance ?? pact.tolerance;
    measured.push(cand.metric === 'mean_score'
      ? measureScore(cand.name, tolerance, base, cand, opts.seed ?? 1)
      : measurePassRate(cand.name, tolerance, base, cand));
  }
  const lookAlpha = pact.alpha / pact.looks;
  const ps = measured.map((m) => m.p);
  const rejected = holm(ps, lookAlpha);
  const levels = holmLevels(ps, lookAlpha);
  return measured.map((m, i) => {
    const interval = m.interval(1 - levels[i]);
    return {
      name: m.name, metric: m.metric, state: stateOf(m, interval, rejected[i]),
      delta: m.delta, interval, p: m.p, alphaUsed: levels[i], tolerance: m.tolerance,
      baselineValue: m.baselineValue, candidateValue: m.candidateValue, n: m.n, looks: opts.look, regressions: m.regressions,
    };
  });
}

function stateOf(m: Measured, [lo, hi]: [number, number], rejected: boolean): DriftState {
  if (m.n > 0 && rejected && Math.abs(m.delta) >= m.tolerance && (lo > 0 || hi < 0)) return 'drift';
  if (m.n > 0 && lo > -m.tolerance && hi < m.tolerance) return 'no_drift';
  return 'inconclusive';
}

const SEVERITY: Record<DriftState, number> = { no_drift: 0, inconclusive: 1, drift: 2 };

/** The worst state over capabilities (drift > inconclusive > no_drift); no_drift for none. */
export function worstState(caps: readonly CapabilityDrift[]): DriftState {
  let worst: DriftState = 'no_drift';
  for (const c of caps) if (SEVERITY[c.state] > SEVERITY[worst]) worst = c.state;
  return worst;
}

/** Capabilities of the pact the baseline cannot pair with (not in it), so a person knows to re-certify. */
export function unpairedCapabilities(pact: Pact, baseline: Baseline): string[] {
  const have = new Set(baseline.run.capabilities.map((c) => c.name));
  return pact.capabilities.filter((c) => !have.has(c.name)).map((c) => c.name);
}
