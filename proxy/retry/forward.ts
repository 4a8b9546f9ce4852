// Sending a model call upstream with transport retries: 429, 5xx, connection errors and timeouts
// before any response byte are retried with full-jitter backoff, never sooner than Retry-After, each
// retry paid for from the upstream's budget; when an upstream's attempts are spent, the policy's
// fallbacks are tried in order. Nothing here has written to the agent: once bytes go out, retrying is
// the stall handler's business (and only with the agent's consent, by policy).
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { RetriesConfig } from '../../policies/types.ts';
import type { Request } from '../canonical.ts';
import { UpstreamEncodingError, UpstreamUnreachableError, WardenError } from '../errors.ts';
import { upstreamRequestHeaders } from '../http/headers.ts';
import { readCapped } from '../http/read-capped.ts';
import { decodedResponse } from '../http/content-coding.ts';
import { stringifyLike } from '../providers/exact-numbers.ts';
import { isOk, toWardenError, type UpstreamClient, type UpstreamResponse } from '../http/upstream-client.ts';
import type { Metrics } from '../metrics.ts';
import type { EndpointAdapter, Json } from '../providers/types.ts';
import type { CallContext } from '../stage.ts';
import { backoffMs, retryAfterMs, sleep } from './backoff.ts';
import type { RetryBudgets } from './budgets.ts';

const STAGE = 'retry';
// Statuses that say "try again later" rather than "this request is wrong"; a provider adds its own.
const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);
// An error body is kept (to hand the agent if every attempt fails) up to this size.
const MAX_ERROR_BODY = 64 * 1024;

/** One place a call can go: an upstream, and the model to ask there (undefined: the call's own). */
export interface Target {
  client: UpstreamClient;
  model?: string;
}

/** What sending needs, beyond the target: the call as the stages left it, and where it came from. */
export interface ForwardInput {
  call: CallContext;
  adapter: EndpointAdapter;
  /** The agent's wire body and the canonical request the stages produced from it. */
  wire: Json;
  request: Request;
  /** The body for the call's own target (the agent's exact bytes when nothing changed it). */
  body: Buffer;
  headers: IncomingHttpHeaders;
  rest: string;
  signal: AbortSignal;
  retries: RetriesConfig;
  budgets: RetryBudgets;
  metrics: Metrics;
  targets: readonly Target[];
  /** Changes every attempt's wire body (e.g. asks for logprobs); applied after the target's model. */
  shape?(wire: Json): Json;
  /** A stall's retry of a call already counted: it takes from the budget but is not a new call. */
  again?: boolean;
}

export interface Forwarded {
  up: UpstreamResponse;
  target: Target;
  /** Retries this send made (fallback switches included). */
  retries: number;
}

/** Why an attempt failed, as the retries metric labels it. */
type Reason = 'rate_limited' | 'server_error' | 'network' | 'timeout' | 'encoding';

/** The targets of a call: its own upstream, then each fallback that speaks the same provider. */
export function targetsOf(own: UpstreamClient, retries: RetriesConfig, upstreams: ReadonlyMap<string, UpstreamClient>): Target[] {
  const out: Target[] = [{ client: own }];
  for (const f of retries.fallbacks) {
    const client = f.upstream === undefined ? own : upstreams.get(f.upstream);
    if (client && client.provider === own.provider) out.push({ client, model: f.model });
  }
  return out;
}

/** The wire body one target gets. */
export function bodyFor(input: ForwardInput, target: Target): Buffer {
  if (target.model === undefined && !input.shape) return input.body;
  const request = target.model === undefined ? input.request : { ...input.request, model: pinned(input, target.model) };
  let wire = input.adapter.writeRequest(input.wire, request);
  if (input.shape) wire = input.shape(wire);
  return Buffer.from(stringifyLike(wire, input.body.toString('utf8')));
}

function pinned(input: ForwardInput, model: string): string {
  return input.call.policy.models[model]?.pin ?? model;
}

