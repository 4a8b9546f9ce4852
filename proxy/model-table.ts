// Finds the policy's entry for a model name as the agent asked for it, as pinned, or as the upstream
// served it (a dated snapshot of an alias, e.g. gpt-4o-2024-08-06 for gpt-4o). Built once per policy.
import type { ModelConfig, Policy } from '../policies/types.ts';

export interface ModelTable {
  /** The entry named exactly so: what pinning uses, since an explicit snapshot must not be re-pinned. */
  exact(name: string | undefined): ModelConfig | undefined;
  /** The entry for a name, its pin, or a dated snapshot of it: what pricing and context sizes use. */
  lookup(name: string | undefined): ModelConfig | undefined;
}

// What providers append to an alias to name a snapshot: -2024-08-06, -20250929, -0125, -latest, -v1:0.
// Only these count, so gpt-4o-mini is never taken for a snapshot of gpt-4o.
const SNAPSHOT_SUFFIX = /^-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest|v\d+(?::\d+)?)$/;

/** Builds the lookup for a policy's models section; results are memoised per name. */
export function createModelTable(policy: Policy): ModelTable {
  const named = new Map<string, ModelConfig>();
  for (const m of Object.values(policy.models)) named.set(m.name, m);
  const byName = new Map(named);
  for (const m of Object.values(policy.models)) if (m.pin && !byName.has(m.pin)) byName.set(m.pin, m);
  const memo = new Map<string, ModelConfig | undefined>();
  return {
    exact: (name) => (name === undefined ? undefined : named.get(name)),
    lookup(name) {
      if (!name) return undefined;
      if (memo.has(name)) return memo.get(name);
      let found = byName.get(name);
      if (!found) {
        for (const [alias, m] of byName) {
          if (name.startsWith(alias) && SNAPSHOT_SUFFIX.test(name.slice(alias.length))) {
            found = m;
            break;
          }
        }
      }
      // Upstreams report a bounded set of models, but cap the memo anyway.
      if (memo.size < 1024) memo.set(name, found);
      return found;
    },
  };
}
