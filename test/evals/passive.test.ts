// The passive monitor on synthetic live traffic shaped like a support agent's: refusals are short
// replies, output tokens follow the reply's length, latency is lognormal and grows with the tokens,
// 40% of calls carry a tool result (5% of them errors) and 30% ask for JSON (98% valid). The
// acceptance case (refusals from 2% to 10% over 500 calls) must be flagged and nothing else; an
// unchanged stream must stay quiet, also over many seeds.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { DEFAULT_PASSIVE_CONFIG, PassiveMonitor, type LiveSample, type PassiveComparison, type PassiveConfig, type PassiveMetric } from '../../evals/passive.ts';
import { normalQuantile, seededRandom } from '../../evals/stats.ts';

interface Behaviour {
  refusalRate: number;
  /** Exactly this many refusals at random positions, instead of drawing each call at refusalRate. */
  refusalCount?: number;
  latencyFactor: number;
  /** Scales the length of answers (not refusals), and with it tokens and some latency. */
  charsFactor: number;
  /** Share of calls carrying a tool result, and the share of those that report an error. */
  toolShare: number;
  toolErrorRate: number;
  /** Share of calls asking for JSON, and the share of those whose reply parses. */
  jsonShare: number;
  jsonValidRate: number;
  withTokens: boolean;
}

const NORMAL: Behaviour = { refusalRate: 0.02, latencyFactor: 1, charsFactor: 1, toolShare: 0.4, toolErrorRate: 0.05, jsonShare: 0.3, jsonValidRate: 0.98, withTokens: true };

/** n calls of the given behaviour, reproducible from rand. */
function traffic(rand: () => number, n: number, b: Partial<Behaviour> = {}): LiveSample[] {
  const be = { ...NORMAL, ...b };
  const z = () => normalQuantile(Math.min(1 - 1e-9, Math.max(1e-9, rand())));
  const exact = be.refusalCount === undefined ? undefined : positions(rand, n, be.refusalCount);
  const out: LiveSample[] = [];
  for (let i = 0; i < n; i++) {
    const refusal = exact ? exact.has(i) : rand() < be.refusalRate;
    const responseChars = refusal ? Math.round(110 + 25 * Math.abs(z())) : Math.max(20, Math.round(be.charsFactor * (800 + 200 * z())));
    const tokens = Math.max(1, Math.round((responseChars / 4) * Math.exp(0.1 * z())));
    const latencyMs = be.latencyFactor * (250 + 6 * tokens) * Math.exp(0.35 * z());
    const sample: LiveSample = { responseChars, refusal, latencyMs };
    if (be.withTokens) sample.outputTokens = tokens;
    if (rand() < be.toolShare) sample.toolError = rand() < be.toolErrorRate;
    if (rand() < be.jsonShare) sample.jsonValid = rand() < be.jsonValidRate;
    out.push(sample);
  }
  return out;
}

/** k distinct indices below n, drawn uniformly. */
function positions(rand: () => number, n: number, k: number): Set<number> {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return new Set(idx.slice(0, k));
}

function config(seed: number, over: Partial<PassiveConfig> = {}): PassiveConfig {
  return { ...DEFAULT_PASSIVE_CONFIG, seed, ...over };
}

/** Feeds the calls and returns every comparison they completed. */
function feed(monitor: PassiveMonitor, samples: readonly LiveSample[]): PassiveComparison[] {
  const out: PassiveComparison[] = [];
  for (const s of samples) {
    const c = monitor.observe(s);
    if (c) out.push(c);
  }
  return out;
}

/** The single comparison one window of calls completes. */
function window(monitor: PassiveMonitor, samples: readonly LiveSample[]): PassiveComparison {
  const done = feed(monitor, samples);
  assert.equal(done.length, 1, 'one window, one comparison');
  return done[0];
}

function metric(c: PassiveComparison, name: PassiveMetric) {
  const m = c.metrics.find((r) => r.metric === name);
  assert.ok(m, `no result for ${name}`);
  return m;
}

const flaggedNames = (c: PassiveComparison) => c.flagged.map((m) => m.metric);

