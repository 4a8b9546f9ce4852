// Everything built from one policy: the stage pipeline and the upstream clients. A reload builds a new
// runtime and swaps it in; calls in flight finish on the runtime they started with.
import type { Policy } from '../policies/types.ts';
import { UnknownUpstreamError } from './errors.ts';
import { createAgentAuth, type AgentAuth } from './auth/agent-auth.ts';
import type { AgentServices } from './agents/services.ts';
import { buildTrust, type TrustedCaller } from './agents/trust.ts';
import type { CustodyLease, KeyCustody, SecretHolder } from './auth/key-custody.ts';
import { createUpstreamClient, type UpstreamClient } from './http/upstream-client.ts';
import { sanitizeWarnings } from './sanitize/compile.ts';
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
import type { Limiter } from './limits/limiter.ts';
import type { PactService } from './evals/pact-service.ts';

export interface Runtime {
  readonly policy: Policy;
  readonly pipeline: Pipeline;
  /** The policy's tools, their schemas compiled once for this policy. */
  readonly tools: ToolCatalog;
  readonly upstreams: ReadonlyMap<string, UpstreamClient>;
  /** The token check on the traffic listener; absent when the policy asks for no token. */
  readonly agentAuth?: AgentAuth;
  /** The agents whose calls this one takes (agents.trust), their keys parsed once. */
  readonly trust: ReadonlyMap<string, TrustedCaller>;
  /** Problems that do not stop the sidecar but make it yellow (e.g. an unset key variable); read live, as keys rotate. */
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
  /** Rate limits, concurrency and daily spend per agent and task; they outlive reloads, and spend outlives restarts. */
  limits?: Limiter;
  /** Token counts, cached per message across calls and reloads. */
  tokens: TokenCounter;
  /** What context windows dropped, per session (SQLite FTS5). */
  memory: MemoryStore;
  /** The human-review queue (escalations.db): calls held until a person decides. */
  escalations: EscalationQueue;
  /** Records a call Warden itself makes (the context summarizer) in the audit log, when there is one. */
  record?: (entry: AuditEntry) => void;
  /** Every credential the sidecar holds, watched and swapped in place (keys outlive reloads). */
  custody?: KeyCustody;
  /** Behavioural pacts: continuous evaluation, live watch, rollback pins (evals.db); absent: none. */
  pacts?: PactService;
  /** Agent-to-agent calls: the identity key, the replay cache, open delegations; absent: /agents/* is a 404. */
  agents?: AgentServices;
}

// Each runtime's hold on the credentials it reads, let go when it closes.
const leases = new WeakMap<Runtime, CustodyLease>();

/** Builds the runtime for a validated policy. */
export function buildRuntime(policy: Policy, services?: RuntimeServices): Runtime {
  const credentials = services?.custody?.lease();
  try {
    const rt = assembleRuntime(policy, services, credentials);
    if (credentials) leases.set(rt, credentials);
    return rt;
  } catch (err) {
    // A runtime that is never used holds nothing: its files are not watched on its account.
    credentials?.release();
    throw err;
  }
}

function assembleRuntime(policy: Policy, services: RuntimeServices | undefined, credentials: SecretHolder | undefined): Runtime {
  // First, because it throws when no token can be read, and then nothing else should have been built.
  const agentAuth = policy.auth && createAgentAuth(policy.auth, credentials);
  // Only a policy with an agents section needs the identity key; the first such policy creates it.
  services?.agents?.prepare(policy);
  const trust = buildTrust(policy);
  const upstreams = new Map<string, UpstreamClient>();
  for (const config of Object.values(policy.upstreams)) {
    upstreams.set(config.name, createUpstreamClient(config, providers[config.provider], credentials));
  }
  const tools = new ToolCatalog(policy);
  return Object.freeze({
    policy,
    pipeline: buildPipeline(policy, tools, services, upstreams),
    tools,
    upstreams,
    agentAuth,
    trust,
    get warnings() {
      return [...upstreams.values()].flatMap((u) => u.warnings).concat(agentAuth?.warnings ?? [], sanitizeWarnings(policy));
    },
    loadedAt: new Date(),
  });
}

/** The named upstream's client, or the 404 the agent gets for an undeclared one. */
export function upstreamOf(rt: Runtime, name: string): UpstreamClient {
  const client = rt.upstreams.get(name);
  if (!client) throw new UnknownUpstreamError(name);
  return client;
}

// Calls under way on each runtime. A call keeps the runtime it began under (its policy, its pools) to
// its end, and may send again on its pools after a reload: a retry after Retry-After or a backoff, a
// fallback tool, a continuation. So a replaced runtime closes only once its last call has ended.
const calls = new WeakMap<Runtime, { count: number; ended?: () => void }>();

/** Holds the runtime for one call; the function returned lets go of it (once). */
export function holdRuntime(rt: Runtime): () => void {
  let held = calls.get(rt);
  if (!held) calls.set(rt, (held = { count: 0 }));
  held.count++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--held.count === 0) held.ended?.();
  };
}

/** Closes a runtime a reload replaced, once the calls that began under it have ended. */
export async function retireRuntime(rt: Runtime): Promise<void> {
  const held = calls.get(rt);
  if (held && held.count > 0) await new Promise<void>((resolve) => (held.ended = resolve));
  await closeRuntime(rt);
}

/** Closes the runtime's connection pools once their in-flight requests finish, then lets go of its credentials. */
export async function closeRuntime(rt: Runtime): Promise<void> {
  await Promise.allSettled([...rt.upstreams.values()].map((u) => u.close()));
  leases.get(rt)?.release();
}
