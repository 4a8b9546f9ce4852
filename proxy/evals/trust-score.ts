// A composite trust score per agent, in [0, 1]: how well it keeps its pact (the last evaluation's mean
// pass rate or score), how honest it is about scope (the share of its tool calls that stayed in
// scope), and how reliable its calls are (answered without error, each retry counting against it).
// Components without data are left out and the weights of the rest renormalized, so a new sidecar is
// not punished for having no history, and says which components it rests on.
import type { Metrics } from '../metrics.ts';
import type { PactService } from './pact-service.ts';

export interface TrustScore {
  score: number;
  components: { pact?: number; scope?: number; reliability?: number };
}

// The pact is the direct measure of behaviour; scope and reliability are what live traffic shows.
const WEIGHTS = { pact: 0.5, scope: 0.25, reliability: 0.25 } as const;

async function sum(counter: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, where: (labels: Record<string, unknown>) => boolean = () => true): Promise<number> {
  return (await counter.get()).values.filter((v) => where(v.labels)).reduce((n, v) => n + v.value, 0);
}

/** The agent's trust score from the last evaluation and the sidecar's counters since it started. */
export async function trustScore(metrics: Metrics, service?: PactService): Promise<TrustScore> {
  const components: TrustScore['components'] = {};
  const last = service?.last;
  if (last && !last.error) components.pact = last.value;
  const inScope = await sum(metrics.scopeChecks, (l) => l.result === 'in_scope');
  const checked = inScope + await sum(metrics.scopeChecks, (l) => l.result === 'out_of_scope');
  if (checked > 0) components.scope = inScope / checked;
  // An agent that left (499) is not the call failing; anything from 500 up is.
  const calls = await sum(metrics.requests, (l) => l.status !== '499');
  const failed = await sum(metrics.requests, (l) => Number(l.status) >= 500);
  const retries = await sum(metrics.retries);
  if (calls > 0) components.reliability = Math.max(0, (calls - failed) / (calls + retries));
  let weight = 0;
  let total = 0;
  for (const [k, v] of Object.entries(components) as [keyof typeof WEIGHTS, number][]) {
    weight += WEIGHTS[k];
    total += WEIGHTS[k] * v;
  }
  return { score: weight === 0 ? 1 : total / weight, components };
}