test('acceptance: refusals rising from 2% to 10% over 500 calls are flagged, and nothing else', (t) => {
  const rand = seededRandom(1);
  const monitor = new PassiveMonitor(config(1));
  // Exactly 10 of 500 and 50 of 500: the shift the acceptance names, not a draw that may fall short of it.
  assert.deepEqual(feed(monitor, traffic(rand, 500, { refusalCount: 10 })), [], 'the baseline period compares nothing');
  const started = performance.now();
  const c = window(monitor, traffic(rand, 500, { refusalCount: 50 }));
  const ms = performance.now() - started;
  const r = metric(c, 'refusal_rate');
  t.diagnostic(`refusal ${r.baseline.toFixed(3)} → ${r.current.toFixed(3)}, p=${r.p!.toExponential(2)}; window with first calibration ${ms.toFixed(0)} ms`);
  t.diagnostic(r.reason ?? '');
  assert.deepEqual(flaggedNames(c), ['refusal_rate']);
  assert.equal(r.kind, 'rate');
  assert.equal(r.baseline, 0.02);
  assert.equal(r.current, 0.1);
  assert.equal(r.nBaseline, 500);
  assert.equal(r.nCurrent, 500);
  assert.ok(r.interval![0] > r.baselineInterval![1], 'the intervals do not overlap');
  assert.match(r.reason!, /refusal rate 2\.0% → 10\.0%/);
  assert.equal(c.window, 1);
  assert.equal(c.metrics.length, 6);
  assert.ok(c.metrics.every((m) => m.skipped === undefined), 'every metric was compared');
});

test('refusal rates drawn at 2% then 10% per call are flagged in nearly every window', (t) => {
  // Per-call draws scatter the observed shift around 8 points; the 5-point floor costs a little power.
  let flagged = 0;
  let other = 0;
  for (let seed = 200; seed < 240; seed++) {
    const rand = seededRandom(seed);
    const monitor = new PassiveMonitor(config(seed));
    feed(monitor, traffic(rand, 500));
    const c = window(monitor, traffic(rand, 500, { refusalRate: 0.1 }));
    if (metric(c, 'refusal_rate').flagged) flagged++;
    if (c.flagged.some((m) => m.metric !== 'refusal_rate')) other++;
  }
  t.diagnostic(`refusal_rate flagged in ${flagged}/40 windows; another metric flagged in ${other}/40`);
  assert.ok(flagged >= 36, `only ${flagged} of 40 windows flagged the refusal shift`);
  assert.ok(other <= 2, `${other} of 40 windows flagged a metric that did not change`);
});

test('an unchanged stream is not flagged', (t) => {
  const rand = seededRandom(2);
  const monitor = new PassiveMonitor(config(2));
  feed(monitor, traffic(rand, 500));
  const c = window(monitor, traffic(rand, 500));
  for (const m of c.metrics) {
    t.diagnostic(`${m.metric}: ${m.baseline.toFixed(3)} → ${m.current.toFixed(3)}${m.p !== undefined ? ` p=${m.p.toFixed(3)}` : ` D=${m.statistic!.toFixed(3)} (threshold ${m.threshold!.toFixed(3)})`}`);
  }
  assert.deepEqual(flaggedNames(c), []);
  assert.ok(c.metrics.every((m) => m.skipped === undefined), 'every metric was compared, so the quiet is not a skip');
});

test('false flags over 40 unchanged streams stay within the family-wise budget', (t) => {
  let flaggedWindows = 0;
  let worstRatio = 0;
  for (let seed = 100; seed < 140; seed++) {
    const rand = seededRandom(seed);
    const monitor = new PassiveMonitor(config(seed));
    feed(monitor, traffic(rand, 500));
    const c = window(monitor, traffic(rand, 500));
    if (c.flagged.length > 0) flaggedWindows++;
    for (const m of c.metrics) if (m.statistic !== undefined) worstRatio = Math.max(worstRatio, m.statistic / m.threshold!);
  }
  t.diagnostic(`windows flagging anything: ${flaggedWindows}/40; largest KS D / threshold: ${worstRatio.toFixed(2)}`);
  assert.ok(flaggedWindows <= 2, `${flaggedWindows} of 40 unchanged windows were flagged`);
});

test('KS thresholds agree with the Kolmogorov critical value at each metric\'s alpha share, for any window size', (t) => {
  const baseline = traffic(seededRandom(10), 500);
  for (const windowCalls of [500, 100]) {
    const monitor = new PassiveMonitor(config(10, { windowCalls }), baseline);
    const c = window(monitor, traffic(seededRandom(11), windowCalls));
    // Six metrics compared: each gets alpha / 6. Asymptotic two-sided critical value of D for n, m.
    const share = DEFAULT_PASSIVE_CONFIG.alpha / 6;
    const critical = Math.sqrt(-Math.log(share / 2) / 2) * Math.sqrt((500 + windowCalls) / (500 * windowCalls));
    for (const m of c.metrics.filter((r) => r.kind === 'distribution')) {
      t.diagnostic(`window ${windowCalls}, ${m.metric}: threshold ${m.threshold!.toFixed(3)}, asymptotic ${critical.toFixed(3)}`);
      // 300 shuffles cannot resolve a 1/600 tail exactly, and ties lower D a little; a forgotten
      // rescaling from the calibration sizes would be off by √2 or more.
      assert.ok(m.threshold! > 0.75 * critical && m.threshold! < 1.2 * critical, `${m.metric} threshold ${m.threshold} vs ${critical}`);
    }
  }
});

