// What a limit hit does: rules.limit_exceeded under the policy's mode (enforce refuses, monitor and
// research only record), one decision in the call's record, and the error the agent gets.
import { BudgetExceededError, RateLimitedError, type WardenError } from '../errors.ts';
import type { CallContext } from '../stage.ts';
import { decide } from '../tools/violations.ts';
import type { LimitHit } from './limiter.ts';

/**
 * Puts a limit hit on the call (a `limited` decision, and a limit_exceeded violation for
 * warden_violations_total) and says whether the policy refuses the call. `tool` names the tool calls
 * concerned, if any. A limit is a fact about traffic, not something a person could approve, so a
 * rule of `escalate` blocks, as any violation that cannot be held does.
 */
export function judgeHit(call: CallContext, stage: string, hit: LimitHit, tool = ''): boolean {
  const d = decide(call.policy, { kind: 'limit_exceeded', tool, message: hit.message });
  call.violations.push(d);
  call.decisions.push({
    stage, decision: 'limited',
    detail: { limit: hit.limit, key: hit.key, value: hit.value, retryAfterSeconds: hit.retryAfterSeconds, action: d.action, ...(tool ? { tool } : {}) },
  });
  return d.action === 'block';
}

/** The 429 for a refused call: budget or rate limit, with its Retry-After. */
export function errorFor(hit: LimitHit): WardenError {
  return hit.limit.endsWith('usd_per_day') ? new BudgetExceededError(hit.message, hit.retryAfterSeconds) : new RateLimitedError(hit.message, hit.retryAfterSeconds);
}
