// What the behavioural history, the audit log and the webhook keep of a run or a drift decision: the
// figures a person reads, without every trial's observation (those stay in the run's own records).
import type { DriftReport, RunResult } from '../../evals/types.ts';

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/** A run's figures per capability: value, interval, threshold, and each case's passes. */
export function summarizeRun(run: RunResult): Record<string, unknown> {
  return {
    served: run.served,
    passed: run.passed,
    capabilities: run.capabilities.map((c) => ({
      name: c.name, metric: c.metric, value: round(c.value), interval: c.interval.map(round), threshold: c.threshold, passed: c.passed,
      cases: c.cases.map((k) => ({ id: k.id, passes: k.passes, trials: k.trials.length })),
    })),
  };
}

/** A drift decision's figures per capability, with the per-case regressions. */
export function summarizeDrift(report: DriftReport): Record<string, unknown> {
  return {
    baseline: report.baselineId,
    state: report.state,
    served: report.served,
    capabilities: report.capabilities.map((c) => ({
      name: c.name, state: c.state, delta: round(c.delta), interval: c.interval.map(round), p: c.p, alpha: c.alphaUsed,
      baseline: round(c.baselineValue), candidate: round(c.candidateValue), n: c.n, looks: c.looks,
      regressions: c.regressions.length ? c.regressions : undefined,
    })),
  };
}
