// The stage contract. A stage is built once per policy by a factory (`createX(policy): Stage`) and
// answers each hook with a value: continue, continue with a rewrite, or reply (short-circuit). It throws
// only on real faults, which the pipeline turns into a 500 without a stack trace to the client.
import type { IncomingHttpHeaders } from 'node:http';
import type { AgentConfig, Policy, UpstreamConfig } from '../policies/types.ts';
import type { Request, Response, StreamEvent, ToolCall, Usage } from './canonical.ts';
import type { WardenError } from './errors.ts';
import type { BodyCapture } from './audit/call-record.ts';
import type { EndpointAdapter } from './providers/types.ts';
import type { ToolCallRecord } from './tools/http-tool.ts';
import type { Decided } from './tools/violations.ts';

export type Continue = { readonly kind: 'continue' };
export type Rewrite<T> = { readonly kind: 'rewrite'; readonly value: T; readonly action?: string };
export type Reply = { readonly kind: 'reply'; readonly error: WardenError };
export type Outcome<T> = Continue | Rewrite<T> | Reply;

export const CONTINUE: Continue = Object.freeze({ kind: 'continue' });

/** Continue with a changed value; `action` is reported in x-warden-actions and the call record. */
export function rewrite<T>(value: T, action?: string): Rewrite<T> {
  return { kind: 'rewrite', value, action };
}

/** Short-circuit: answer the agent with this error in the provider's own shape. */
export function reply(error: WardenError): Reply {
  return { kind: 'reply', error };
}

/** One entry of the call's decision trail (it becomes part of the audit record). */
export interface StageDecision {
  stage: string;
  decision: string;
  detail?: Record<string, unknown>;
}

/** Everything Warden knows about one call while it runs. */
export interface CallContext {
  readonly id: string;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  readonly policy: Policy;
  /** The agent the call acts as: the policy's, its scopes narrowed when it works for another agent (x-warden-delegation). */
  readonly agent: AgentConfig;
  /** The model upstream, for model calls and pass-throughs. */
  readonly upstream?: UpstreamConfig;
  /** Metric label: openai | anthropic | upstream name. */
  readonly route: string;
  /** The endpoint adapter's name, e.g. openai.chat. */
  readonly endpoint: string;
  /** The endpoint's adapter, for the provider facts a stage needs as data (e.g. its stop reason). */
  readonly adapter?: EndpointAdapter;
  readonly headers: IncomingHttpHeaders;
  readonly task?: string;
  readonly session?: string;
  modelAsked?: string;
  modelSent?: string;
  modelServed?: string;
  systemFingerprint?: string;
  usage?: Usage;
  /** Usage of attempts made for this call but not delivered (jury members, low-confidence answers). */
  extraUsage?: Usage;
  costUsd?: number;
  /** Input tokens of the request whose answer was delivered, as the upstream counted them. */
  contextTokens?: number;
  /** Short labels for x-warden-actions, e.g. `model-pinned`. */
  readonly actions: string[];
  readonly decisions: StageDecision[];
  /** Tool calls checked against the policy in this call (model-side and executed), for the scope-honesty count. */
  toolCallsChecked?: number;
  /** Policy violations found in this call, with what was done about each (metrics and the record read them). */
  readonly violations: Decided[];
  /** For a call to a tool through /tools or /mcp: what happened, for the audit record. */
  toolCall?: ToolCallRecord;
  /** The request and response bodies as the audit record keeps them. */
  readonly bodies: { request?: BodyCapture; response?: BodyCapture };
  /** Per-call state a stage keeps between its hooks, keyed by stage name. */
  readonly state: Map<string, unknown>;
}

export interface Stage {
  readonly name: string;
  onRequest?(call: CallContext, req: Request): Outcome<Request> | Promise<Outcome<Request>>;
  onResponse?(call: CallContext, res: Response): Outcome<Response> | Promise<Outcome<Response>>;
  /**
   * One canonical event of a streamed response. Synchronous so events flow without queuing. A rewrite
   * to `null` drops the event; to a list, replaces it by several (in order; later stages see each).
   * A stage may hold text back on a channel (a bounded tail, e.g. a possible secret still arriving):
   * it returns less text than it got, and releases the rest as `text`/`tool-call` events put before
   * the event that closes the channel (`text-end`, `tool-call-end`, or `finish` for all channels);
   * the adapter writes those as wire events of their own where the closing event cannot carry them.
   * A reply ends the stream there with that error, in band: nothing of this event or later ones
   * reaches the agent.
   */
  onStreamEvent?(call: CallContext, ev: StreamEvent): Continue | Rewrite<StreamEvent | readonly StreamEvent[] | null> | Reply;
  /**
   * A streamed response's tool calls, whole, before any of them reaches the agent: the relay holds
   * the stream back from the first tool-call event while a stage has this hook. `calls` is keyed by
   * the canonical index; `complete` is false when the stream ended without its terminal event. A
   * rewrite names the calls to replace with refusal text (index → text); a reply ends the stream
   * with that error, in band.
   */
  onStreamToolCalls?(call: CallContext, calls: ReadonlyMap<number, ToolCall>, complete: boolean): Continue | Rewrite<ReadonlyMap<number, string>> | Reply;
  /**
   * After the last event: the whole streamed response as accumulated from the upstream. A stage whose
   * stream hooks changed content returns the response as the agent received it; later stages and the
   * record see that one (so a redacted secret never reaches the audit log).
   */
  onStreamEnd?(call: CallContext, res: Response): void | Response;
  /** The stream starts over unseen (a stalled attempt retried before a byte reached the agent): per-attempt stream state goes. */
  onStreamRestart?(call: CallContext): void;
  /** A streamed response entering the record outside onStreamEnd (a stalled attempt's partial output): as the stage lets the record keep it. */
  onRecord?(call: CallContext, res: Response): Response;
}
