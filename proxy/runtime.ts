// Everything built from one policy: the stage pipeline and the upstream clients. A reload builds a new
// runtime and swaps it in; calls in flight finish on the runtime they started with.
import type { Policy } from '../policies/types.ts';
import { UnknownUpstreamError } from './errors.ts';
import { createUpstreamClient, type UpstreamClient } from './http/upstream-client.ts';
import { buildPipeline, type Pipeline } from './pipeline.ts';
import { providers } from './providers/index.ts';
import { ToolCatalog } from './tools/catalog.ts';
import type { ToolLedger } from './tools/ledger.ts';
import type { AuditEntry } from './audit/audit-log.ts';
import type { MemoryStore } from './context/memory.ts';
import type { EscalationQueue } from './escalation/queue.ts';
import type { TokenCounter } from './context/tokens.ts';
import type { Agent } from 'undici';
import type { RetryBudgets } from './retry/budgets.ts';

export interface Runtime {
  readonly policy: Policy;
  readonly pipeline: Pipeline;
  /** The policy's tools, their schemas compiled once for this policy. */
  readonly tools: ToolCatalog;
  readonly upstreams: ReadonlyMap<string, UpstreamClient>;
  /** Problems that do not stop the sidecar but make it yellow (e.g. an unset key variable). */
  readonly warnings: readonly string[];
  readonly loadedAt: Date;
}

/** Process-wide state a runtime's stages use; it outlives any one policy. */
export interface RuntimeServices {
  toolLedger: ToolLedger;
  /** The connection pool HTTP tools are called through. */
  toolDispatcher: Agent;
  /** Retry budgets per upstream; they outlive reloads, so a reload cannot reset a storm's brake. */
  retryBudgets: RetryBudgets;
  /** Token counts, cached per message across calls and reloads. */
  tokens: TokenCounter;
  /** What context windows dropped, per session (SQLite FTS5). */
  memory: MemoryStore;
  /** The human-review queue (escalations.db): calls held until a person decides. */
  escalations: EscalationQueue;
  /** Records a call Warden itself makes (the context summarizer) in the audit log, when there is one. */
  record?: (entry: AuditEntry) => void;
}

/** Builds the runtime for a validated policy. */
export function buildRuntime(policy: Policy, services?: RuntimeServices): Runtime {
  const upstreams = new Map<string, UpstreamClient>();
  for (const config of Object.values(policy.upstreams)) {
    upstreams.set(config.name, createUpstreamClient(config, providers[config.provider]));
  }
  const tools = new ToolCatalog(policy);
  return Object.freeze({
    policy,
    pipeline: buildPipeline(policy, tools, services, upstreams),
    tools,
    upstreams,
    warnings: [...upstreams.values()].flatMap((u) => u.warnings),
    loadedAt: new Date(),
  });
}

/** The named upstream's client, or the 404 the agent gets for an undeclared one. */
export function upstreamOf(rt: Runtime, name: string): UpstreamClient {
  const client = rt.upstreams.get(name);
  if (!client) throw new UnknownUpstreamError(name);
  return client;
}

/** Closes the runtime's connection pools once their in-flight requests finish. */
export async function closeRuntime(rt: Runtime): Promise<void> {
  await Promise.allSettled([...rt.upstreams.values()].map((u) => u.close()));
}
