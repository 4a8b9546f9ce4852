// A tool call Warden is about to execute (/tools, /mcp) whose violations say `escalate` waits here
// for a person. Approved, it runs with the approved arguments, the exact ones whose hash the approval
// stored (edited or not), checked once more: a person can override what needed a person, never what
// the policy blocks outright. Rejected or timed out, it never runs. An approval releases one call.
import { performance } from 'node:perf_hooks';
import type { ToolConfig } from '../../policies/types.ts';
import type { CallContext } from '../stage.ts';
import { degradation, type Degradation } from '../tools/degrade.ts';
import { decide, judgeCall, noteViolation, type Decided, type Violation } from '../tools/violations.ts';
import { EscalationConsumedError } from '../errors.ts';
import type { EscalationQueue } from './queue.ts';
import { argsHash } from './store.ts';

const STAGE = 'escalation';

export interface HoldInput {
  call: CallContext;
  queue?: EscalationQueue;
  /** The policy's name for the tool. */
  tool: string;
  args: unknown;
  callId?: string;
  /** The violations that need a person (judged `escalate` at execution). */
  escalated: readonly Decided[];
  /** The route's checks, run again on the approved arguments. */
  check(args: unknown): readonly Violation[];
  argsSchema?: unknown;
  signal: AbortSignal;
}

export type HoldResult =
  | { kind: 'approved'; args: unknown; escalation: string; edited: boolean }
  | { kind: 'blocked'; blocked: Decided[] }
  | { kind: 'rejected'; escalation: string; by?: string; note?: string }
  | { kind: 'timed_out'; escalation: string };

/** Holds the call until a person decides (or the policy's timeout passes). */
export async function holdToolCall(input: HoldInput): Promise<HoldResult> {
  const { call, queue, tool } = input;
  const reason = input.escalated.map((d) => `${d.kind}: ${d.message}`).join('; ');
  if (!queue) {
    // Without a queue nothing can be held: the safe reading of "needs a person" is no.
    const blocked = input.escalated.map((d) => ({ ...d, action: 'block' as const, message: `${d.message} (no escalation queue is running)` }));
    return { kind: 'blocked', blocked };
  }
  // The same call sent again (after a sidecar restart, or a client timeout) attaches to its escalation.
  const key = `tool:${call.agent.id}:${call.session ?? ''}:${tool}:${input.callId ? `id:${input.callId}` : `args:${argsHash(input.args)}`}`;
  const started = performance.now();
  for (;;) {
    const esc = queue.open({
      kind: 'tool_call', key, agent: call.agent.id, session: call.session, task: call.task, requestId: call.id, tool,
      args: input.args, argsSchema: input.argsSchema, reason, timeoutMs: call.policy.escalation.timeoutMs,
    });
    const attached = esc.requestId !== call.id;
    call.decisions.push({ stage: STAGE, decision: attached ? 'attached' : 'opened', detail: { id: esc.id, reason, deadline: new Date(esc.deadline).toISOString() } });
    let decision;
    try {
      decision = await queue.wait(esc.id, input.signal);
    } catch (err) {
      // Another call with this key took the approval: this one needs its own.
      if (err instanceof EscalationConsumedError) continue;
      throw err;
    }
    const waitedMs = Math.round(performance.now() - started);
    if (decision.state === 'rejected') {
      call.decisions.push({ stage: STAGE, decision: 'rejected', detail: { id: esc.id, by: decision.by, note: decision.note, waited_ms: waitedMs } });
      call.actions.push('escalation-rejected');
      return { kind: 'rejected', escalation: esc.id, by: decision.by, note: decision.note };
    }
    if (decision.state === 'timed_out') {
      call.decisions.push({ stage: STAGE, decision: 'timed_out', detail: { id: esc.id, waited_ms: waitedMs } });
      call.actions.push('escalation-timeout');
      return { kind: 'timed_out', escalation: esc.id };
    }
    const args = decision.args === undefined ? input.args : decision.args;
    const hash = argsHash(args);
    call.decisions.push({ stage: STAGE, decision: 'approved', detail: { id: esc.id, by: decision.by, note: decision.note, args_hash: hash, edited: decision.edited, waited_ms: waitedMs } });
    if (hash !== decision.argsHash) {
      // The approval is bound to its hash: arguments that differ were not what the person approved.
      const d = decide(call.policy, { kind: 'invalid_arguments', tool, callId: input.callId, message: `the arguments to run differ from the ones escalation ${esc.id} approved (sha256 ${decision.argsHash})` });
      noteViolation(call, STAGE, d);
      return { kind: 'blocked', blocked: [{ ...d, action: 'block' }] };
    }
    // What blocks outright still blocks; what needed a person, the person has approved.
    const still = input.check(args).map((v) => decide(call.policy, v, 'execution')).filter((d) => d.action === 'block');
    for (const d of still) noteViolation(call, STAGE, d);
    if (still.length > 0) return { kind: 'blocked', blocked: still };
    call.actions.push(decision.edited ? 'escalation-approved-edited' : 'escalation-approved');
    return { kind: 'approved', args, escalation: esc.id, edited: !!decision.edited };
  }
}

