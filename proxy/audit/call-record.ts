// What one call leaves in the audit log: who made it (agent, version, session, task), what was asked
// and served, what it cost, every stage's decision, and the bodies (or, past the policy's size cap,
// their size and SHA-256). Built once, when the call's response is about to be released.
import { createHash } from 'node:crypto';
import type { Policy } from '../../policies/types.ts';
import type { CallTiming } from '../http/call-timing.ts';
import type { CallContext } from '../stage.ts';
import type { AuditEntry } from './audit-log.ts';
import type { EcsIdentity } from './ecs-identity.ts';

/**
 * A body as the record keeps it: the exact text exchanged (evidence, and a plain string costs the
 * writer thread nothing to copy or canonicalize), a value Warden assembled (a streamed response), or
 * past the size cap only its size and SHA-256.
 */
export interface BodyCapture {
  bytes: number;
  text?: string;
  value?: unknown;
  sha256?: string;
}

/** Captures exchanged bytes under the policy's audit settings. */
export function captureBytes(policy: Policy, raw: Buffer): BodyCapture | undefined {
  const a = policy.audit;
  if (!a.enabled || a.bodies === 'none') return undefined;
  if (raw.length <= a.maxBodyBytes) return { bytes: raw.length, text: raw.toString('utf8') };
  return { bytes: raw.length, sha256: createHash('sha256').update(raw).digest('hex') };
}

/** Captures a value Warden assembled (e.g. a streamed response), of about `bytes` bytes. */
export function captureValue(policy: Policy, bytes: number, value: () => unknown): BodyCapture | undefined {
  const a = policy.audit;
  if (!a.enabled || a.bodies === 'none') return undefined;
  return bytes <= a.maxBodyBytes ? { bytes, value: value() } : { bytes };
}

export interface CallInfo {
  id: string;
  method: string;
  /** The request target, query included. */
  path: string;
  route: string;
  timing: CallTiming;
  policy: Policy;
  identity?: EcsIdentity;
}

function ms(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** What kind of call a record is about (`request`: it never became one, such as an unknown route). */
export function callEvent(call: CallContext | undefined): string {
  if (call === undefined) return 'request';
  if (call.endpoint === 'agent') return 'agent_call';
  if (call.toolCall) return 'tool_call';
  return call.endpoint === 'passthrough' ? 'passthrough' : 'model_call';
}

/**
 * The audit entry for a call (or for a request that never became one, such as an unknown route).
 * Nested objects list their keys in canonical order, which lets canonicalize write them natively.
 */
export function callEntry(call: CallContext | undefined, info: CallInfo, now: number): AuditEntry {
  const t = info.timing;
  const agent = call?.agent ?? info.policy.agent;
  const u = call?.usage;
  return {
    event: callEvent(call),
    ts: new Date(t.startedAt).toISOString(),
    request_id: info.id,
    agent: { id: agent.id, version: agent.version, ...info.identity },
    session: call?.session,
    task: call?.task,
    route: info.route,
    method: info.method,
    path: info.path,
    endpoint: call?.endpoint,
    model: call?.modelAsked === undefined ? undefined : {
      asked: call.modelAsked, fingerprint: call.systemFingerprint, sent: call.modelSent, served: call.modelServed,
    },
    status: t.status,
    error: t.error,
    stream_error: t.streamError,
    latency_ms: ms(now - t.start),
    upstream_ms: t.upstreamStart === undefined ? undefined : ms((t.upstreamEnd ?? now) - t.upstreamStart),
    usage: u && { cache_write_tokens: u.cacheWriteTokens, cached_input_tokens: u.cachedInputTokens, input_tokens: u.inputTokens, output_tokens: u.outputTokens },
    cost_usd: call?.costUsd,
    actions: call?.actions.length ? call.actions : undefined,
    decisions: call?.decisions.length ? call.decisions.map((d) => ({ decision: d.decision, detail: d.detail, stage: d.stage })) : undefined,
    violations: call?.violations.length ? call.violations : undefined,
    tool: call?.toolCall,
    request: call?.bodies.request,
    response: call?.bodies.response,
  };
}