test('a latency shift of ×1.5 is flagged as a distribution; ×1.05 is not', (t) => {
  const rand = seededRandom(3);
  const monitor = new PassiveMonitor(config(3));
  feed(monitor, traffic(rand, 500));

  const big = window(monitor, traffic(rand, 500, { latencyFactor: 1.5 }));
  const l = metric(big, 'latency_ms');
  t.diagnostic(`×1.5: median ${l.baseline.toFixed(0)} → ${l.current.toFixed(0)} ms, D=${l.statistic!.toFixed(3)} > ${l.threshold!.toFixed(3)}`);
  assert.deepEqual(flaggedNames(big), ['latency_ms']);
  assert.equal(l.kind, 'distribution');
  assert.ok(l.statistic! > l.threshold!);
  assert.ok(l.quantiles!.p50[1] / l.quantiles!.p50[0] > 1.3);
  assert.match(l.reason!, /latency \(ms\) median/);

  const small = window(monitor, traffic(rand, 500, { latencyFactor: 1.05 }));
  const s = metric(small, 'latency_ms');
  t.diagnostic(`×1.05: median ${s.baseline.toFixed(0)} → ${s.current.toFixed(0)} ms, D=${s.statistic!.toFixed(3)} vs ${s.threshold!.toFixed(3)}`);
  assert.deepEqual(flaggedNames(small), []);
  assert.equal(s.threshold, l.threshold, 'the calibration is cached across windows of one baseline');
});

test('a distribution shift the KS test detects but below minRelativeShift is not flagged', (t) => {
  const rand = seededRandom(8);
  const monitor = new PassiveMonitor(config(8));
  feed(monitor, traffic(rand, 500));
  // Answers 12% longer: significant over 500 calls, but under the 20% that is worth an alert.
  const c = window(monitor, traffic(rand, 500, { charsFactor: 1.12 }));
  const chars = metric(c, 'response_chars');
  t.diagnostic(`chars ×1.12: median ${chars.baseline} → ${chars.current}, D=${chars.statistic!.toFixed(3)} vs ${chars.threshold!.toFixed(3)}`);
  assert.ok(chars.statistic! > chars.threshold!, 'the KS test alone would flag it');
  assert.deepEqual(flaggedNames(c), []);
  // Without the size floor the same window is flagged: the floor is what keeps it quiet.
  const strict = new PassiveMonitor(config(8, { minRelativeShift: 0.05 }), monitor.snapshot().baseline);
  const again = feed(strict, traffic(seededRandom(9), 500, { charsFactor: 1.12 }));
  assert.ok(flaggedNames(again[0]).includes('response_chars'));
});

test('rebaselining makes the shifted behaviour the new normal', (t) => {
  const rand = seededRandom(4);
  const monitor = new PassiveMonitor(config(4));
  assert.throws(() => monitor.rebaseline(), RangeError, 'nothing to accept before a window completes');
  feed(monitor, traffic(rand, 500));
  const shiftedWindow = traffic(rand, 500, { refusalRate: 0.1, latencyFactor: 1.5 });
  const before = window(monitor, shiftedWindow);
  assert.deepEqual(flaggedNames(before).sort(), ['latency_ms', 'refusal_rate']);

  monitor.rebaseline();
  const snap = monitor.snapshot();
  assert.deepEqual(snap.baseline, shiftedWindow, 'the accepted window is the baseline');
  assert.equal(snap.baselineComplete, true);

  const after = window(monitor, traffic(rand, 500, { refusalRate: 0.1, latencyFactor: 1.5 }));
  t.diagnostic(`after rebaseline, same shifted behaviour flags: [${flaggedNames(after).join(', ')}]`);
  assert.deepEqual(flaggedNames(after), []);

  // Against the new baseline, the old behaviour is now the change.
  const back = window(monitor, traffic(rand, 500));
  assert.deepEqual(flaggedNames(back).sort(), ['latency_ms', 'refusal_rate']);

  // Given samples replace the baseline too.
  monitor.rebaseline(traffic(rand, 500));
  assert.deepEqual(flaggedNames(window(monitor, traffic(rand, 500))), []);
});

