// A violation is a fact (this tool call broke that rule); what happens to it is the policy's rule
// for its kind, tempered by the mode: enforce applies the rule, monitor and research only record
// what the rule would have done. `escalate` holds a call Warden is about to execute (an HTTP tool, an
// MCP tools/call) in the human-review queue. Where nothing can be held, it blocks (and says why),
// which is the safe reading of "needs a human": a model's call to a tool that runs outside Warden,
// and results (the tool has already run; its answer is withheld).
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
  /** What Warden did: pass (log), block, or hold for a person (escalate; on the model side: passed on, to be held when run). */
  action: 'log' | 'block' | 'escalate';
}

/**
 * Where a violation is judged: `model`, a model's tool call on its way to the agent (it passes when
 * the hold can happen later, as the agent runs it through Warden); `execution`, a call Warden is
 * about to make, which can be held; `other` (results, conversations), where nothing can be held.
 */
export type Site = 'model' | 'execution' | 'other';

/** What Warden does about a violation under this policy, at this site. */
export function decide(policy: Policy, v: Violation, site: Site = 'other'): Decided {
  const rule = v.kind === 'approval_required' ? 'escalate' : policy.rules[v.kind];
  if (policy.mode !== 'enforce' || rule === 'log') return { ...v, rule, action: 'log' };
  if (rule === 'block') return { ...v, rule, action: 'block' };
  if (site === 'execution' || (site === 'model' && executedByWarden(policy, v.tool))) return { ...v, rule, action: 'escalate' };
  const why = site === 'model'
    ? 'it needs a person\'s approval, and only a call Warden executes (an http or mcp target) can be held for one'
    : 'it needs a person\'s review, and this cannot be held for one';
  return { ...v, message: `${v.message} (${why})`, rule, action: 'block' };
}

/** Whether calls to this tool run through Warden (/tools or /mcp), where a person's approval can hold them. */
function executedByWarden(policy: Policy, name: string): boolean {
  const tool = policy.tools[name] ?? Object.values(policy.tools).find((t) => t.mcp?.tool === name);
  return !!(tool?.http || tool?.mcp);
}

/** The text an agent reads in place of a tool call Warden refused. */
export function refusalText(blocked: readonly Decided[]): string {
  const lines = blocked.map((v) => `The call to ${v.tool} was refused by policy (${v.kind}): ${v.message}`);
  return `[warden] ${lines.join(' ')} Do not retry it or guess its result; tell the user it could not be done.`;
}

const DECISION = { block: 'blocked', log: 'logged', escalate: 'escalated' } as const;

/** Puts a violation on the call: for metrics, and as a stage's decision in its audit record. */
export function noteViolation(call: CallContext, stage: string, d: Decided): void {
  call.violations.push(d);
  call.decisions.push({ stage, decision: DECISION[d.action], detail: { kind: d.kind, tool: d.tool, callId: d.callId, rule: d.rule, message: d.message } });
}

/** For a call Warden is about to execute: decides and notes each violation; returns those that block and those that need a person. */
export function judgeCall(call: CallContext, stage: string, violations: readonly Violation[]): { blocked: Decided[]; escalated: Decided[] } {
  call.toolCallsChecked = (call.toolCallsChecked ?? 0) + 1;
  const decided = violations.map((v) => decide(call.policy, v, 'execution'));
  for (const d of decided) noteViolation(call, stage, d);
  return { blocked: decided.filter((d) => d.action === 'block'), escalated: decided.filter((d) => d.action === 'escalate') };
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
