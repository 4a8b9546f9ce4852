// Certifying a baseline: run the pact with every look's trials up front (a later drift decision pairs
// its looks with them), and record what the behaviour was measured under: the model asked, the pin,
// the model and fingerprint actually served, and hashes of the prompts and the policy. Certification
// also says how small a change the baseline can detect, and warns when that is coarser than the
// tolerance the pact promises (too few cases or trials to see a 5% move).
import { randomBytes } from 'node:crypto';
import { pactPromptSha256 } from './pact.ts';
import { runPact, type RunOptions } from './runner.ts';
import { minimumDetectableEffect, minimumDetectableScoreEffect } from './stats.ts';
import type { Baseline, CapabilityResult, Pact, RunResult } from './types.ts';

export interface CertifyContext {
  /** The snapshot the policy pins the pact's model to, if any. */
  pin?: string;
  policySha256?: string;
}

export interface Certified {
  baseline: Baseline;
  /** One line per capability whose minimum detectable effect is above its tolerance. */
  warnings: string[];
}

function sd(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1));
}

/**
 * The minimum detectable effect of a capability at the end of a full sequential decision: all looks'
 * trials, at the strictest level a test can be held to (the first Holm step of the last look's share).
 */
function mdeOf(pact: Pact, cap: CapabilityResult): number {
  const level = pact.alpha / pact.looks / pact.capabilities.length;
  if (cap.metric === 'mean_score') {
    // Paired per case: the spread of case means stands in for the spread of their differences, times √2.
    return minimumDetectableScoreEffect(sd(cap.cases.map((c) => c.meanScore)) * Math.SQRT2, cap.cases.length, level);
  }
  const trials = cap.cases.reduce((n, c) => n + c.trials.length, 0);
  return minimumDetectableEffect(cap.value, trials, level);
}

/** Makes a baseline from a run that already has every look's trials (certification, or an accepted candidate). */
export function baselineFromRun(pact: Pact, run: RunResult, ctx: CertifyContext = {}): Certified {
  const mde: Record<string, number> = {};
  const warnings: string[] = [];
  for (const cap of run.capabilities) {
    mde[cap.name] = mdeOf(pact, cap);
    const tolerance = pact.capabilities.find((c) => c.name === cap.name)?.tolerance ?? pact.tolerance;
    if (mde[cap.name] > tolerance) {
      warnings.push(`${cap.name}: the smallest change this baseline can detect is ${(mde[cap.name] * 100).toFixed(1)} points, above the tolerance of ${(tolerance * 100).toFixed(1)}: add cases or trials`);
    }
  }
  const certifiedAt = new Date().toISOString();
  const id = `bl_${certifiedAt.replace(/\D/g, '').slice(0, 14)}_${randomBytes(4).toString('hex')}`;
  return {
    baseline: {
      id, agent: pact.agent, certifiedAt,
      pact: { file: pact.file, sha256: pact.sha256 },
      model: { asked: pact.model, pin: ctx.pin, served: run.served.model, systemFingerprint: run.served.systemFingerprint },
      promptSha256: pactPromptSha256(pact),
      policySha256: ctx.policySha256,
      mde,
      run,
    },
    warnings,
  };
}

/** Runs the pact with `trials × looks` per case and certifies the result as a baseline. */
export async function certifyBaseline(pact: Pact, opts: Omit<RunOptions, 'trials'>, ctx: CertifyContext = {}): Promise<Certified> {
  const run = await runPact(pact, { ...opts, trials: (cap) => cap.trials * pact.looks });
  return baselineFromRun(pact, run, ctx);
}