test('a short rebaseline is topped up by the calls of the unfinished window', () => {
  const rand = seededRandom(5);
  const monitor = new PassiveMonitor(config(5));
  feed(monitor, traffic(rand, 500 + 100));
  assert.equal(monitor.snapshot().pending, 100);
  monitor.rebaseline(traffic(rand, 200));
  const snap = monitor.snapshot();
  assert.equal(snap.baseline.length, 300);
  assert.equal(snap.baselineComplete, false);
  assert.equal(snap.pending, 0);
  assert.deepEqual(feed(monitor, traffic(rand, 200)), [], 'these calls finish the baseline');
  assert.equal(monitor.snapshot().baselineComplete, true);
  assert.equal(feed(monitor, traffic(rand, 500)).length, 1);
});

test('a metric with too few defined samples is not flagged, however far it moved', () => {
  const rand = seededRandom(6);
  const monitor = new PassiveMonitor(config(6));
  feed(monitor, traffic(rand, 500));
  // 20 calls carry a tool result and every one failed; no call asks for JSON or reports tokens.
  const sparse = traffic(rand, 500, { toolShare: 0, jsonShare: 0, withTokens: false });
  for (let i = 0; i < 20; i++) sparse[i * 25].toolError = true;
  const c = window(monitor, sparse);
  const tool = metric(c, 'tool_error_rate');
  assert.equal(tool.flagged, false);
  assert.equal(tool.nCurrent, 20);
  assert.equal(tool.current, 1);
  assert.match(tool.skipped!, /fewer than 30/);
  assert.equal(tool.p, undefined);
  for (const name of ['json_validity_rate', 'output_tokens'] as const) {
    const m = metric(c, name);
    assert.equal(m.flagged, false);
    assert.equal(m.nCurrent, 0);
    assert.ok(m.skipped);
  }
  assert.deepEqual(flaggedNames(c), []);

  // The control: with 40 failing tool results the same change is compared, and flagged.
  const dense = traffic(rand, 500, { toolShare: 0 });
  for (let i = 0; i < 40; i++) dense[i * 12].toolError = true;
  const flagged = window(monitor, dense);
  assert.deepEqual(flaggedNames(flagged), ['tool_error_rate']);
});

test('a rate change above the size floor is not flagged without significance', (t) => {
  // 40 tool results a side: 2 errors (5%) then 5 (12.5%). The change clears the 5-point floor, but
  // 40 calls cannot tell it from noise.
  const withToolResults = (rand: () => number, errors: number) => {
    const calls = traffic(rand, 500, { toolShare: 0 });
    for (let i = 0; i < 40; i++) calls[i * 12].toolError = i < errors;
    return calls;
  };
  const rand = seededRandom(12);
  const monitor = new PassiveMonitor(config(12), withToolResults(rand, 2));
  const c = window(monitor, withToolResults(rand, 5));
  const tool = metric(c, 'tool_error_rate');
  t.diagnostic(`tool errors ${tool.baseline} → ${tool.current} over ${tool.nCurrent}: p=${tool.p!.toFixed(3)}`);
  assert.equal(tool.skipped, undefined, 'compared, not skipped');
  assert.ok(tool.current - tool.baseline >= DEFAULT_PASSIVE_CONFIG.minRateDelta);
  assert.equal(tool.flagged, false);
  assert.deepEqual(flaggedNames(c), []);
});

test('a stored baseline is used at once, windows tumble, and memory stays bounded', () => {
  const rand = seededRandom(7);
  const stored = traffic(rand, 600);
  const monitor = new PassiveMonitor(config(7, { windowCalls: 250 }), stored);
  const snap = monitor.snapshot();
  assert.equal(snap.baseline.length, 500, 'the most recent baselineCalls of a longer stored period');
  assert.deepEqual(snap.baseline[0], stored[100]);
  assert.equal(snap.baselineComplete, true);
  const results = traffic(rand, 1000).map((s) => monitor.observe(s));
  const completed = results.flatMap((r, i) => (r ? [i + 1] : []));
  assert.deepEqual(completed, [250, 500, 750, 1000]);
  assert.deepEqual(results.filter((r) => r !== undefined).map((r) => r!.window), [1, 2, 3, 4]);
  assert.equal(monitor.snapshot().baseline.length, 500);
  assert.equal(monitor.snapshot().pending, 0);
  assert.equal(monitor.snapshot().last?.window, 4);
});

test('an invalid config is rejected with every problem named', () => {
  assert.throws(
    () => new PassiveMonitor({ ...DEFAULT_PASSIVE_CONFIG, windowCalls: 0, alpha: 2, permutations: 1.5 }),
    (err: Error) => err instanceof RangeError && /windowCalls/.test(err.message) && /alpha/.test(err.message) && /permutations/.test(err.message),
  );
});
