// The drift statistics against independently published figures (R's qnorm/pnorm, binom.test,
// prop.test, ks.test and quantile outputs; Newcombe 1998; Fagerland, Lydersen & Laake's
// contingencytables test suite), plus fast-check properties and a null-calibration simulation: a
// false drift alarm pages someone, so the tests pin the error rates, not just the arithmetic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  binomialTwoSided,
  bootstrapMeanInterval,
  holm,
  holmLevels,
  ksStatistic,
  mcnemarExact,
  minimumDetectableEffect,
  minimumDetectableScoreEffect,
  newcombePaired,
  normalCdf,
  normalQuantile,
  pairedBootstrap,
  permutationThreshold,
  quantile,
  seededRandom,
  signTest,
  twoProportionTest,
  wilson,
} from '../../evals/stats.ts';

function near(actual: number, expected: number, tol: number, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} is not within ${tol} of ${expected}`);
}

/** Standard normal draws from a seeded uniform source (Box–Muller), for reproducible samples. */
function normalSample(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const out: number[] = [];
  while (out.length < n) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const theta = 2 * Math.PI * random();
    out.push(r * Math.cos(theta), r * Math.sin(theta));
  }
  return out.slice(0, n);
}

test('normal quantile and CDF match R qnorm/pnorm', () => {
  // R: qnorm(0.975) = 1.959963985; qnorm(0.95) = 1.644853627; qnorm(0.001) = -3.090232306;
  // qnorm(1e-10) = -6.361340902.
  near(normalQuantile(0.975), 1.959963985, 1e-9, 'qnorm(0.975)');
  near(normalQuantile(0.95), 1.644853627, 1e-9, 'qnorm(0.95)');
  near(normalQuantile(0.001), -3.090232306, 1e-9, 'qnorm(0.001)');
  near(normalQuantile(1e-10), -6.361340902, 1e-9, 'qnorm(1e-10)');
  assert.equal(normalQuantile(0.5), 0);
  assert.equal(normalQuantile(0), -Infinity);
  assert.equal(normalQuantile(1), Infinity);
  // R: pnorm(1.96) = 0.9750021049; pnorm(-3) = 0.001349898032; pnorm(-8.5) = 9.479534822e-18 (relative).
  near(normalCdf(1.96), 0.9750021049, 1e-10, 'pnorm(1.96)');
  near(normalCdf(-3), 0.001349898032, 1e-12, 'pnorm(-3)');
  near(normalCdf(-8.5) / 9.479534822e-18, 1, 1e-9, 'pnorm(-8.5) relative');
  assert.equal(normalCdf(0), 0.5);
  assert.throws(() => normalQuantile(1.5), RangeError);
  assert.throws(() => normalQuantile(Number.NaN), RangeError);
});

test('property: normalCdf inverts normalQuantile', () => {
  fc.assert(
    fc.property(fc.double({ min: 1e-12, max: 1 - 1e-12, noNaN: true }), (p) => {
      const back = normalCdf(normalQuantile(p));
      return Math.abs(back - p) <= 1e-12 * Math.max(1e-3, Math.min(p, 1 - p)) + 1e-15;
    }),
  );
});

test('Wilson score interval matches the textbook and prop.test(correct = FALSE) values', () => {
  // Textbook / R prop.test(8, 10, correct = FALSE)$conf.int: 0.4901625 0.9433178.
  const [lo, hi] = wilson(8, 10);
  near(lo, 0.4901625, 1e-6, 'wilson(8,10) lower');
  near(hi, 0.9433178, 1e-6, 'wilson(8,10) upper');
  // Newcombe (1998a, Stat Med 17:857) example 81/263: 0.2553 to 0.3662.
  const [lo2, hi2] = wilson(81, 263);
  near(lo2, 0.2553, 5e-5);
  near(hi2, 0.3662, 5e-5);
  // R prop.test(0, 10, correct = FALSE): 0 to 0.2775328; 90% for 8/10: 0.5407928 to 0.9314420.
  assert.deepEqual(wilson(0, 10).map((x) => Math.round(x * 1e7) / 1e7), [0, 0.2775328]);
  assert.equal(wilson(10, 10)[1], 1);
  const [lo3, hi3] = wilson(8, 10, 0.9);
  near(lo3, 0.5407928, 1e-6);
  near(hi3, 0.931442, 1e-6);
  assert.deepEqual(wilson(0, 0), [0, 1]);
  assert.throws(() => wilson(11, 10), RangeError);
  assert.throws(() => wilson(-1, 10), RangeError);
  assert.throws(() => wilson(1, 10, 1), RangeError);
});

test('property: the Wilson interval lies in [0, 1] and contains k/n', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0.5, max: 0.999, noNaN: true }), (n, share, conf) => {
      const k = Math.round(share * n);
      const [lo, hi] = wilson(k, n, conf);
      return lo >= 0 && hi <= 1 && lo <= k / n + 1e-12 && k / n <= hi + 1e-12;
    }),
  );
});

test('exact binomial test matches R binom.test (method of small p-values)', () => {
  // R ?binom.test example: binom.test(c(682, 243), p = 3/4) gives p-value = 0.3825 (0.3824916 to 7 digits).
  near(binomialTwoSided(682, 925, 0.75), 0.3824916, 1e-7, 'binom.test(682, 925, 3/4)');
  // binom.test(2, 14): 2 · (1 + 14 + 91) / 2^14 = 212/16384, exact.
  near(binomialTwoSided(2, 14), 212 / 16384, 1e-15);
  // binom.test(7, 20, 0.25): 0.3054785 (asymmetric tails; also SciPy binomtest 0.30547848486367).
  near(binomialTwoSided(7, 20, 0.25), 0.30547848486367, 1e-12);
  // Large n, log-space (SciPy binomtest, the same small-p-values rule as R): 4850 of 10000 gives
  // 0.002787967517713; 4000 of 10000 gives 1.7404316412268e-89.
  near(binomialTwoSided(4850, 10000), 0.002787967517713, 1e-12);
  near(binomialTwoSided(4000, 10000) / 1.7404316412268e-89, 1, 1e-9, 'binom.test(4000, 10000) relative');
  // At the mode every outcome is at most as likely: p = 1 (R returns exactly 1 via x == n·p).
  near(binomialTwoSided(3, 10, 0.3), 1, 1e-12);
  near(binomialTwoSided(5000, 10000), 1, 1e-9);
  assert.equal(binomialTwoSided(0, 0), 1);
  assert.equal(binomialTwoSided(0, 10, 0), 1);
  assert.equal(binomialTwoSided(1, 10, 0), 0);
  assert.throws(() => binomialTwoSided(11, 10), RangeError);
  assert.throws(() => binomialTwoSided(1.5, 10), RangeError);
  assert.throws(() => binomialTwoSided(1, 10, 2), RangeError);
});

test('property: binomial p-values lie in [0, 1] and are symmetric at p = 0.5', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 400 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (n, share, p) => {
      const k = Math.round(share * n);
      const pv = binomialTwoSided(k, n, p);
      const half = binomialTwoSided(k, n);
      // Without R's relative tolerance the tied mirror outcome could be dropped and break symmetry.
      return pv >= 0 && pv <= 1 && Math.abs(half - binomialTwoSided(n - k, n)) <= 1e-12;
    }),
  );
});

test('exact McNemar and sign tests', () => {
  // Newcombe's paired example has discordant pairs b = 12, c = 2: exact McNemar = binom.test(2, 14)
  // = 212/16384 = 0.01293945.
  near(mcnemarExact(12, 2), 0.01293945, 1e-8);
  assert.equal(mcnemarExact(12, 2), mcnemarExact(2, 12));
  assert.equal(mcnemarExact(0, 0), 1);
  // 8 non-zero differences, 7 positive: binom.test(7, 8) = 18/256 = 0.0703125; zeros are dropped.
  near(signTest([1, 2, -1, 0, 0, 3, 4, 5, 6, 7]), 0.0703125, 1e-15);
  assert.equal(signTest([0, 0]), 1);
  assert.equal(signTest([]), 1);
  assert.throws(() => mcnemarExact(-1, 2), RangeError);
  assert.throws(() => signTest([1, Number.NaN]), RangeError);
});

test("Newcombe's paired interval (method 10) matches published examples", () => {
  // Newcombe (1998b), Stat Med 17:2635, Table II, example 36/12/2/0: method 10 gives 0.0569 to 0.3404 for
  // p1 − p2 = 0.2; re-derived independently here with SciPy (0.056930, 0.340428). We return p2 − p1.
  const [lo, hi] = newcombePaired(36, 12, 2, 0);
  near(lo, -0.340428, 1e-5, 'lower');
  near(hi, -0.05693, 1e-5, 'upper');
  // contingencytables (Fagerland, Lydersen & Laake) test-ch8: table [59 6; 16 80] gives
  // "estimate = -0.0621 (95% CI -0.1186 to -0.0046)" for p1 − p2.
  const [lo2, hi2] = newcombePaired(59, 6, 16, 80);
  near(lo2, 0.0046, 5e-5);
  near(hi2, 0.1186, 5e-5);
  // Same data at 90% (SciPy re-derivation): 0.081665 to 0.317123 for p1 − p2.
  const [lo3, hi3] = newcombePaired(36, 12, 2, 0, 0.9);
  near(lo3, -0.317123, 1e-5);
  near(hi3, -0.081665, 1e-5);
  assert.deepEqual(newcombePaired(0, 0, 0, 0), [-1, 1]);
  // No discordant pairs: the interval still has width (the margins are uncertain) and contains 0.
  const [lo4, hi4] = newcombePaired(40, 0, 0, 10);
  assert.ok(lo4 < 0 && hi4 > 0);
  assert.throws(() => newcombePaired(1, -1, 0, 0), RangeError);
});

test('property: the paired interval contains the observed difference and stays in [-1, 1]', () => {
  const count = fc.integer({ min: 0, max: 60 });
  fc.assert(
    fc.property(count, count, count, count, (a, b, c, d) => {
      const n = a + b + c + d;
      const [lo, hi] = newcombePaired(a, b, c, d);
      const diff = n === 0 ? 0 : (c - b) / n;
      return lo >= -1 && hi <= 1 && lo <= diff + 1e-12 && diff <= hi + 1e-12;
    }),
  );
});

test("Holm's procedure and its per-hypothesis levels", () => {
  // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02, so at 0.05: T F F T.
  const p = [0.01, 0.04, 0.03, 0.005];
  assert.deepEqual(holm(p, 0.05), [true, false, false, true]);
  assert.deepEqual(holmLevels(p, 0.05), [0.05 / 3, 0.05 / 1, 0.05 / 2, 0.05 / 4]);
  assert.deepEqual(holm([], 0.05), []);
  assert.throws(() => holm([0.1], 0), RangeError);
  assert.throws(() => holm([1.2], 0.05), RangeError);
});

test('property: Holm rejects a superset of Bonferroni, and rejection means p ≤ its Holm level', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }), fc.double({ min: 0.001, max: 0.5, noNaN: true }), (ps, alpha) => {
      const rejected = holm(ps, alpha);
      const levels = holmLevels(ps, alpha);
      return ps.every((p, i) => (!(p <= alpha / ps.length) || rejected[i]) && (!rejected[i] || p <= levels[i]));
    }),
  );
});

test('minimum detectable effects follow the normal power formula', () => {
  // (qnorm(0.975) + qnorm(0.8)) · sqrt(2 · 0.85 · 0.15 / 100) = 0.1414731 (computed in SciPy).
  near(minimumDetectableEffect(0.85, 100, 0.05), 0.1414731, 1e-6);
  // p = 1 falls back to p(1 − p) = 1/n: 2.801585 · sqrt(2 / 100²) = 0.0396204.
  near(minimumDetectableEffect(1, 100, 0.05), 0.0396204, 1e-6);
  // (qnorm(0.995) + qnorm(0.9)) · 0.3 / sqrt(40) = 0.1829716.
  near(minimumDetectableScoreEffect(0.3, 40, 0.01, 0.9), 0.1829716, 1e-6);
  assert.ok(minimumDetectableEffect(0.85, 400, 0.05) < minimumDetectableEffect(0.85, 100, 0.05));
  assert.throws(() => minimumDetectableEffect(0.5, 0, 0.05), RangeError);
  assert.throws(() => minimumDetectableScoreEffect(-1, 10, 0.05), RangeError);
});

test('two-proportion z-test matches R prop.test(correct = FALSE)', () => {
  // R: prop.test(c(15, 25), c(50, 50), correct = FALSE): X-squared = 4.1667, p-value = 0.04123.
  const r = twoProportionTest(15, 50, 25, 50);
  near(r.z ** 2, 4.166667, 1e-6);
  assert.ok(r.z < 0, 'z is x1/n1 − x2/n2');
  near(r.p, 0.04122683, 1e-8);
  assert.deepEqual(twoProportionTest(5, 10, 10, 20), { z: 0, p: 1 });
  assert.deepEqual(twoProportionTest(0, 0, 3, 10), { z: 0, p: 1 });
  assert.deepEqual(twoProportionTest(10, 10, 20, 20), { z: 0, p: 1 });
  assert.throws(() => twoProportionTest(11, 10, 1, 2), RangeError);
});

test('KS statistic and type-7 quantiles match R', () => {
  // ks.test(1:5, 3:8)$statistic = 0.5; with ties, c(1,1,2,2,3) vs c(1,2,2,3,3) has D = 0.2 (both
  // checked with SciPy ks_2samp; a merge that compares mid-tie would report 0.4).
  assert.equal(ksStatistic([1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8]), 0.5);
  near(ksStatistic([1, 1, 2, 2, 3], [1, 2, 2, 3, 3]), 0.2, 1e-15);
  // Scores piled on a few values (SciPy ks_2samp): 0.2285714.
  near(ksStatistic([0.1, 0.5, 0.5, 0.9, 1], [0.5, 0.5, 0.5, 1, 1, 1, 0.2]), 0.2285714, 1e-7);
  assert.equal(ksStatistic([3, 1, 2], [2, 3, 1]), 0);
  assert.throws(() => ksStatistic([], [1]), RangeError);
  // R quantile() type 7 (= NumPy's default, used to check): quantile(1:4, 0.25) = 1.75;
  // quantile(1:10, 0.1) = 1.9; quantile(c(3.5, 7, 9.25), 0.9) = 8.8.
  assert.equal(quantile([1, 2, 3, 4], 0.25), 1.75);
  near(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1), 1.9, 1e-12);
  near(quantile([3.5, 7, 9.25], 0.9), 8.8, 1e-12);
  assert.equal(quantile([42], 0.3), 42);
  assert.equal(quantile([1, 2], 1), 2);
  assert.throws(() => quantile([], 0.5), RangeError);
});

test('seeded PRNG is deterministic, in [0, 1) and roughly uniform', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const c = seededRandom(8);
  const xs = Array.from({ length: 20_000 }, () => a());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert.notEqual(xs[0], c());
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  near(xs.reduce((s, x) => s + x, 0) / xs.length, 0.5, 0.01, 'mean of uniforms');
});

test('bootstrap: deterministic per seed, sensible intervals and p-values', (t) => {
  const sample = normalSample(50, 3).map((z) => 0.1 + 0.2 * z);
  const first = pairedBootstrap(sample);
  assert.deepEqual(pairedBootstrap(sample), first);
  assert.notDeepEqual(pairedBootstrap(sample, { seed: 2 }).interval, first.interval);
  const mean = sample.reduce((s, x) => s + x, 0) / sample.length;
  near(first.mean, mean, 1e-15);
  // The percentile interval should be close to the normal-theory mean ± 1.96·s/√n.
  const sd = Math.sqrt(sample.reduce((s, x) => s + (x - mean) ** 2, 0) / (sample.length - 1));
  const half = (1.959964 * sd) / Math.sqrt(sample.length);
  t.diagnostic(`bootstrap ${first.interval.map((x) => x.toFixed(4)).join('..')} vs normal ${(mean - half).toFixed(4)}..${(mean + half).toFixed(4)}, p = ${first.p}`);
  near(first.interval[0], mean - half, 0.15 * half, 'lower');
  near(first.interval[1], mean + half, 0.15 * half, 'upper');
  assert.deepEqual(bootstrapMeanInterval(sample), first.interval);
  // All differences positive: no resample reaches 0, so p is the smoothing floor 2/(B + 1).
  assert.equal(pairedBootstrap([0.2, 0.1, 0.3, 0.25], { iterations: 999 }).p, 2 / 1000);
  assert.equal(pairedBootstrap([1, -1, 0.5, -0.5]).p, 1);
  const noisy = pairedBootstrap(normalSample(40, 11));
  assert.ok(noisy.p > 0.05 && noisy.p <= 1, `null sample p = ${noisy.p}`);
  assert.ok(noisy.interval[0] < 0 && noisy.interval[1] > 0);
  assert.throws(() => pairedBootstrap([]), RangeError);
  assert.throws(() => pairedBootstrap([1], { confidence: 1 }), RangeError);
  assert.throws(() => bootstrapMeanInterval([1], { iterations: 0 }), RangeError);
});

test('permutation threshold for KS at alpha 0.05 is close to the asymptotic 1.358·sqrt((m+n)/(mn))', (t) => {
  for (const [m, n] of [[50, 50], [40, 80]] as const) {
    const pool = normalSample(m + n + 20, m * 1000 + n);
    const threshold = permutationThreshold(pool, m, n, ksStatistic, 0.05, { iterations: 500, seed: 5 });
    const asymptotic = 1.358 * Math.sqrt((m + n) / (m * n));
    t.diagnostic(`m=${m} n=${n}: permutation ${threshold.toFixed(4)} vs asymptotic ${asymptotic.toFixed(4)}`);
    assert.ok(Math.abs(threshold / asymptotic - 1) < 0.2, `${threshold} vs ${asymptotic}`);
  }
  assert.equal(permutationThreshold([1, 2, 3], 1, 1, ksStatistic, 0.05, { seed: 9 }), permutationThreshold([1, 2, 3], 1, 1, ksStatistic, 0.05, { seed: 9 }));
  assert.throws(() => permutationThreshold([1, 2, 3], 2, 2, ksStatistic, 0.05), RangeError);
  assert.throws(() => permutationThreshold([1, 2, 3], 1, 1, ksStatistic, 1), RangeError);
});

test('calibration: exact McNemar under the null rejects at most alpha', (t) => {
  // 2,000 null comparisons: 50 paired trials, each side passing independently with p = 0.85.
  const random = seededRandom(2024);
  const runs = 2000;
  let rejections = 0;
  for (let run = 0; run < runs; run++) {
    let b = 0;
    let c = 0;
    for (let i = 0; i < 50; i++) {
      const first = random() < 0.85;
      const second = random() < 0.85;
      if (first && !second) b++;
      else if (!first && second) c++;
    }
    if (mcnemarExact(b, c) <= 0.05) rejections++;
  }
  const rate = rejections / runs;
  t.diagnostic(`McNemar null rejection rate at alpha 0.05: ${rate.toFixed(4)} (${rejections}/${runs})`);
  // The exact test is conservative; 0.015 is three binomial standard errors of a 5% rate over 2,000 runs.
  assert.ok(rate <= 0.05 + 0.015, `rejection rate ${rate}`);
});
