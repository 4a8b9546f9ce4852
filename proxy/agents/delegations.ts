// Calls this agent is serving for another agent, while they are served. When a peer's verified call
// comes in, the sidecar opens a delegation and hands its id to the agent (x-warden-delegation); the
// agent sends that id back on the model, tool and agent calls it makes for that caller, and those
// calls run with the delegation's scopes. The delegation ends with the inbound call: an id used later,
// or never issued, is refused rather than read as "no delegation", so a mistake cannot widen a call.
import { randomBytes } from 'node:crypto';
import type { Hop } from './token.ts';

export interface Delegation {
  readonly id: string;
  /** The agent whose sidecar signed the inbound call. */
  readonly caller: string;
  /** The chain as verified, this agent not yet on it. */
  readonly chain: readonly Hop[];
  /** This agent's scopes narrowed by the caller's token, its chain and the trust entry. */
  readonly scopes: readonly string[];
  /** The inbound token's id, to find the call that opened it in the audit log. */
  readonly jti: string;
}

export class Delegations {
  private readonly open = new Map<string, Delegation>();
  private readonly maxOpen: number;

  constructor(maxOpen = 10_000) {
    this.maxOpen = maxOpen;
  }

  /** Opens a delegation; undefined when too many are open (each belongs to an inbound call in flight). */
  start(d: Omit<Delegation, 'id'>): Delegation | undefined {
    if (this.open.size >= this.maxOpen) return undefined;
    const delegation = Object.freeze({ ...d, id: `dlg_${randomBytes(18).toString('base64url')}` });
    this.open.set(delegation.id, delegation);
    return delegation;
  }

  get(id: string): Delegation | undefined {
    return this.open.get(id);
  }

  end(id: string): void {
    this.open.delete(id);
  }

  get size(): number {
    return this.open.size;
  }
}
