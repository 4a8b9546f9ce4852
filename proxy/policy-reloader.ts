// Hot reload: on SIGHUP, on a change to the policy file, or on POST /policy/reload. A policy that fails
// validation never replaces the running one; the failure is logged, counted and shown on /status.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadPolicyFile } from '../policies/load.ts';
import { spaceConfigOf } from './audit/audit-setup.ts';
import type { SidecarContext } from './context.ts';
import { PolicyError } from './errors.ts';
import { buildRuntime, closeRuntime, retireRuntime } from './runtime.ts';
import { loadPactFor } from './evals/pact-service.ts';

export type ReloadResult = { ok: true; at: Date } | { ok: false; at: Date; problems: readonly string[] };

// Editors and config-map updates write a file in several steps; wait for them to settle.
const DEBOUNCE_MS = 150;

export interface PolicyReloader {
  reload(): Promise<ReloadResult>;
  last(): ReloadResult | undefined;
  close(): void;
}

/** Watches the policy file (through its directory, so atomic renames and symlink swaps are seen). */
export function createPolicyReloader(ctx: SidecarContext, file: string, watchFile: boolean): PolicyReloader {
  let last: ReloadResult | undefined;
  let running: Promise<ReloadResult> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;

  // Which policy governed which calls is part of the record, and so is a rejected change.
  function recordReload(sha256: string | undefined, result: string, problems?: readonly string[]): void {
    const agent = ctx.runtime.policy.agent;
    ctx.audit?.append({ event: 'policy_reload', ts: new Date().toISOString(), agent: { id: agent.id, version: agent.version, ...ctx.identity }, policy: { file, sha256 }, result, problems })
      .catch((err) => ctx.log.error({ err }, 'policy_reload record not committed'));
  }

  async function doReload(): Promise<ReloadResult> {
    const at = new Date();
    // Credential files are read again on every reload, even when the policy itself is unchanged.
    ctx.services.custody?.refreshAll('reload');
    try {
      const { policy, notes } = await loadPolicyFile(file);
      // The pact is part of the policy: one that does not load rejects the reload like a bad policy.
      const pact = await loadPactFor(policy);
      if (policy.source.sha256 === ctx.runtime.policy.source.sha256) {
        // An edited pact under an unchanged policy still takes effect.
        if (pact?.sha256 !== ctx.services.pacts?.pact?.sha256) await ctx.services.pacts?.configure(ctx.runtime.policy, pact);
        return (last = { ok: true, at });
      }
      const previous = ctx.runtime;
      const next = buildRuntime(policy, ctx.services);
      try {
        await ctx.services.pacts?.configure(policy, pact);
      } catch (err) {
        // The new policy never served: its pools and credential lease go, the last good one stays.
        void closeRuntime(next);
        throw err;
      }
      ctx.runtime = next;
      ctx.audit?.configure(spaceConfigOf(policy));
      ctx.metrics.policyReloads.inc({ result: 'ok' });
      ctx.log.info({ file, sha256: policy.source.sha256, warnings: ctx.runtime.warnings, notes }, 'policy reloaded');
      void retireRuntime(previous);
      recordReload(policy.source.sha256, 'applied');
      return (last = { ok: true, at });
    } catch (err) {
      const problems = err instanceof PolicyError ? err.problems : [String((err as Error).message ?? err)];
      ctx.metrics.policyReloads.inc({ result: 'error' });
      ctx.log.error({ file, problems }, 'policy reload failed; keeping the last good policy');
      recordReload(undefined, 'rejected', problems);
      return (last = { ok: false, at, problems });
    }
  }

  function reload(): Promise<ReloadResult> {
    // Reloads never overlap; a request during one waits for it and then runs again.
    running = (running ?? Promise.resolve()).then(doReload, doReload).finally(() => {
      running = undefined;
    });
    return running;
  }

  const onHup = () => void reload();
  process.on('SIGHUP', onHup);
  if (watchFile) {
    const name = basename(file);
    watcher = watch(dirname(file), (_event, changed) => {
      if (changed && changed !== name && !String(changed).startsWith('..')) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), DEBOUNCE_MS);
    });
    watcher.on('error', (err) => ctx.log.warn({ err, file }, 'policy watch failed; SIGHUP still reloads'));
  }

  return {
    reload,
    last: () => last,
    close() {
      process.off('SIGHUP', onHup);
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
