// Passive drift detection on live traffic: no eval prompts, just the calls the agent makes anyway.
// The first calls seen (or a stored period) form the baseline; after it, every windowCalls calls form
// a tumbling window that is compared once with the baseline on refusal, tool-error and JSON-validity
// rates and on the distributions of response length, latency and output tokens (the statistics are
// in passive-compare.ts). An operator who accepts new behaviour rebaselines on it.
//
// Memory is bounded by design: the baseline's samples, the window being filled and the last complete
// window (kept so it can become the baseline) — never the whole stream.
import {
  calibrationSizes, comparable, compareDistribution, compareRate, measure, METRICS, permutationKsThreshold, scaleKsThreshold, skippedResult,
  type Measured,
} from './passive-compare.ts';

/** What the monitor keeps of one live model call. */
export interface LiveSample {
  responseChars: number;
  refusal: boolean;
  /** Whether a tool result the agent sent back in this call reported an error; undefined when the call carried no tool result. */
  toolError?: boolean;
  /** Whether the reply parsed as JSON; undefined when the request did not ask for JSON. */
  jsonValid?: boolean;
  latencyMs: number;
  outputTokens?: number;
}

export interface PassiveConfig {
  /** Calls in each compared window (500). */
  windowCalls: number;
  /** Calls that make the baseline period (500); the first calls seen, unless a stored baseline is loaded. */
  baselineCalls: number;
  /** Family-wise false-alarm rate of one window's comparison over all metrics (0.01). */
  alpha: number;
  /** Smallest change of a rate that is worth an alert, absolute (0.05). */
  minRateDelta: number;
  /** Smallest relative change of a distribution's median or p90 that is worth an alert (0.2). */
  minRelativeShift: number;
  /** Shuffles for calibrating distribution thresholds (300). */
  permutations: number;
  seed?: number;
}

/** The defaults the design names. */
export const DEFAULT_PASSIVE_CONFIG: Readonly<PassiveConfig> = Object.freeze({
  windowCalls: 500,
  baselineCalls: 500,
  alpha: 0.01,
  minRateDelta: 0.05,
  minRelativeShift: 0.2,
  permutations: 300,
});

export type PassiveMetric = 'refusal_rate' | 'tool_error_rate' | 'json_validity_rate' | 'response_chars' | 'latency_ms' | 'output_tokens';

export interface PassiveMetricResult {
  metric: PassiveMetric;
  kind: 'rate' | 'distribution';
  /** Rates, or medians. */
  baseline: number;
  current: number;
  /** Samples where the metric was defined, on each side. */
  nBaseline: number;
  nCurrent: number;
  /** Wilson 95% interval of the current rate. */
  interval?: [number, number];
  baselineInterval?: [number, number];
  /** Two-proportion test. */
  p?: number;
  /** KS D and its permutation-calibrated threshold. */
  statistic?: number;
  threshold?: number;
  /** Baseline vs current. */
  quantiles?: { p50: [number, number]; p90: [number, number] };
  flagged: boolean;
  /** Human-readable, when flagged. */
  reason?: string;
  /** Why the metric was not compared (too few defined samples on a side); never flagged then. */
  skipped?: string;
}

export interface PassiveComparison {
  at: string;
  /** The window's number since the monitor started, from 1. */
  window: number;
  metrics: PassiveMetricResult[];
  flagged: PassiveMetricResult[];
}

/** Validates a passive config, reporting every problem at once. */
export function validatePassiveConfig(config: PassiveConfig): Readonly<PassiveConfig> {
  const problems: string[] = [];
  const int = (name: keyof PassiveConfig, min: number) => {
    const v = config[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) problems.push(`${name} must be an integer ≥ ${min} (got ${String(v)})`);
  };
  // 2 is the least a calibration can split; sides under MIN_SAMPLES are allowed but leave metrics skipped.
  int('windowCalls', 1);
  int('baselineCalls', 2);
  int('permutations', 1);
  if (!(config.alpha > 0 && config.alpha < 1)) problems.push(`alpha must be in (0, 1) (got ${String(config.alpha)})`);
  if (!(config.minRateDelta >= 0 && config.minRateDelta <= 1)) problems.push(`minRateDelta must be in [0, 1] (got ${String(config.minRateDelta)})`);
  if (!(config.minRelativeShift >= 0)) problems.push(`minRelativeShift must be ≥ 0 (got ${String(config.minRelativeShift)})`);
  if (config.seed !== undefined && !Number.isInteger(config.seed)) problems.push(`seed must be an integer (got ${String(config.seed)})`);
  if (problems.length > 0) throw new RangeError(`invalid passive monitor config: ${problems.join('; ')}`);
  return Object.freeze({ ...config });
}

// Calibrations are reproducible even when no seed is configured.
const DEFAULT_SEED = 0x5eed;

