// The statistics behind drift detection: is a pact's capability still as good as its certified
// baseline? Pass rates are compared with exact tests and score intervals (small samples, rates near 1,
// where normal approximations lie); mean scores with the bootstrap in ./stats-resampling.ts. Every
// function is pure and, where it draws random numbers, deterministic given a seed, so a drift decision
// can be replayed exactly from its inputs.

export {
  bootstrapMeanInterval,
  ksStatistic,
  pairedBootstrap,
  permutationThreshold,
  quantile,
  seededRandom,
} from './stats-resampling.ts';

const SQRT_2PI = Math.sqrt(2 * Math.PI);
const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Standard normal density. */
function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / SQRT_2PI;
}

/** Upper tail Q(x) = P(Z > x) for x ≥ 0, with full relative accuracy far into the tail. */
function upperTail(x: number): number {
  if (x > 40) return 0;
  if (x < 3) {
    // Taylor series of Φ(x) − ½ (Marsaglia 2004): converges for every x, and below 3 the
    // subtraction from ½ still leaves Q with ~13 significant digits.
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let k = 1; k < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); k++) {
      term *= x2 / (2 * k + 1);
      sum += term;
    }
    return 0.5 - normalPdf(x) * sum;
  }
  // Laplace's continued fraction for the Mills ratio, evaluated backwards: unlike 1 − Φ it keeps
  // relative precision where Q is 1e-300. 120 levels are plenty from x = 3 outwards.
  let t = x;
  for (let k = 120; k >= 1; k--) t = x + k / t;
  return normalPdf(x) / t;
}

/** Standard normal CDF. */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) throw new RangeError('normalCdf: z is NaN');
  return z < 0 ? upperTail(-z) : 1 - upperTail(z);
}

// Acklam's rational approximations (relative error < 1.15e-9), polished below by one Halley step.
const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const P_LOW = 0.02425;

/** Quantile for p ≤ ½ (the lower half, where p itself carries full precision). */
function lowerQuantile(p: number): number {
  let x: number;
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
  }
  // One Halley step against the accurate CDF takes Acklam's 1e-9 to near machine precision.
  const u = (normalCdf(x) - p) * SQRT_2PI * Math.exp(0.5 * x * x);
  return Number.isFinite(u) ? x - u / (1 + 0.5 * x * u) : x;
}

/** Standard normal quantile (inverse CDF), accurate to ~1e-9 (e.g. Acklam or Wichura AS241). */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  // 1 − p is exact for p in [½, 1] (Sterbenz), so reflecting loses nothing.
  return p > 0.5 ? -lowerQuantile(1 - p) : lowerQuantile(p);
}

/** z with P(|Z| < z) = confidence, i.e. the two-sided critical value. */
function twoSidedZ(confidence: number, fn: string): number {
  checkLevel(confidence, 'confidence', fn);
  return normalQuantile(1 - (1 - confidence) / 2);
}

function checkLevel(x: number, name: string, fn: string): void {
  if (!(x > 0 && x < 1)) throw new RangeError(`${fn}: ${name} must be in (0, 1), got ${x}`);
}

function checkCount(x: number, name: string, fn: string, integer: boolean): void {
  if (!Number.isFinite(x) || x < 0 || (integer && !Number.isInteger(x))) {
    throw new RangeError(`${fn}: ${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${x}`);
  }
}

/** Wilson score interval for k successes of n at the given confidence (default 0.95); n = 0 → [0, 1]. */
export function wilson(k: number, n: number, confidence = 0.95): [number, number] {
  checkCount(k, 'k', 'wilson', false);
  checkCount(n, 'n', 'wilson', false);
  if (k > n) throw new RangeError(`wilson: k (${k}) exceeds n (${n})`);
  const z = twoSidedZ(confidence, 'wilson');
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2n = (z * z) / n;
  const denom = 1 + z2n;
  const centre = (p + z2n / 2) / denom;
  const half = (z * Math.sqrt(p * (1 - p) / n + z2n / (4 * n))) / denom;
  // At k = 0 or k = n the bound is exactly 0 or 1; rounding would otherwise leave 1e-17 outside.
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

const LOG_FACTORIAL_TABLE: number[] = (() => {
  // Products stay exact-ish up to 170! (the last finite one), which beats summing logs.
  const table = [0];
  let f = 1;
  for (let i = 1; i <= 170; i++) {
    f *= i;
    table.push(Math.log(f));
  }
  return table;
})();

/** ln(n!) for a non-negative integer: a table up to 170, Stirling's series beyond (error < 1e-25). */
function logFactorial(n: number): number {
  if (n <= 170) return LOG_FACTORIAL_TABLE[n];
  const inv = 1 / n;
  const inv2 = inv * inv;
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)));
  return (n + 0.5) * Math.log(n) - n + LN_SQRT_2PI + series;
}

