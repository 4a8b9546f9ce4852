// The retries section: defaults filled in, and the checks the schema cannot make (a fallback names
// a declared model upstream; a jury that picks by confidence has a way to measure it).
import type { RetriesConfig, Timeouts } from './types.ts';

type Raw = Record<string, any>;

export interface RetryProblem {
  path: (string | number)[];
  message: string;
}

export const DEFAULT_MAX_ATTEMPTS = 3;

/** The retries section as the runtime reads it, defaults written in. */
export function retriesConfig(raw: Raw | undefined, timeouts: Timeouts): RetriesConfig {
  const r = raw ?? {};
  return {
    timeouts,
    maxAttempts: r.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    backoff: { baseMs: 250, capMs: 10_000, maxRetryAfterMs: 60_000, ...r.backoff },
    budget: { ratio: 0.2, minRetries: 3, windowMs: 10_000, ...r.budget },
    fallbacks: r.fallbacks ?? [],
    onStall: r.onStall ?? 'return_partial',
    confidence: r.confidence && { method: 'logprobs', maxRetries: 2, ...r.confidence },
    parallel: r.parallel && { n: 3, select: 'majority', ...r.parallel },
  };
}

/** Problems in the retries section that only the whole document shows. */
export function retryProblems(doc: Raw): RetryProblem[] {
  const out: RetryProblem[] = [];
  const r = doc.retries ?? {};
  for (const [i, f] of (r.fallbacks ?? []).entries()) {
    if (f.upstream === undefined) continue;
    const u = doc.upstreams?.[f.upstream];
    if (!u) out.push({ path: ['retries', 'fallbacks', i, 'upstream'], message: `retries.fallbacks[${i}].upstream: "${f.upstream}" is not declared in upstreams` });
    else if (u.provider === 'mcp') out.push({ path: ['retries', 'fallbacks', i, 'upstream'], message: `retries.fallbacks[${i}].upstream: "${f.upstream}" is an MCP server, not a model upstream` });
  }
  if (r.parallel?.select === 'confidence' && !r.confidence) {
    out.push({ path: ['retries', 'parallel', 'select'], message: 'retries.parallel.select: confidence needs retries.confidence (how confidence is measured)' });
  }
  return out;
}
