// One window against the baseline, metric by metric: the statistics behind the passive monitor.
//
// A flag needs both a significant difference and a large one. With 500 calls a window, tests detect
// changes too small for anyone to act on, so each metric also has a floor on the size of the change
// (an absolute rate delta; a relative shift of the median or p90 that is also absolutely large: 50 ms,
// 20 characters, 5 tokens, so a sidecar warming up on a fast model does not page anyone over a
// millisecond); and with six metrics compared
// every window, each gets only its Bonferroni share of the family-wise alpha.
//
// Rates use the two-proportion z-test with Wilson intervals for display. Distributions use the
// Kolmogorov–Smirnov D, but its threshold is calibrated by permutation within the baseline period
// rather than read from the asymptotic table: latencies and token counts are tied, discrete and
// skewed, and the permutation threshold accounts for all of that by construction.
import { ksStatistic, permutationThreshold, quantile, twoProportionTest, wilson } from './stats.ts';
import type { LiveSample, PassiveMetric, PassiveMetricResult } from './passive.ts';

/** Fewest defined samples, on each side, for a metric to be compared at all. */
export const MIN_SAMPLES = 30;

/** How to read one metric from a call; undefined when the call says nothing about it. */
export type MetricSpec =
  | { metric: PassiveMetric; kind: 'rate'; label: string; read: (s: LiveSample) => boolean | undefined }
  | { metric: PassiveMetric; kind: 'distribution'; label: string; read: (s: LiveSample) => number | undefined; minAbsoluteShift: number };

/** Every metric the monitor compares, in report order. */
export const METRICS: readonly MetricSpec[] = Object.freeze([
  { metric: 'refusal_rate', kind: 'rate', label: 'refusal rate', read: (s: LiveSample) => s.refusal },
  { metric: 'tool_error_rate', kind: 'rate', label: 'tool error rate', read: (s: LiveSample) => s.toolError },
  { metric: 'json_validity_rate', kind: 'rate', label: 'JSON validity rate', read: (s: LiveSample) => s.jsonValid },
  { metric: 'response_chars', kind: 'distribution', label: 'response length (chars)', read: (s: LiveSample) => s.responseChars, minAbsoluteShift: 20 },
  { metric: 'latency_ms', kind: 'distribution', label: 'latency (ms)', read: (s: LiveSample) => s.latencyMs, minAbsoluteShift: 50 },
  { metric: 'output_tokens', kind: 'distribution', label: 'output tokens', read: (s: LiveSample) => s.outputTokens, minAbsoluteShift: 5 },
] satisfies MetricSpec[]);

/** One side of a comparison for one metric: a count of successes, or the values sorted ascending. */
export type Measured = { kind: 'rate'; k: number; n: number } | { kind: 'distribution'; sorted: number[]; n: number };

/** Reads one metric over a set of calls, skipping calls where it is undefined (or not a finite number). */
export function measure(spec: MetricSpec, samples: readonly LiveSample[]): Measured {
  if (spec.kind === 'rate') {
    let k = 0;
    let n = 0;
    for (const s of samples) {
      const v = spec.read(s);
      if (typeof v !== 'boolean') continue;
      n++;
      if (v) k++;
    }
    return { kind: 'rate', k, n };
  }
  const values: number[] = [];
  for (const s of samples) {
    const v = spec.read(s);
    if (typeof v === 'number' && Number.isFinite(v)) values.push(v);
  }
  return { kind: 'distribution', sorted: values.sort((a, b) => a - b), n: values.length };
}

/** Whether both sides have enough defined samples to be compared. */
export function comparable(baseline: Measured, current: Measured): boolean {
  return baseline.n >= MIN_SAMPLES && current.n >= MIN_SAMPLES;
}

/** The result for a metric left out of the comparison because a side has too few samples. */
export function skippedResult(spec: MetricSpec, baseline: Measured, current: Measured): PassiveMetricResult {
  return {
    metric: spec.metric,
    kind: spec.kind,
    baseline: centre(baseline),
    current: centre(current),
    nBaseline: baseline.n,
    nCurrent: current.n,
    flagged: false,
    skipped: `fewer than ${MIN_SAMPLES} defined samples (baseline ${baseline.n}, window ${current.n})`,
  };
}