/** Exact two-sided binomial test p-value for k of n at probability p (default 0.5), by the method of small p-values (sum of probabilities ≤ P(k), with a relative tolerance like R's binom.test). Must be exact and stable for n up to 10,000 (use log-space pmf). */
export function binomialTwoSided(k: number, n: number, p = 0.5): number {
  checkCount(k, 'k', 'binomialTwoSided', true);
  checkCount(n, 'n', 'binomialTwoSided', true);
  if (k > n) throw new RangeError(`binomialTwoSided: k (${k}) exceeds n (${n})`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`binomialTwoSided: p must be in [0, 1], got ${p}`);
  if (n === 0) return 1;
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const logN = logFactorial(n);
  const logPmf = (i: number) => logN - logFactorial(i) - logFactorial(n - i) + i * logP + (n - i) * logQ;
  const observed = logPmf(k);
  // R's binom.test counts outcomes within a relative 1e-7 of P(k) as "as extreme", so values that
  // tie in exact arithmetic are not split by rounding.
  const cutoff = observed + Math.log1p(1e-7);
  // Summed relative to P(k) so a p-value of 1e-300 neither underflows term by term nor loses digits.
  let scaled = 0;
  for (let i = 0; i <= n; i++) {
    const l = logPmf(i);
    if (l <= cutoff) scaled += Math.exp(l - observed);
  }
  return Math.min(1, Math.exp(observed + Math.log(scaled)));
}

/** Exact McNemar test (two-sided) on the discordant pair counts b and c: binomialTwoSided(b, b + c, 0.5); 1 when b + c = 0. */
export function mcnemarExact(b: number, c: number): number {
  checkCount(b, 'b', 'mcnemarExact', true);
  checkCount(c, 'c', 'mcnemarExact', true);
  return b + c === 0 ? 1 : binomialTwoSided(b, b + c, 0.5);
}

/** Exact sign test over paired differences (zeros dropped): two-sided p. */
export function signTest(diffs: readonly number[]): number {
  let positive = 0;
  let nonZero = 0;
  for (const d of diffs) {
    if (Number.isNaN(d)) throw new RangeError('signTest: a difference is NaN');
    if (d !== 0) {
      nonZero++;
      if (d > 0) positive++;
    }
  }
  return nonZero === 0 ? 1 : binomialTwoSided(positive, nonZero, 0.5);
}

/** Newcombe's hybrid score interval (1998, method 10) for a difference of paired proportions. Counts of pairs: n11 both succeed, n10 first succeeds only, n01 second succeeds only, n00 neither. Returns the interval for p2 − p1 = (n01 − n10)/n (second minus first). */
export function newcombePaired(n11: number, n10: number, n01: number, n00: number, confidence = 0.95): [number, number] {
  for (const [name, v] of [['n11', n11], ['n10', n10], ['n01', n01], ['n00', n00]] as const) checkCount(v, name, 'newcombePaired', false);
  checkLevel(confidence, 'confidence', 'newcombePaired');
  const n = n11 + n10 + n01 + n00;
  if (n === 0) return [-1, 1];
  const first = n11 + n10;
  const second = n11 + n01;
  const p1 = first / n;
  const p2 = second / n;
  const [l1, u1] = wilson(first, n, confidence);
  const [l2, u2] = wilson(second, n, confidence);
  // Newcombe's correlation between the two margins, with his continuity adjustment: positive
  // association is shrunk by n/2 (and to 0 if that is all of it); a margin of 0 gives no estimate.
  const marginProduct = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00);
  const cross = n11 * n00 - n10 * n01;
  const adjusted = cross > n / 2 ? cross - n / 2 : cross < 0 ? cross : 0;
  const phi = marginProduct > 0 ? adjusted / Math.sqrt(marginProduct) : 0;
  // Square-and-add of the Wilson half-widths on the side each bound leans towards (for p2 − p1 the
  // lower bound uses p2's lower and p1's upper excursion, and vice versa).
  const below = Math.sqrt(Math.max(0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2));
  const above = Math.sqrt(Math.max(0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2));
  const diff = (n01 - n10) / n;
  return [Math.max(-1, diff - below), Math.min(1, diff + above)];
}

