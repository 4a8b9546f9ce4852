// The pipeline: the order of stages, and the loops that run their hooks. Request stages run once per
// call (never again on a retry); response and stream hooks run in the same order.
import type { Policy } from '../policies/types.ts';
import type { Request, Response, StreamEvent, ToolCall } from './canonical.ts';
import type { WardenError } from './errors.ts';
import type { CallContext, Outcome, Stage } from './stage.ts';
import { createModelPinning } from './stages/model-pinning.ts';
import { createContextWindow } from './stages/context-window.ts';
import { createToolGuard } from './stages/tool-guard.ts';
import { createToolLedger } from './stages/tool-ledger.ts';
import { createUsageMetering } from './stages/usage-metering.ts';
import { createBehaviourWatch } from './stages/behaviour-watch.ts';
import { createSanitize } from './stages/sanitize.ts';
import { createLimits } from './stages/limits.ts';
import { limitsModelCalls } from './limits/limiter.ts';
import type { ToolCatalog } from './tools/catalog.ts';
import type { RuntimeServices } from './runtime.ts';
import type { UpstreamClient } from './http/upstream-client.ts';

export interface Pipeline {
  readonly stages: readonly Stage[];
}

/** Builds the stage array for a policy; each factory compiles what it needs once, here. */
export function buildPipeline(policy: Policy, tools: ToolCatalog, services?: RuntimeServices, upstreams?: ReadonlyMap<string, UpstreamClient>): Pipeline {
  const sanitize = policy.sanitize ? createSanitize(policy) : undefined;
  const stages: Stage[] = [
    // Pinning runs before anything that depends on the model (context sizes, prices, pacts), so they
    // all see the snapshot that actually goes upstream.
    createModelPinning(policy, services?.pacts && ((model) => services.pacts!.snapshotFor(model))),
    // Limits come next, before anything that costs (the context window may call a summarizer model):
    // a refused call should cost nothing. Only pinning, a table lookup, goes first, because the token
    // estimate is counted with the tokenizer of the model that goes upstream. The estimate is of the
    // request before tools are filtered and the context trimmed, so it errs high; the settlement
    // against the reported usage when the call ends corrects it.
    ...(services?.limits && limitsModelCalls(policy.limits) ? [createLimits(policy, { limiter: services.limits, tokens: services.tokens })] : []),
    // The tool guard filters the tool list before anything measures or trims the request, and on the
    // way back judges tool calls before any later stage (or the agent) acts on them.
    ...(tools.active ? [createToolGuard(policy, tools)] : []),
    // Responses are sanitized after the guard, which judges tool calls as the model wrote them (a
    // masked argument would fail its schema), and before the ledger, which must remember the
    // arguments the agent receives (its tool calls are matched to them).
    ...(sanitize?.response ? [sanitize.response] : []),
    // The ledger comes after the guard, so it remembers only the tool calls the agent was handed.
    ...(tools.active && services ? [createToolLedger(policy, tools, services.toolLedger)] : []),
    // Requests are sanitized after the ledger has checked tool results as the agent sent them (they
    // must match what the tools returned), and before windowing, so neither the provider nor the
    // context memory keeps what sanitization removes.
    ...(sanitize?.request ? [sanitize.request] : []),
    // Windowing sees the request as it will go (tools filtered, ledger notes added) and trims last.
    ...(policy.context?.enabled && services ? [createContextWindow(policy, { tokens: services.tokens, memory: services.memory, upstream: (name) => upstreams?.get(name), record: services.record })] : []),
    // Metering runs last on the request: it only adds a stream-usage request on top of whatever the
    // other stages decided, and it must see every usage event before another stage could drop it.
    createUsageMetering(policy),
    // The watch looks last, at the response as the agent gets it (and at the model it was served by).
    ...(policy.evals && services?.pacts ? [createBehaviourWatch(services.pacts.live)] : []),
  ];
  return Object.freeze({ stages: Object.freeze(stages) });
}

export type StageResult<T> = { reply: WardenError } | { value: T; changed: boolean };

