// Running a pact: every case of every chosen capability, `trials` times, against one target, then
// each capability's value and 95% interval. Each trial is its own request (no caching, no
// de-duplication): the spread between trials is exactly what the statistics measure. A bounded pool
// of workers keeps `concurrency` trials in flight, and trials are queued round-robin over the cases,
// so each case's trials are spread over the run rather than bursting one case at a moment when the
// target happens to be slow or rate-limited.
import { runChecks } from './assertions.ts';
import { bootstrapMeanInterval, wilson } from './stats.ts';
import { createJudge, sendCase } from './target.ts';
import type { Capability, CapabilityResult, CaseResult, EvalCase, Judge, Pact, RunResult, TrialResult } from './types.ts';

export interface RunOptions {
  /** The API's base URL: an OpenAI base (…/v1) or an Anthropic base, as the pact's api needs. */
  target: string;
  headers?: Record<string, string>;
  apiKey?: string;
  /** Trials in flight at once (default: the pact's concurrency). */
  concurrency?: number;
  /** Trials per case (default: each capability's own). */
  trials?: number | ((cap: Capability) => number);
  /** The first trial's number (default 0), so a later look continues the numbering. */
  trialOffset?: number;
  /** Only these capabilities (default: all). */
  capabilities?: readonly string[];
  /** Asks this model for every case instead of the case's own (e.g. a baseline's snapshot). */
  model?: string;
  onProgress?(done: number, total: number): void;
  /** Aborting rejects the run with the signal's reason and aborts the requests in flight. */
  signal?: AbortSignal;
  /** Grades rubric checks (default: a judge asked through the same target). */
  judge?: Judge;
}

interface Job {
  capability: number;
  evalCase: EvalCase;
  trial: number;
}

// The bootstrap is seeded so the same trials always give the same interval.
const BOOTSTRAP_SEED = 1;

/** Runs the pact's cases against the target and measures each capability. */
export async function runPact(pact: Pact, opts: RunOptions): Promise<RunResult> {
  const startedAt = new Date().toISOString();
  const chosen = pickCapabilities(pact, opts.capabilities);
  const offset = opts.trialOffset ?? 0;
  const trialsOf = (cap: Capability): number => {
    const n = typeof opts.trials === 'function' ? opts.trials(cap) : opts.trials ?? cap.trials;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`trials for ${cap.name} must be a positive whole number (got ${n})`);
    return n;
  };
  const results = chosen.map((cap) => cap.cases.map((c): TrialResult[] => []));
  const jobs = queue(chosen, trialsOf, offset);

  // One controller for the run: the caller's abort, or a fault in a trial, stops every worker and request.
  const run = new AbortController();
  const onAbort = () => run.abort(opts.signal!.reason);
  if (opts.signal?.aborted) throw opts.signal.reason;
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const judge = opts.judge ?? createJudge(opts.target, pact.api, { headers: opts.headers, apiKey: opts.apiKey, signal: run.signal });
  const send = { model: opts.model, headers: opts.headers, apiKey: opts.apiKey, prices: pact.prices, signal: run.signal };

  let next = 0;
  let done = 0;
  async function worker(): Promise<void> {
    while (!run.signal.aborted && next < jobs.length) {
      const job = jobs[next++];
      const observation = await sendCase(opts.target, pact.api, job.evalCase, send);
      const outcome = await runChecks(job.evalCase.expect, observation, { judge, evalCase: job.evalCase, defaultJudgeModel: pact.judgeModel });
      if (run.signal.aborted) return;
      const caseIndex = chosen[job.capability].cases.indexOf(job.evalCase);
      results[job.capability][caseIndex].push({ trial: job.trial, pass: outcome.pass, score: outcome.score, checks: outcome.checks, observation });
      opts.onProgress?.(++done, jobs.length);
    }
  }
  const concurrency = Math.max(1, Math.min(opts.concurrency ?? pact.concurrency, jobs.length || 1));
  const workers = Array.from({ length: concurrency }, () => worker().catch((err) => {
    if (!run.signal.aborted) run.abort(err);
  }));
  try {
    await Promise.all(workers);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (run.signal.aborted) throw run.signal.reason;

  const capabilities = chosen.map((cap, i) => measure(
    { name: cap.name, metric: cap.metric, threshold: cap.threshold },
    cap.cases.map((c, j) => caseResult(c.id, results[i][j].sort((a, b) => a.trial - b.trial))),
  ));
  return finish({ file: pact.file, sha256: pact.sha256, agent: pact.agent }, opts.target, startedAt, capabilities);
}