function checkPValues(pValues: readonly number[], alpha: number, fn: string): void {
  checkLevel(alpha, 'alpha', fn);
  for (const p of pValues) if (!(p >= 0 && p <= 1)) throw new RangeError(`${fn}: p-values must be in [0, 1], got ${p}`);
}

/** Indices of pValues from smallest to largest; ties keep input order so results are reproducible. */
function ascendingOrder(pValues: readonly number[]): number[] {
  return pValues.map((_, i) => i).sort((a, b) => pValues[a] - pValues[b] || a - b);
}

/** Holm's step-down procedure: which hypotheses are rejected at family-wise level alpha, in input order. */
export function holm(pValues: readonly number[], alpha: number): boolean[] {
  checkPValues(pValues, alpha, 'holm');
  const m = pValues.length;
  const rejected = new Array<boolean>(m).fill(false);
  const order = ascendingOrder(pValues);
  for (let rank = 0; rank < m; rank++) {
    const i = order[rank];
    if (pValues[i] > alpha / (m - rank)) break;
    rejected[i] = true;
  }
  return rejected;
}

/** The level each hypothesis is compared with in Holm's procedure (alpha / (m − rank)), in input order; used to size each test's interval consistently. */
export function holmLevels(pValues: readonly number[], alpha: number): number[] {
  checkPValues(pValues, alpha, 'holmLevels');
  const m = pValues.length;
  const levels = new Array<number>(m);
  ascendingOrder(pValues).forEach((i, rank) => {
    levels[i] = alpha / (m - rank);
  });
  return levels;
}

function powerMultiplier(n: number, alpha: number, power: number, fn: string): number {
  if (!(n > 0 && Number.isFinite(n))) throw new RangeError(`${fn}: n must be positive, got ${n}`);
  checkLevel(alpha, 'alpha', fn);
  checkLevel(power, 'power', fn);
  return normalQuantile(1 - alpha / 2) + normalQuantile(power);
}

/** The smallest true difference in a pass rate around p that a paired comparison of n trials per side detects with the given power (default 0.8) at two-sided level alpha, assuming independent trials: (z_{1−α/2} + z_{power}) · sqrt(2·p(1−p)/n). For p(1-p) use max(p(1-p), 1/n) so p = 1 does not give 0. */
export function minimumDetectableEffect(p: number, n: number, alpha: number, power = 0.8): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`minimumDetectableEffect: p must be in [0, 1], got ${p}`);
  const multiplier = powerMultiplier(n, alpha, power, 'minimumDetectableEffect');
  return multiplier * Math.sqrt((2 * Math.max(p * (1 - p), 1 / n)) / n);
}

/** Same for a mean score, from the standard deviation of per-case score differences (or of scores, times √2) and the number of cases. */
export function minimumDetectableScoreEffect(sd: number, n: number, alpha: number, power = 0.8): number {
  if (!(sd >= 0 && Number.isFinite(sd))) throw new RangeError(`minimumDetectableScoreEffect: sd must be non-negative, got ${sd}`);
  return (powerMultiplier(n, alpha, power, 'minimumDetectableScoreEffect') * sd) / Math.sqrt(n);
}

/** Two-proportion z-test (pooled, two-sided) for x1/n1 vs x2/n2; p = 1 when either n is 0 or both rates are equal. z is (x1/n1 − x2/n2) / SE. */
export function twoProportionTest(x1: number, n1: number, x2: number, n2: number): { z: number; p: number } {
  for (const [name, v] of [['x1', x1], ['n1', n1], ['x2', x2], ['n2', n2]] as const) checkCount(v, name, 'twoProportionTest', false);
  if (x1 > n1 || x2 > n2) throw new RangeError(`twoProportionTest: successes exceed trials (${x1}/${n1}, ${x2}/${n2})`);
  if (n1 === 0 || n2 === 0) return { z: 0, p: 1 };
  const diff = x1 / n1 - x2 / n2;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (diff === 0 || se === 0) return { z: 0, p: 1 };
  const z = diff / se;
  return { z, p: Math.min(1, 2 * upperTail(Math.abs(z))) };
}