export interface AdmitInput extends Omit<HoldInput, 'tool' | 'escalated'> {
  config: ToolConfig;
  stage: string;
}

export type Admission =
  | { args: unknown; escalation?: string }
  | { refused: Degradation; outcome: 'blocked' | 'rejected' | 'escalation_timeout'; escalation?: string };

/**
 * Checks a call Warden is about to execute and holds it for a person where the policy asks: the
 * arguments to run it with (a person may have edited them), or the refusal as a degradation result.
 * A call a person rejected, or did not approve in time, is refused like any other (tool_blocked), so
 * the agent's handling of refusals covers it; its code and escalation id say why.
 */
export async function admitToolCall(input: AdmitInput): Promise<Admission> {
  const { config } = input;
  const { blocked, escalated } = judgeCall(input.call, input.stage, input.check(input.args));
  if (blocked.length === 0 && escalated.length === 0) return { args: input.args };
  const hold: HoldResult = blocked.length > 0 ? { kind: 'blocked', blocked } : await holdToolCall({ ...input, tool: config.name, escalated, argsSchema: config.args });
  if (hold.kind === 'approved') return { args: hold.args, escalation: hold.escalation };
  if (hold.kind === 'blocked') {
    return { refused: degradation(config, 'tool_blocked', hold.blocked.map((d) => `${d.kind}: ${d.message}`).join('; '), false), outcome: 'blocked' };
  }
  return { refused: notApproved(config.name, hold), outcome: hold.kind === 'rejected' ? 'rejected' : 'escalation_timeout', escalation: hold.escalation };
}

// For a rejected or timed-out call the model hears that a person said no (or did not answer), so it
// neither retries on its own nor invents what the tool would have said.
const INSTRUCTIONS = {
  rejected: 'A person reviewed this call and rejected it. Do not retry it or work around it; tell the user it was not approved.',
  timed_out: 'This call needs a person\'s approval and none came in time. Do not retry it on your own; tell the user it is waiting for approval and could not be done now.',
};

/** The degradation protocol's result for a call a person did not approve. */
export function notApproved(tool: string, hold: Extract<HoldResult, { kind: 'rejected' | 'timed_out' }>): Degradation {
  const message = hold.kind === 'rejected'
    ? `a person rejected the call (escalation ${hold.escalation}${hold.by ? `, by ${hold.by}` : ''})${hold.note ? `: ${hold.note}` : ''}`
    : `no person approved the call within escalation.timeoutMs (escalation ${hold.escalation})`;
  return {
    error: {
      type: 'tool_blocked', tool, retryable: false, message, instruction: INSTRUCTIONS[hold.kind], escalation: hold.escalation,
      code: hold.kind === 'rejected' ? 'WARDEN_ERR_ESCALATION_REJECTED' : 'WARDEN_ERR_ESCALATION_TIMEOUT',
    },
  };
}
