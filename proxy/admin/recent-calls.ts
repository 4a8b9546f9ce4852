// The last calls the sidecar finished, for the admin page and GET /calls/recent: a fixed-size ring of
// short summaries (who, which model, status, latency, tokens, cost, what was decided). It holds no
// bodies, arguments or messages, and a field the policy masks or encrypts in the audit record is
// masked here too, so the page never shows what the audit log would hide. Filled whether or not the
// audit log is on; a push is O(1) and allocates only the summary itself.
import type { Policy } from '../../policies/types.ts';
import { callEvent } from '../audit/call-record.ts';
import { segments } from '../audit/field-protection.ts';
import type { CallTiming } from '../http/call-timing.ts';
import type { CallContext } from '../stage.ts';

export interface CallSummary {
  ts: string;
  request_id: string;
  /** model_call, tool_call, agent_call, passthrough, or request (never became a call: an unknown route, a refused token). */
  event: string;
  route: string;
  endpoint?: string;
  session?: string;
  task?: string;
  tool?: string;
  model_asked?: string;
  model_served?: string;
  status: number;
  error?: string;
  latency_ms: number;
  input_tokens?: number;
  output_tokens?: number;
  cost_usd?: number;
  /** Violation kinds with what was done, e.g. `scope_violation:block`. */
  violations?: string[];
  /** The x-warden-actions labels, e.g. `model-pinned`, `redacted:2`. */
  actions?: string[];
  /** Each stage's decision, e.g. `sanitize:redacted` (never its detail). */
  decisions?: string[];
}

export const RECENT_CALLS = 100;
const MASKED = '[masked]';

/** A bounded ring of call summaries, newest first when listed. */
export class RecentCalls {
  readonly capacity: number;
  readonly #slots: (CallSummary | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity = RECENT_CALLS) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer (got ${capacity})`);
    this.capacity = capacity;
    this.#slots = new Array(capacity).fill(undefined);
  }

  /** Adds a summary, overwriting the oldest once full. */
  push(summary: CallSummary): void {
    this.#slots[this.#next] = summary;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  get size(): number {
    return this.#size;
  }

  /** The summaries, newest first (at most `limit`). */
  list(limit = this.capacity): CallSummary[] {
    const n = Math.max(0, Math.min(limit, this.#size));
    const out: CallSummary[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#slots[(this.#next - 1 - i + this.capacity) % this.capacity]!;
    return out;
  }
}

// The audit record paths each summary field comes from: masked or encrypted there, masked here.
const FIELD_PATHS: readonly [keyof CallSummary, string][] = [
  ['session', 'session'], ['task', 'task'], ['route', 'route'], ['endpoint', 'endpoint'], ['tool', 'tool.name'],
  ['model_asked', 'model.asked'], ['model_served', 'model.served'],
];
const hidden = new WeakMap<Policy, readonly (keyof CallSummary)[]>();

/** The summary fields a policy's audit.mask and audit.encrypt cover (computed once per policy). */
function hiddenFields(policy: Policy): readonly (keyof CallSummary)[] {
  let fields = hidden.get(policy);
  if (!fields) {
    const norm = (p: string) => segments(p).join('.');
    const paths = [...policy.audit.mask.map((m) => norm(m.path)), ...policy.audit.encrypt.map(norm)];
    // A rule on `model` covers model.asked; one on `agent` covers nothing here.
    fields = FIELD_PATHS.filter(([, path]) => paths.some((p) => path === p || path.startsWith(`${p}.`))).map(([f]) => f);
    hidden.set(policy, fields);
  }
  return fields;
}

/** The summary of a finished call (or of a request that never became one). */
export function summarizeCall(call: CallContext | undefined, id: string, route: string, timing: CallTiming, policy: Policy, now: number): CallSummary {
  const u = call?.usage;
  const summary: CallSummary = {
    ts: new Date(timing.startedAt).toISOString(),
    request_id: id,
    event: callEvent(call),
    route,
    endpoint: call?.endpoint,
    session: call?.session,
    task: call?.task,
    tool: call?.toolCall?.name,
    model_asked: call?.modelAsked,
    model_served: call?.modelServed ?? call?.modelSent,
    status: timing.status,
    error: timing.error ?? timing.streamError,
    latency_ms: Math.round((now - timing.start) * 10) / 10,
    input_tokens: u?.inputTokens,
    output_tokens: u?.outputTokens,
    cost_usd: call?.costUsd,
    violations: call?.violations.length ? call.violations.map((v) => `${v.kind}:${v.action}`) : undefined,
    actions: call?.actions.length ? [...call.actions] : undefined,
    decisions: call?.decisions.length ? call.decisions.map((d) => `${d.stage}:${d.decision}`) : undefined,
  };
  for (const f of hiddenFields(policy)) {
    if (summary[f] !== undefined) (summary as unknown as Record<string, unknown>)[f] = MASKED;
  }
  return summary;
}