/** Compares a rate: flagged when the two-proportion test rejects at alphaShare and the change is at least minDelta. */
export function compareRate(
  spec: MetricSpec,
  baseline: { k: number; n: number },
  current: { k: number; n: number },
  alphaShare: number,
  minDelta: number,
): PassiveMetricResult {
  const b = baseline.k / baseline.n;
  const c = current.k / current.n;
  // Identical all-or-nothing rates make the pooled variance zero; there is no evidence of change.
  const { p: rawP } = twoProportionTest(baseline.k, baseline.n, current.k, current.n);
  const p = Number.isFinite(rawP) ? rawP : 1;
  const delta = c - b;
  const flagged = p < alphaShare && Math.abs(delta) >= minDelta;
  const result: PassiveMetricResult = {
    metric: spec.metric,
    kind: 'rate',
    baseline: b,
    current: c,
    nBaseline: baseline.n,
    nCurrent: current.n,
    interval: wilson(current.k, current.n, 0.95),
    baselineInterval: wilson(baseline.k, baseline.n, 0.95),
    p,
    flagged,
  };
  if (flagged) {
    result.reason = `${spec.label} ${pct(b)} → ${pct(c)} (${signed(delta * 100, 1)} points; p=${sci(p)} < ${sci(alphaShare)}, ` +
      `window 95% CI ${pct(result.interval![0])}–${pct(result.interval![1])})`;
  }
  return result;
}

/** Compares a distribution: flagged when KS D exceeds the threshold and the median or p90 moved by at least minRelativeShift and the metric's absolute floor. */
export function compareDistribution(
  spec: Extract<MetricSpec, { kind: 'distribution' }>,
  baselineSorted: readonly number[],
  currentSorted: readonly number[],
  threshold: number,
  minRelativeShift: number,
): PassiveMetricResult {
  const d = ksStatistic(baselineSorted, currentSorted);
  const p50: [number, number] = [quantile(baselineSorted, 0.5), quantile(currentSorted, 0.5)];
  const p90: [number, number] = [quantile(baselineSorted, 0.9), quantile(currentSorted, 0.9)];
  const shift50 = relativeShift(p50[0], p50[1]);
  const shift90 = relativeShift(p90[0], p90[1]);
  const large = (shift: number, [before, after]: [number, number]) => Math.abs(shift) >= minRelativeShift && Math.abs(after - before) >= spec.minAbsoluteShift;
  const moved = large(shift50, p50) || large(shift90, p90);
  const flagged = d > threshold && moved;
  const result: PassiveMetricResult = {
    metric: spec.metric,
    kind: 'distribution',
    baseline: p50[0],
    current: p50[1],
    nBaseline: baselineSorted.length,
    nCurrent: currentSorted.length,
    statistic: d,
    threshold,
    quantiles: { p50, p90 },
    flagged,
  };
  if (flagged) {
    result.reason = `${spec.label} median ${num(p50[0])} → ${num(p50[1])} (${signedPct(shift50)}), ` +
      `p90 ${num(p90[0])} → ${num(p90[1])} (${signedPct(shift90)}); KS D=${d.toFixed(3)} > ${threshold.toFixed(3)}`;
  }
  return result;
}

/**
 * The group sizes a calibration splits the baseline into for a window of nCurrent. The baseline
 * cannot hold two groups of the sizes really compared (itself and the window), so the window's size
 * is used when it fits in half the baseline and the halves otherwise; scaleKsThreshold carries the
 * result over to the sizes compared. Windows of any size above half the baseline share one calibration.
 */
export function calibrationSizes(nBaseline: number, nCurrent: number): { a: number; b: number } {
  const a = Math.max(1, Math.min(nCurrent, Math.floor(nBaseline / 2)));
  return { a, b: nBaseline - a };
}

/** The KS threshold at alphaShare for groups of sizes a and b drawn without replacement from the baseline pool. */
export function permutationKsThreshold(pool: readonly number[], sizes: { a: number; b: number }, alphaShare: number, iterations: number, seed: number): number {
  return permutationThreshold(pool, sizes.a, sizes.b, ksStatistic, alphaShare, { iterations, seed });
}

/** Carries a KS threshold calibrated at the sizes a, b over to a baseline of nBaseline against a window of nCurrent. */
export function scaleKsThreshold(threshold: number, sizes: { a: number; b: number }, nBaseline: number, nCurrent: number): number {
  return threshold * ksScale(nBaseline, nCurrent) / ksScale(sizes.a, sizes.b);
}

// Under no change, D shrinks like sqrt((n + m) / (n m)) (the scaling of the Kolmogorov limit), so a
// threshold for one pair of sizes carries over to another by the ratio of these factors.
function ksScale(n: number, m: number): number {
  return Math.sqrt((n + m) / (n * m));
}

function relativeShift(base: number, current: number): number {
  if (base === current) return 0;
  if (base === 0) return Number.POSITIVE_INFINITY;
  return (current - base) / Math.abs(base);
}

function centre(m: Measured): number {
  if (m.n === 0) return 0;
  return m.kind === 'rate' ? m.k / m.n : quantile(m.sorted, 0.5);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function signed(x: number, digits: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
}

function signedPct(x: number): string {
  return Number.isFinite(x) ? `${signed(x * 100, 0)}%` : 'from 0';
}

function sci(x: number): string {
  return x < 0.001 ? x.toExponential(1) : x.toPrecision(2);
}

function num(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