function pickCapabilities(pact: Pact, names: readonly string[] | undefined): readonly Capability[] {
  if (!names) return pact.capabilities;
  const unknown = names.filter((n) => !pact.capabilities.some((c) => c.name === n));
  if (unknown.length > 0) throw new RangeError(`the pact has no capability ${unknown.join(', ')} (it has ${pact.capabilities.map((c) => c.name).join(', ')})`);
  return pact.capabilities.filter((c) => names.includes(c.name));
}

/** Trial t of every case, then trial t + 1 of every case: each case's trials spread over the run. */
function queue(caps: readonly Capability[], trialsOf: (cap: Capability) => number, offset: number): Job[] {
  const counts = caps.map(trialsOf);
  const jobs: Job[] = [];
  for (let t = 0; t < Math.max(0, ...counts); t++) {
    caps.forEach((cap, i) => {
      if (t < counts[i]) for (const evalCase of cap.cases) jobs.push({ capability: i, evalCase, trial: offset + t });
    });
  }
  return jobs;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((s, v) => s + v, 0) / values.length;
}

function caseResult(id: string, trials: TrialResult[]): CaseResult {
  return { id, trials, passes: trials.filter((t) => t.pass).length, meanScore: mean(trials.map((t) => t.score)) };
}

/** A capability's value and 95% interval from its cases' trials. */
function measure(head: Pick<CapabilityResult, 'name' | 'metric' | 'threshold'>, cases: CaseResult[]): CapabilityResult {
  let value: number;
  let interval: [number, number];
  if (head.metric === 'pass_rate') {
    const k = cases.reduce((s, c) => s + c.passes, 0);
    const n = cases.reduce((s, c) => s + c.trials.length, 0);
    value = n === 0 ? 0 : k / n;
    interval = n === 0 ? [0, 1] : wilson(k, n);
  } else {
    // Cases, not trials, are the units: trials of one case are not independent evidence about the others.
    const means = cases.filter((c) => c.trials.length > 0).map((c) => c.meanScore);
    value = mean(means);
    interval = means.length === 0 ? [0, 1] : bootstrapMeanInterval(means, { seed: BOOTSTRAP_SEED });
  }
  return { ...head, value, interval, passed: value >= head.threshold, cases };
}

function finish(pact: RunResult['pact'], target: string, startedAt: string, capabilities: CapabilityResult[]): RunResult {
  return {
    pact, target, startedAt, finishedAt: new Date().toISOString(),
    served: mostServed(capabilities),
    capabilities,
    passed: capabilities.every((c) => c.passed),
  };
}

/** The (model, fingerprint) most trials reported; ties go to the one seen first. */
function mostServed(capabilities: CapabilityResult[]): RunResult['served'] {
  const counts = new Map<string, { n: number; served: RunResult['served'] }>();
  for (const cap of capabilities) {
    for (const c of cap.cases) {
      for (const t of c.trials) {
        const { model, systemFingerprint } = t.observation;
        if (model === undefined) continue;
        const key = `${model}\n${systemFingerprint ?? ''}`;
        const entry = counts.get(key) ?? { n: 0, served: systemFingerprint === undefined ? { model } : { model, systemFingerprint } };
        entry.n++;
        counts.set(key, entry);
      }
    }
  }
  let best: { n: number; served: RunResult['served'] } | undefined;
  for (const entry of counts.values()) if (!best || entry.n > best.n) best = entry;
  return best?.served ?? {};
}

/** A later look appended to an earlier run: b's trials follow a's in each case, values and intervals recomputed. */
export function mergeRuns(a: RunResult, b: RunResult): RunResult {
  const merged = a.capabilities.map((cap) => {
    const later = b.capabilities.find((c) => c.name === cap.name);
    if (!later) return cap;
    const cases = cap.cases.map((c) => {
      const more = later.cases.find((x) => x.id === c.id)?.trials ?? [];
      // A look run without a trialOffset restarts at 0: number it on from a's trials, so trial j
      // still pairs with a baseline's trial j. A look that already continues the numbering keeps it.
      const next = c.trials.length === 0 ? 0 : c.trials[c.trials.length - 1].trial + 1;
      const shift = more.length > 0 && more[0].trial < next ? next - more[0].trial : 0;
      return caseResult(c.id, [...c.trials, ...more.map((t) => ({ ...t, trial: t.trial + shift }))]);
    });
    return measure({ name: cap.name, metric: cap.metric, threshold: cap.threshold }, cases);
  });
  const added = b.capabilities.filter((c) => !a.capabilities.some((x) => x.name === c.name));
  return { ...finish(a.pact, a.target, a.startedAt, [...merged, ...added]), finishedAt: b.finishedAt };
}