/** Sends the call, retrying and falling back as the policy says; the last failure when all fail. */
export async function forward(input: ForwardInput): Promise<Forwarded> {
  const { call, retries, signal } = input;
  let last: { up?: UpstreamResponse; err?: unknown } = {};
  let count = 0;
  const tried = new Set<string>();
  for (const [t, target] of input.targets.entries()) {
    const upstream = target.client.config.name;
    const budget = input.budgets.of(upstream, retries.budget);
    // A fallback to an upstream this call already tried (another model there) loads the same
    // struggling upstream, so it is a retry to pay for; an upstream new to the call counts a call.
    if (tried.has(upstream)) {
      if (!budget.tryRetry() && call.policy.mode !== 'research') {
        input.metrics.retryBudgetExhausted.inc();
        call.decisions.push({ stage: STAGE, decision: 'budget-exhausted', detail: { upstream, fallback: target.model } });
        continue;
      }
    } else if (!input.again) {
      budget.recordCall();
    }
    tried.add(upstream);
    const body = bodyFor(input, target);
    let wait = 0;
    if (t > 0) {
      count++;
      input.metrics.retries.inc({ reason: 'fallback' });
      call.decisions.push({ stage: STAGE, decision: 'fallback', detail: { upstream: target.client.config.name, model: target.model } });
      call.actions.push(`fallback:${target.client.config.name}${target.model ? `/${target.model}` : ''}`);
    }
    for (let attempt = 1; attempt <= retries.maxAttempts; attempt++) {
      if (attempt > 1) {
        if (!budget.tryRetry()) {
          input.metrics.retryBudgetExhausted.inc();
          // Research mode relaxes retries: the spent budget is recorded, and the retry made anyway.
          const relaxed = call.policy.mode === 'research';
          call.decisions.push({ stage: STAGE, decision: relaxed ? 'budget-exhausted-retried' : 'budget-exhausted', detail: { upstream: target.client.config.name } });
          if (!relaxed) break;
        }
        count++;
        await sleep(wait, signal);
      }
      const outcome = await attemptOnce(input, target, body);
      if ('up' in outcome && !outcome.reason) {
        if (count > 0) call.actions.push(`retried:${count}`);
        call.modelSent = target.model === undefined ? call.modelSent : pinned(input, target.model);
        return { up: outcome.up, target, retries: count };
      }
      last = outcome;
      const after = 'up' in outcome ? retryAfterMs(outcome.up.headers) : undefined;
      const status = 'up' in outcome ? outcome.up.status : undefined;
      // A Retry-After past the cap is not waited out here: a fallback may answer now.
      const tooLong = after !== undefined && after > retries.backoff.maxRetryAfterMs;
      wait = Math.max(after ?? 0, backoffMs(attempt, retries.backoff.baseMs, retries.backoff.capMs));
      // An answer in a coding Warden cannot read comes the same way again: the next target may answer plainly.
      const hopeless = outcome.reason === 'encoding';
      const lastTry = attempt === retries.maxAttempts || tooLong || hopeless;
      call.decisions.push({ stage: STAGE, decision: lastTry ? 'gave-up' : 'retry', detail: { upstream: target.client.config.name, attempt, reason: outcome.reason, status, retryAfterMs: after, waitMs: lastTry ? undefined : wait } });
      if (!lastTry) input.metrics.retries.inc({ reason: outcome.reason });
      if (tooLong || hopeless) break;
    }
  }
  if (count > 0) call.actions.push(`retried:${count}`);
  if (last.up) return { up: last.up, target: input.targets[0], retries: count };
  throw last.err;
}

type AttemptOutcome = { up: UpstreamResponse; reason?: Reason } | { err: unknown; reason: Reason };

/** POSTs a model call's body to an upstream with the agent's headers as that upstream gets them (credentials swapped). */
export async function sendTo(client: UpstreamClient, agentHeaders: IncomingHttpHeaders, rest: string, body: Buffer, signal: AbortSignal): Promise<UpstreamResponse> {
  const headers = upstreamRequestHeaders(agentHeaders, { strip: client.stripHeaders, set: client.setHeaders, identity: true });
  headers['content-length'] = String(body.length);
  const up = await client.send({ method: 'POST', path: client.path(rest), headers, body, signal });
  // An answer is for the stages to read; an error passes on as it came (the agent's SDK decodes it).
  return isOk(up.status) ? decodedResponse(client.config.name, up) : up;
}

async function attemptOnce(input: ForwardInput, target: Target, body: Buffer): Promise<AttemptOutcome> {
  const { client } = target;
  try {
    const up = await sendTo(client, input.headers, input.rest, body, input.signal);
    if (!RETRYABLE.has(up.status) && !client.provider.retryableStatuses?.includes(up.status)) return { up };
    // Kept whole so that, when this turns out to be the last attempt, the agent gets exactly this answer.
    let answer: Buffer;
    try {
      // An error body past MAX_ERROR_BODY is cut there: its head is all an agent reads of it.
      answer = (await readCapped(up.body, MAX_ERROR_BODY)).bytes;
    } catch (err) {
      // An error answer whose body broke off is a network failure like any other.
      if (input.signal.aborted) throw err;
      const mapped = toWardenError(client.config, err, input.signal);
      return { err: mapped instanceof WardenError ? mapped : new UpstreamUnreachableError(client.config.name, { cause: err }), reason: 'network' };
    }
    return { up: { ...up, body: Readable.from([answer]) }, reason: up.status === 429 ? 'rate_limited' : 'server_error' };
  } catch (err) {
    // The agent left, or the call's total time ran out: no retry can help.
    if (input.signal.aborted || !(err instanceof WardenError)) throw err;
    return { err, reason: err.code === 'WARDEN_ERR_UPSTREAM_TIMEOUT' ? 'timeout' : err instanceof UpstreamEncodingError ? 'encoding' : 'network' };
  }
}