async function runHooks<T>(
  call: CallContext, stages: readonly Stage[], hook: 'onRequest' | 'onResponse', value: T,
): Promise<StageResult<T>> {
  let current = value;
  for (const stage of stages) {
    const fn = stage[hook] as ((c: CallContext, v: T) => Outcome<T> | Promise<Outcome<T>>) | undefined;
    if (!fn) continue;
    let outcome = fn.call(stage, call, current);
    // Most hooks are synchronous; awaiting only real promises keeps the hot path free of microtask hops.
    if (outcome instanceof Promise) outcome = await outcome;
    if (outcome.kind === 'reply') {
      call.decisions.push({ stage: stage.name, decision: 'reply', detail: { hook, code: outcome.error.code } });
      return { reply: outcome.error };
    }
    if (outcome.kind === 'rewrite') {
      if (outcome.action) call.actions.push(outcome.action);
      current = outcome.value;
    }
  }
  return { value: current, changed: current !== value };
}

/** Runs every stage's request hook in order. */
export function runRequest(p: Pipeline, call: CallContext, req: Request): Promise<StageResult<Request>> {
  return runHooks(call, p.stages, 'onRequest', req);
}

/** Runs every stage's response hook in order (whole, non-streamed responses). */
export function runResponse(p: Pipeline, call: CallContext, res: Response): Promise<StageResult<Response>> {
  return runHooks(call, p.stages, 'onResponse', res);
}

/**
 * Runs the stream hooks over one canonical event: the events to write in its place (none when a stage
 * dropped it; several when one released held text), or the error a stage ended the stream with.
 */
export function runStreamEvent(p: Pipeline, call: CallContext, ev: StreamEvent): StreamEvent[] | { reply: WardenError } {
  let current: StreamEvent[] = [ev];
  for (const stage of p.stages) {
    if (!stage.onStreamEvent || current.length === 0) continue;
    let next: StreamEvent[] | undefined;
    for (const [i, e] of current.entries()) {
      const outcome = stage.onStreamEvent(call, e);
      if (outcome.kind === 'reply') {
        call.decisions.push({ stage: stage.name, decision: 'reply', detail: { hook: 'onStreamEvent', code: outcome.error.code } });
        return { reply: outcome.error };
      }
      // The common case, every event continuing, allocates nothing.
      if (outcome.kind === 'continue') {
        next?.push(e);
        continue;
      }
      next ??= current.slice(0, i);
      if (outcome.action) call.actions.push(outcome.action);
      const value = outcome.value;
      if (value === null) continue;
      if (Array.isArray(value)) next.push(...(value as readonly StreamEvent[]));
      else next.push(value as StreamEvent);
    }
    if (next) current = next;
  }
  return current;
}

/** Whether a streamed response must be held back from its first tool call until a stage has judged them. */
export function holdsToolCalls(p: Pipeline): boolean {
  return p.stages.some((s) => s.onStreamToolCalls !== undefined);
}

/** Runs the tool-call gates over a finished stream's calls: the refusals to write in, or an error to end with. */
export function runStreamToolCalls(p: Pipeline, call: CallContext, calls: ReadonlyMap<number, ToolCall>, complete: boolean): { reply: WardenError } | { blocked: ReadonlyMap<number, string> } {
  const blocked = new Map<number, string>();
  for (const stage of p.stages) {
    const outcome = stage.onStreamToolCalls?.(call, calls, complete);
    if (!outcome || outcome.kind === 'continue') continue;
    if (outcome.kind === 'reply') {
      call.decisions.push({ stage: stage.name, decision: 'reply', detail: { hook: 'onStreamToolCalls', code: outcome.error.code } });
      return { reply: outcome.error };
    }
    if (outcome.action) call.actions.push(outcome.action);
    for (const [index, text] of outcome.value) blocked.set(index, text);
  }
  return { blocked };
}

/** Tells every stage the stream starts over (a stalled attempt retried unseen). */
export function runStreamRestart(p: Pipeline, call: CallContext): void {
  for (const stage of p.stages) stage.onStreamRestart?.(call);
}

/** A partial streamed response as the record may keep it (every stage's onRecord applied). */
export function recordable(p: Pipeline, call: CallContext, res: Response): Response {
  let current = res;
  for (const stage of p.stages) current = stage.onRecord?.(call, current) ?? current;
  return current;
}

/**
 * Tells every stage the stream ended, with the response accumulated from the upstream's events;
 * returns it as the agent received it (a stage that changed content says how), for the record.
 */
export function runStreamEnd(p: Pipeline, call: CallContext, res: Response): Response {
  let current = res;
  for (const stage of p.stages) current = stage.onStreamEnd?.(call, current) ?? current;
  return current;
}
