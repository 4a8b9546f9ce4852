// Finds the policy's entry for a model name as the agent asked for it, as pinned, or as the upstream
// served it (a dated snapshot of an alias, e.g. gpt-4o-2024-08-06 for gpt-4o). Built once per policy.
import type { ModelConfig, Policy } from '../policies/types.ts';

export interface ModelTable {
  lookup(name: string | undefined): ModelConfig | undefined;
}

/** Builds the lookup for a policy's models section; results are memoised per name. */
export function createModelTable(policy: Policy): ModelTable {
  const exact = new Map<string, ModelConfig>();
  for (const m of Object.values(policy.models)) {
    exact.set(m.name, m);
    if (m.pin && !exact.has(m.pin)) exact.set(m.pin, m);
  }
  // Longest alias first, so gpt-4o-mini-2024-07-18 finds gpt-4o-mini before gpt-4o.
  const aliases = [...exact.keys()].sort((a, b) => b.length - a.length);
  const memo = new Map<string, ModelConfig | undefined>();
  return {
    lookup(name) {
      if (!name) return undefined;
      if (memo.has(name)) return memo.get(name);
      const found = exact.get(name) ?? exact.get(aliases.find((a) => name.startsWith(`${a}-`)) ?? '');
      // Upstreams report a bounded set of models, but cap the memo anyway.
      if (memo.size < 1024) memo.set(name, found);
      return found;
    },
  };
}