/** Watches live calls in tumbling windows and compares each window with a baseline period. */
export class PassiveMonitor {
  readonly #config: Readonly<PassiveConfig>;
  #baseline: LiveSample[];
  #window: LiveSample[] = [];
  #lastWindow: LiveSample[] | undefined;
  #last: PassiveComparison | undefined;
  #windows = 0;
  // Derived from the baseline once it is complete, dropped whenever the baseline changes: its sorted
  // values, and the KS thresholds (the permutations are the expensive part of a comparison).
  #baselineMeasured: Measured[] | undefined;
  readonly #thresholds = new Map<string, number>();

  constructor(config: PassiveConfig, baseline?: readonly LiveSample[]) {
    this.#config = validatePassiveConfig(config);
    // A stored baseline longer than the period keeps its most recent part; a shorter one is topped up
    // by the first calls seen.
    this.#baseline = baseline ? baseline.slice(-this.#config.baselineCalls) : [];
  }

  /** Adds a call; returns the comparison when it completes a window (every windowCalls calls after the baseline is full), else undefined. */
  observe(sample: LiveSample): PassiveComparison | undefined {
    if (this.#baseline.length < this.#config.baselineCalls) {
      this.#baseline.push(sample);
      return undefined;
    }
    this.#window.push(sample);
    if (this.#window.length < this.#config.windowCalls) return undefined;
    const window = this.#window;
    this.#window = [];
    this.#lastWindow = window;
    this.#last = this.#compare(window);
    return this.#last;
  }

  /** Baseline samples (to persist), the current partial window size, and the last comparison. */
  snapshot(): { baseline: readonly LiveSample[]; baselineComplete: boolean; pending: number; last?: PassiveComparison } {
    return {
      baseline: this.#baseline.slice(),
      baselineComplete: this.#baseline.length >= this.#config.baselineCalls,
      pending: this.#window.length,
      ...(this.#last ? { last: this.#last } : {}),
    };
  }

  /** Whether a window has completed since the baseline was set, so rebaseline() has one to adopt. */
  get canRebaseline(): boolean {
    return this.#lastWindow !== undefined;
  }

  /** Makes the last complete window (or the given samples) the new baseline: an operator accepting new behaviour. */
  rebaseline(samples?: readonly LiveSample[]): void {
    const next = samples ?? this.#lastWindow;
    if (!next) throw new RangeError('cannot rebaseline: no window has completed yet and no samples were given');
    this.#baseline = next.slice(-this.#config.baselineCalls);
    this.#lastWindow = undefined;
    this.#baselineMeasured = undefined;
    this.#thresholds.clear();
    // Calls of the unfinished window came after the accepted behaviour: they top up a short baseline
    // first, and the rest are compared with the new baseline when the window fills.
    const pending = this.#window;
    this.#window = [];
    for (const s of pending) this.observe(s);
  }

  #compare(window: readonly LiveSample[]): PassiveComparison {
    const base = (this.#baselineMeasured ??= METRICS.map((spec) => measure(spec, this.#baseline)));
    const current = METRICS.map((spec) => measure(spec, window));
    const compared = METRICS.filter((_, i) => comparable(base[i], current[i])).length;
    // Bonferroni over the metrics this window can actually speak to: a metric with no data spends none.
    const alphaShare = this.#config.alpha / Math.max(1, compared);
    const metrics = METRICS.map((spec, i) => {
      const b = base[i];
      const c = current[i];
      if (!comparable(b, c)) return skippedResult(spec, b, c);
      if (b.kind === 'rate' && c.kind === 'rate') return compareRate(spec, b, c, alphaShare, this.#config.minRateDelta);
      if (spec.kind === 'distribution' && b.kind === 'distribution' && c.kind === 'distribution') {
        const threshold = this.#threshold(i, b.sorted, c.n, alphaShare);
        return compareDistribution(spec, b.sorted, c.sorted, threshold, this.#config.minRelativeShift);
      }
      throw new TypeError(`metric ${spec.metric} measured inconsistently`);
    });
    this.#windows++;
    return { at: new Date().toISOString(), window: this.#windows, metrics, flagged: metrics.filter((m) => m.flagged) };
  }

  #threshold(metricIndex: number, pool: readonly number[], nCurrent: number, alphaShare: number): number {
    const sizes = calibrationSizes(pool.length, nCurrent);
    // The alpha share changes only when a metric drops in or out of the comparison, and the sizes only
    // for windows smaller than half the baseline: usually one calibration per metric and baseline.
    const key = `${metricIndex}:${sizes.a}:${alphaShare}`;
    let atSizes = this.#thresholds.get(key);
    if (atSizes === undefined) {
      // Seeds differ per metric so the calibrations are not the same shuffles of correlated metrics.
      const seed = (this.#config.seed ?? DEFAULT_SEED) + metricIndex * 7919;
      atSizes = permutationKsThreshold(pool, sizes, alphaShare, this.#config.permutations, seed);
      this.#thresholds.set(key, atSizes);
    }
    return scaleKsThreshold(atSizes, sizes, pool.length, nCurrent);
  }
}
