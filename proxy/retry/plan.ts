// Which deliberate retries a model call gets: confidence scoring (with retries under the threshold),
// a parallel jury, both, or neither. Decided once per call from the policy, the call and its request.
import type { CallSelector, RetriesConfig } from '../../policies/types.ts';
import type { Request } from '../canonical.ts';
import { headerValue } from '../http/headers.ts';
import type { EndpointAdapter, Json, LogprobSupport } from '../providers/types.ts';
import type { CallContext } from '../stage.ts';

export interface Deliberation {
  confidence?: NonNullable<RetriesConfig['confidence']>;
  parallel?: NonNullable<RetriesConfig['parallel']>;
  /** How confidence is read: logprobs (stripped again when the agent did not ask), or a self-report. */
  logprobs?: { support: LogprobSupport; strip: boolean };
  selfReport: boolean;
}

/** Whether a call is one the selector names; no selector names every call. */
export function selects(sel: CallSelector | undefined, call: CallContext, req: Request): boolean {
  if (!sel) return true;
  if (sel.header !== undefined) {
    const v = headerValue(call.headers, sel.header.toLowerCase());
    if (v !== undefined && v !== '0' && v.toLowerCase() !== 'false') return true;
  }
  if (sel.models?.includes(call.modelAsked ?? req.model)) return true;
  if (sel.routes?.includes(call.route)) return true;
  return sel.tools !== undefined && req.tools.some((t) => sel.tools!.includes(t.name));
}

/** The call's deliberation, or undefined for a plain forward. */
export function deliberationFor(call: CallContext, req: Request, wire: Json, adapter: EndpointAdapter): Deliberation | undefined {
  if (req.kind !== 'chat') return undefined;
  const { confidence, parallel } = call.policy.retries;
  const scored = confidence && selects(confidence.when, call, req) ? confidence : undefined;
  const jury = parallel && selects(parallel.when, call, req) ? parallel : undefined;
  if (!scored && !jury) return undefined;
  const plan: Deliberation = { parallel: jury, selfReport: false };
  if (scored?.method === 'self') {
    plan.confidence = scored;
    plan.selfReport = true;
  } else if (scored && adapter.logprobs) {
    plan.confidence = scored;
    plan.logprobs = { support: adapter.logprobs, strip: !adapter.logprobs.asked(wire) };
  } else if (scored) {
    call.decisions.push({ stage: 'confidence', decision: 'unavailable', detail: { why: `${adapter.name} offers no logprobs; use method: self` } });
  }
  return plan.confidence || plan.parallel ? plan : undefined;
}
