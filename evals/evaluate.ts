// One drift evaluation, start to finish: run the pact on the candidate (the model as it is served now),
// decide per capability against the baseline, and for the capabilities still inconclusive ask for more
// trials, look after look, until each is decided or the pact's looks run out. The baseline was
// certified with trials for every look, so each look's trials have baseline trials to pair with.
import { decideDrift, worstState } from './drift.ts';
import { mergeRuns, runPact, type RunOptions } from './runner.ts';
import type { Baseline, CapabilityDrift, DriftReport, Pact } from './types.ts';

export type EvaluateOptions = Omit<RunOptions, 'trials' | 'trialOffset' | 'capabilities'> & {
  /** Seed of the bootstrap for score metrics (reproducible decisions). */
  seed?: number;
};

/** Fewest trials any case of the capability has in the baseline: later looks cannot pair beyond it. */
function baselineDepth(baseline: Baseline, capability: string): number {
  const cap = baseline.run.capabilities.find((c) => c.name === capability);
  return cap ? Math.min(...cap.cases.map((c) => c.trials.length)) : 0;
}

/** Runs the sequential drift decision of a pact against a baseline and reports every capability. */
export async function evaluateDrift(pact: Pact, baseline: Baseline, opts: EvaluateOptions): Promise<DriftReport> {
  const inBaseline = new Set(baseline.run.capabilities.map((c) => c.name));
  const names = pact.capabilities.filter((c) => inBaseline.has(c.name)).map((c) => c.name);
  let candidate = await runPact(pact, { ...opts, capabilities: names });
  const decided = new Map<string, CapabilityDrift>();
  let pending = names;
  for (let look = 1; pending.length > 0; look++) {
    for (const c of decideDrift(pact, baseline.run, candidate, { look, capabilities: pending, seed: opts.seed })) decided.set(c.name, c);
    if (look >= pact.looks) break;
    // Another look only where the baseline still has unpaired trials for it.
    pending = pending.filter((name) => {
      const cap = pact.capabilities.find((c) => c.name === name)!;
      return decided.get(name)!.state === 'inconclusive' && baselineDepth(baseline, name) >= (look + 1) * cap.trials;
    });
    if (pending.length === 0) break;
    candidate = mergeRuns(candidate, await runPact(pact, { ...opts, capabilities: pending }));
  }
  const capabilities = names.map((n) => decided.get(n)!);
  return {
    baselineId: baseline.id,
    at: new Date().toISOString(),
    served: candidate.served,
    state: worstState(capabilities),
    capabilities,
    candidate,
  };
}
