// A violation is a fact (this tool call broke that rule); what happens to it is the policy's rule
// for its kind, tempered by the mode: enforce applies the rule, monitor and research only record
// what the rule would have done. `escalate` needs the human-review queue; until a call can be held
// for a person, an escalation blocks (and says so), which is the safe reading of "needs a human".
import type { Policy, RuleAction, ViolationKind } from '../../policies/types.ts';
import type { CallContext } from '../stage.ts';

export interface Violation {
  kind: ViolationKind;
  tool: string;
  /** One sentence for the agent, the log and the audit record. */
  message: string;
  /** The tool call it concerns, when there is one. */
  callId?: string;
}

export interface Decided extends Violation {
  /** What the rule says. */
  rule: RuleAction;
  /** What Warden did: pass (log) or block. */
  action: 'log' | 'block';
}

/** What Warden does about a violation under this policy. */
export function decide(policy: Policy, v: Violation): Decided {
  const rule = v.kind === 'approval_required' ? 'escalate' : policy.rules[v.kind];
  const action = policy.mode === 'enforce' && rule !== 'log' ? 'block' : 'log';
  return { ...v, rule, action };
}

/** The text an agent reads in place of a tool call Warden refused. */
export function refusalText(blocked: readonly Decided[]): string {
  const lines = blocked.map((v) => `The call to ${v.tool} was refused by policy (${v.kind}): ${v.message}`);
  return `[warden] ${lines.join(' ')} Do not retry it or guess its result; tell the user it could not be done.`;
}

/** Puts a violation on the call: for metrics, and as a stage's decision in its audit record. */
export function noteViolation(call: CallContext, stage: string, d: Decided): void {
  call.violations.push(d);
  call.decisions.push({ stage, decision: d.action === 'block' ? 'blocked' : 'logged', detail: { kind: d.kind, tool: d.tool, callId: d.callId, rule: d.rule, message: d.message } });
}

/** Decides and notes each violation; returns the ones that block. */
export function judgeAll(call: CallContext, stage: string, violations: readonly Violation[]): Decided[] {
  const blocked: Decided[] = [];
  for (const v of violations) {
    const d = decide(call.policy, v);
    noteViolation(call, stage, d);
    if (d.action === 'block') blocked.push(d);
  }
  return blocked;
}
