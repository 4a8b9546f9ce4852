// The sidecar's retry budgets, one per upstream. They live as long as the sidecar (a policy reload
// must not hand a struggling upstream a fresh budget), and take the current policy's settings.
import type { RetriesConfig } from '../../policies/types.ts';
import { RetryBudget } from './budget.ts';

export class RetryBudgets {
  readonly #budgets = new Map<string, { budget: RetryBudget; key: string }>();

  /** The budget of one upstream under these settings (new settings start a new window). */
  of(upstream: string, config: RetriesConfig['budget']): RetryBudget {
    const key = `${config.ratio}/${config.minRetries}/${config.windowMs}`;
    const entry = this.#budgets.get(upstream);
    if (entry?.key === key) return entry.budget;
    const budget = new RetryBudget(config);
    this.#budgets.set(upstream, { budget, key });
    return budget;
  }
}
