// Which agent a call on the traffic listener acts as. Normally the policy's own; when the agent names
// a delegation (x-warden-delegation, handed to it with a call from another agent), the same agent with
// its scopes narrowed to the delegation's, which is what the tool catalogue then checks against.
import type { IncomingHttpHeaders } from 'node:http';
import type { AgentConfig, Policy } from '../../policies/types.ts';
import { AgentIdentityError } from '../errors.ts';
import { headerValue } from '../http/headers.ts';
import type { Metrics } from '../metrics.ts';
import type { StageDecision } from '../stage.ts';
import type { Delegation } from './delegations.ts';
import type { AgentServices } from './services.ts';

export const DELEGATION_HEADER = 'x-warden-delegation';
export const IDENTITY_STAGE = 'agent-identity';

export interface Acting {
  /** The policy's agent with the delegation's scopes. */
  agent: AgentConfig;
  delegation: Delegation;
  /** For the call's record: whom it was done for. */
  decision: StageDecision;
}

/** Counts a refused identity or delegation by reason (busy is capacity, not a failure), and hands the error back to throw. */
export function refused(metrics: Metrics, err: AgentIdentityError): AgentIdentityError {
  if (err.reason !== 'busy') metrics.authFailures.inc({ reason: err.reason });
  return err;
}

/** The delegation a traffic call names and the agent as it acts under it; throws for an id that is not open. */
export function actingFor(services: AgentServices | undefined, metrics: Metrics, policy: Policy, headers: IncomingHttpHeaders): Acting | undefined {
  const id = headerValue(headers, DELEGATION_HEADER);
  if (id === undefined) return undefined;
  const d = services?.delegations.get(id);
  if (!d) {
    throw refused(metrics, new AgentIdentityError('delegation',
      `${DELEGATION_HEADER} ${JSON.stringify(id.slice(0, 64))} names no call this agent is serving for another agent (it has ended, or never existed)`));
  }
  // A reload since the delegation opened may have taken scopes from this agent; it never adds any.
  const scopes = policy.agent.scopes.filter((s) => d.scopes.includes(s));
  return {
    agent: Object.freeze({ ...policy.agent, scopes: Object.freeze(scopes) }),
    delegation: d,
    decision: { stage: IDENTITY_STAGE, decision: 'acting-for', detail: { delegation: d.id, caller: d.caller, chain: d.chain.map((h) => h.agent), scopes } },
  };
}
