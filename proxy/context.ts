// The sidecar's process-wide state that request handlers share: the current runtime, observability,
// and the drain flag. One object, passed explicitly; no module-level singletons.
import type { Logger } from 'pino';
import type { AuditLog } from './audit/audit-log.ts';
import type { EcsIdentity } from './audit/ecs-identity.ts';
import type { Metrics } from './metrics.ts';
import type { RecentCalls } from './admin/recent-calls.ts';
import type { Runtime, RuntimeServices } from './runtime.ts';
import type { UsageLedger } from './usage-ledger.ts';

export interface SidecarContext {
  /** The runtime built from the last good policy. */
  runtime: Runtime;
  /** What every runtime's stages share across reloads (the tool ledger). */
  readonly services: RuntimeServices;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly ledger: UsageLedger;
  /** The last calls' summaries (no bodies), for the admin page and GET /calls/recent. */
  readonly recentCalls: RecentCalls;
  /** The ECS task the sidecar runs in, when it does: part of every record's agent identity. */
  readonly identity?: EcsIdentity;
  /** Absent when the policy turns the audit log off. */
  readonly audit?: AuditLog;
  inFlight: number;
  /** Set on SIGTERM: no new calls, in-flight ones finish. */
  draining: boolean;
}
