// Resampling statistics for drift detection: bootstrap intervals for mean scores (whose distribution
// no formula describes well: bounded, lumpy, often piled at 1) and permutation calibration of
// distribution-shift statistics. Randomness comes only from a seeded generator, so the same inputs
// and seed always give the same decision. Re-exported by ./stats.ts, which callers import.

export interface ResamplingOptions {
  /** Coverage of the percentile interval (0.95). */
  confidence?: number;
  /** Bootstrap resamples (10_000). */
  iterations?: number;
  /** PRNG seed (1). */
  seed?: number;
}

/** A small fast seeded PRNG (e.g. mulberry32 or xoshiro128**) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new RangeError(`seededRandom: seed must be finite, got ${seed}`);
  // mulberry32: 32 bits of state is plenty for ~1e6 draws per decision, and it is a few integer ops.
  let state = Math.trunc(seed) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Type-7 quantile over any ascending array-like (typed arrays included). */
function quantileOf(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile: empty sample');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Linear-interpolated quantile (type 7, like R's default) of an ascending-sorted array. */
export function quantile(sorted: readonly number[], q: number): number {
  return quantileOf(sorted, q);
}

function checkSample(values: readonly number[], fn: string): void {
  if (values.length === 0) throw new RangeError(`${fn}: empty sample`);
  for (const v of values) if (!Number.isFinite(v)) throw new RangeError(`${fn}: values must be finite, got ${v}`);
}

function resolveOptions(opts: ResamplingOptions | undefined, fn: string): Required<ResamplingOptions> {
  const { confidence = 0.95, iterations = 10_000, seed = 1 } = opts ?? {};
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`${fn}: confidence must be in (0, 1), got ${confidence}`);
  if (!(Number.isInteger(iterations) && iterations > 0)) throw new RangeError(`${fn}: iterations must be a positive integer, got ${iterations}`);
  return { confidence, iterations, seed };
}

/** Means of `iterations` resamples (with replacement) of values, sorted ascending. */
function resampledMeans(values: readonly number[], iterations: number, seed: number): Float64Array {
  const random = seededRandom(seed);
  const n = values.length;
  const means = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) {
    let sum = 0;
    for (let j = 0; j < n; j++) sum += values[Math.floor(random() * n)];
    means[it] = sum / n;
  }
  return means.sort();
}

function percentileInterval(sortedMeans: Float64Array, confidence: number): [number, number] {
  const tail = (1 - confidence) / 2;
  return [quantileOf(sortedMeans, tail), quantileOf(sortedMeans, 1 - tail)];
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Paired bootstrap over per-unit differences: mean difference, percentile interval at `confidence`, and a two-sided p-value (twice the share of resampled means on the other side of 0, capped at 1; with (count+1)/(iterations+1) smoothing so p is never 0). Defaults: 10,000 iterations, seed 1. */
export function pairedBootstrap(diffs: readonly number[], opts?: ResamplingOptions): { mean: number; interval: [number, number]; p: number } {
  checkSample(diffs, 'pairedBootstrap');
  const { confidence, iterations, seed } = resolveOptions(opts, 'pairedBootstrap');
  const observed = mean(diffs);
  const means = resampledMeans(diffs, iterations, seed);
  const interval = percentileInterval(means, confidence);
  if (observed === 0) return { mean: observed, interval, p: 1 };
  // Resamples landing exactly on 0 count against the observed direction: the conservative choice.
  let otherSide = 0;
  for (const m of means) if (observed > 0 ? m <= 0 : m >= 0) otherSide++;
  return { mean: observed, interval, p: Math.min(1, (2 * (otherSide + 1)) / (iterations + 1)) };
}

/** Percentile bootstrap interval of a sample's mean (one sample), same defaults. */
export function bootstrapMeanInterval(values: readonly number[], opts?: ResamplingOptions): [number, number] {
  checkSample(values, 'bootstrapMeanInterval');
  const { confidence, iterations, seed } = resolveOptions(opts, 'bootstrapMeanInterval');
  return percentileInterval(resampledMeans(values, iterations, seed), confidence);
}

function sortedCopy(values: readonly number[], fn: string): Float64Array {
  if (values.length === 0) throw new RangeError(`${fn}: empty sample`);
  for (const v of values) if (Number.isNaN(v)) throw new RangeError(`${fn}: a value is NaN`);
  return Float64Array.from(values).sort();
}

/** Two-sample Kolmogorov–Smirnov statistic D = sup |F1 − F2| (ties handled correctly). */
export function ksStatistic(a: readonly number[], b: readonly number[]): number {
  const x = sortedCopy(a, 'ksStatistic');
  const y = sortedCopy(b, 'ksStatistic');
  const n = x.length;
  const m = y.length;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    // Step past every copy of the next value in both samples before comparing: the ECDFs jump
    // together at a tie, and measuring mid-jump would overstate D (scores are often tied).
    const v = Math.min(x[i], y[j]);
    while (i < n && x[i] === v) i++;
    while (j < m && y[j] === v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  // Once one sample is exhausted its ECDF is 1 and the other's only climbs towards it.
  return d;
}

/** Permutation calibration: the (1 − alpha) quantile of stat(x, y) when a pooled sample is shuffled and split into groups of sizes sizeA and sizeB (sizeA + sizeB ≤ pool length; draw without replacement), over `iterations` shuffles (default 500) with a seeded PRNG. */
export function permutationThreshold(
  pool: readonly number[],
  sizeA: number,
  sizeB: number,
  stat: (a: readonly number[], b: readonly number[]) => number,
  alpha: number,
  opts?: { iterations?: number; seed?: number },
): number {
  const { iterations = 500, seed = 1 } = opts ?? {};
  for (const [name, v] of [['sizeA', sizeA], ['sizeB', sizeB]] as const) {
    if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`permutationThreshold: ${name} must be a positive integer, got ${v}`);
  }
  const k = sizeA + sizeB;
  if (k > pool.length) throw new RangeError(`permutationThreshold: sizeA + sizeB (${k}) exceeds the pool (${pool.length})`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`permutationThreshold: alpha must be in (0, 1), got ${alpha}`);
  if (!(Number.isInteger(iterations) && iterations > 0)) throw new RangeError(`permutationThreshold: iterations must be a positive integer, got ${iterations}`);
  const random = seededRandom(seed);
  const work = Array.from(pool);
  const n = work.length;
  const stats = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) {
    // A partial Fisher–Yates shuffle of the first k slots is a uniform draw without replacement
    // whatever order earlier iterations left the array in, so it need not be reset.
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(random() * (n - i));
      const t = work[i];
      work[i] = work[j];
      work[j] = t;
    }
    stats[it] = stat(work.slice(0, sizeA), work.slice(sizeA, k));
  }
  return quantileOf(stats.sort(), 1 - alpha);
}
