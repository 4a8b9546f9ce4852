import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { captureBytes } from '../audit/call-record.ts';
import { InvalidRequestError, UpstreamUnreachableError, WardenError } from '../errors.ts';
import type { EscalationQueue } from '../escalation/queue.ts';
import type { Metrics } from '../metrics.ts';
import { runRequest, runResponse, type Pipeline } from '../pipeline.ts';
import type { EndpointAdapter, Json } from '../providers/types.ts';
import { stringifyLike } from '../providers/exact-numbers.ts';
import { obj } from '../providers/wire.ts';
import { replay } from '../retry/buffered.ts';
import { withSelfReport } from '../retry/confidence.ts';
import type { RetryBudgets } from '../retry/budgets.ts';
import { deliberate } from '../retry/deliberate.ts';
import { bodyFor, forward, sendTo, targetsOf, type ForwardInput, type Target } from '../retry/forward.ts';
import { deliberationFor } from '../retry/plan.ts';
import type { CallContext } from '../stage.ts';
import { parseJsonObject, readBody } from './body.ts';
import type { CallTiming } from './call-timing.ts';
import { clientResponseHeaders, headerValue } from './headers.ts';
import { readCapped } from './read-capped.ts';
import { sendError, wardenHeaders } from './respond.ts';
import { relay } from './relay.ts';
import { streamBack } from './stream-back.ts';
import { isEventStream, isOk, toWardenError, type UpstreamClient, type UpstreamResponse } from './upstream-client.ts';

// A whole (non-streamed) model response is read into memory to run stages on it; past this it is an error.
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface ModelCallInput {
  req: IncomingMessage;
  res: ServerResponse;
  call: CallContext;
  client: UpstreamClient;
  adapter: EndpointAdapter;
  pipeline: Pipeline;
  rest: string;
  timing: CallTiming;
  maxBodyBytes: number;
  signal: AbortSignal;
  /** Every upstream of the runtime, for fallbacks. */
  upstreams: ReadonlyMap<string, UpstreamClient>;
  budgets: RetryBudgets;
  metrics: Metrics;
  escalations: EscalationQueue;
  /** Stops the call's total timeout (while a person reviews it, the upstream is no longer involved). */
  suspendTotal(): void;
  /** Commits the call's audit record; awaited before the last bytes go out (rejects under strict durability when it fails). */
  release(): Promise<void>;
}

/** Handles one model call; throws WardenErrors for the caller to render. */
export async function handleModelCall(input: ModelCallInput): Promise<void> {
  const { req, res, call, client, adapter, pipeline, timing } = input;
  const body = await readBody(req, input.maxBodyBytes);
  // No provider's SDK compresses a request, and the stages must read it: said plainly rather than as bad UTF-8.
  const coding = headerValue(req.headers, 'content-encoding')?.trim().toLowerCase();
  if (coding && coding !== 'identity') throw new InvalidRequestError(`request body is content-coded (${coding}): send model calls as plain JSON`);
  const wire = parseJsonObject(body);
  call.bodies.request = captureBytes(call.policy, body);
  const outcome = await runRequest(pipeline, call, adapter.parseRequest(wire));
  if ('reply' in outcome) {
    await replyWith(input, outcome.reply);
    return;
  }
  const request = outcome.value;
  const retries = call.policy.retries;
  const fwd: ForwardInput = {
    call, adapter, wire, request, headers: req.headers, rest: input.rest, signal: input.signal, retries,
    budgets: input.budgets, metrics: input.metrics, targets: targetsOf(client, retries, input.upstreams),
    // Fidelity: with no stage changing the call, the agent's exact bytes go upstream.
    body: outcome.changed ? Buffer.from(stringifyLike(adapter.writeRequest(wire, request), body.toString('utf8'))) : body,
  };
  timing.upstreamStart = performance.now();
  const plan = deliberationFor(call, request, wire, adapter);
  let up: UpstreamResponse;
  let target: Target;
  if (plan) {
    // Deliberation reads whole answers before choosing one; the chosen one is replayed below.
    const asked = plan.selfReport ? withSelfReport(request) : request;
    const chosen = await deliberate({
      fwd: {
        ...fwd, request: asked, body: asked === request ? fwd.body : Buffer.from(stringifyLike(adapter.writeRequest(wire, asked), body.toString('utf8'))),
        shape: plan.logprobs?.strip ? plan.logprobs.support.ask : undefined,
      },
      plan, pipeline, metrics: input.metrics, escalations: input.escalations, beforeHumanWait: input.suspendTotal,
    });
    ({ target } = chosen);
    up = replay(chosen);
  } else {
    ({ up, target } = await forward(fwd));
  }
  timing.status = up.status;
  const ok = isOk(up.status);
  // Every success goes through the stages, whatever it claims to be: an event stream the agent did not
  // ask for, or a body under an unexpected content type, must not carry a tool call or a secret past
  // them (a body that is not JSON is passed on as it came, and the record says so).
  if (ok && isEventStream(up.headers)) {
    await streamBack(streamInput(input, fwd, target), up);
  } else if (ok) {
    await wholeBack(input, up);
  } else {
    // Errors pass through untouched: the agent's SDK knows the upstream's shapes.
    await relay(res, up, wardenHeaders(call.id, call.actions), timing, input.release, target.client.config.timeouts.idleMs);
  }
}

/** What the stream relay needs to retry or continue a stalled stream on the upstream that served it. */
function streamInput(input: ModelCallInput, fwd: ForwardInput, target: Target) {
  const { call, res, adapter, pipeline, timing, metrics, signal } = input;
  const retries = call.policy.retries;
  let stallRetries = 0;
  /** Whether one more request for this stream is allowed: within maxAttempts, and paid from the budget. */
  const again = (): boolean => {
    if (stallRetries + 1 >= retries.maxAttempts) return false;
    if (!input.budgets.of(target.client.config.name, retries.budget).tryRetry() && call.policy.mode !== 'research') {
      metrics.retryBudgetExhausted.inc();
      return false;
    }
    stallRetries++;
    call.actions.push(`stall-retried:${stallRetries}`);
    return true;
  };
  return {
    res, call, adapter, pipeline, timing, metrics, signal, client: target.client, release: input.release,
    sentBody: (): Json => JSON.parse(bodyFor(fwd, target).toString('utf8')),
    async retry(): Promise<UpstreamResponse | undefined> {
      if (!again()) return undefined;
      const sent = await forward({ ...fwd, targets: [target], again: true }).catch(() => undefined);
      if (sent && isOk(sent.up.status) && isEventStream(sent.up.headers)) return sent.up;
      sent?.up.body.resume();
      return undefined;
    },
    send(body: Json): Promise<UpstreamResponse> {
      if (!again()) return Promise.reject(new Error('no attempt left for a continuation (retries.maxAttempts or the retry budget)'));
      return sendTo(target.client, input.req.headers, input.rest, Buffer.from(stringifyLike(body, bodyFor(fwd, target).toString('utf8'))), signal);
    },
  };
}

/** Answers with a stage's short-circuit, once the call's record is committed. */
async function replyWith(input: ModelCallInput, err: WardenError): Promise<void> {
  input.timing.status = err.status;
  input.timing.error = err.code;
  await input.release();
  sendError(input.res, input.client.provider, err, input.call.id, input.call.actions);
}

async function readAll(up: UpstreamResponse, upstream: string): Promise<Buffer> {
  const { bytes, over } = await readCapped(up.body, MAX_RESPONSE_BYTES);
  if (over) throw new UpstreamUnreachableError(upstream, { cause: new Error(`response over ${MAX_RESPONSE_BYTES} bytes`) });
  return bytes;
}

async function wholeBack(input: ModelCallInput, up: UpstreamResponse): Promise<void> {
  const { res, call, adapter, pipeline, timing, client } = input;
  let raw: Buffer;
  try {
    raw = await readAll(up, client.config.name);
  } catch (err) {
    // A body that stalls or breaks before Warden has sent a byte is the upstream's failure, told as one.
    const mapped = toWardenError(client.config, err, input.signal);
    throw mapped instanceof WardenError ? mapped : err;
  }
  timing.upstreamEnd = performance.now();
  let out: Buffer = raw;
  let wire: Json | undefined;
  try {
    wire = obj(JSON.parse(raw.toString('utf8')));
  } catch {
    call.decisions.push({ stage: 'proxy', decision: 'unparsable-response' });
  }
  if (wire) {
    const outcome = await runResponse(pipeline, call, adapter.parseResponse(wire));
    if ('reply' in outcome) {
      // A stage that refused the response may have left the record its own (redacted) version.
      call.bodies.response ??= captureBytes(call.policy, raw);
      await replyWith(input, outcome.reply);
      return;
    }
    if (outcome.changed) out = Buffer.from(stringifyLike(adapter.writeResponse(wire, outcome.value), raw.toString('utf8')));
  }
  // The record keeps what the agent receives.
  call.bodies.response = captureBytes(call.policy, out);
  await input.release();
  const headers = { ...clientResponseHeaders(up.headers, true), ...wardenHeaders(call.id, call.actions), 'content-length': out.length };
  res.writeHead(up.status, headers);
  timing.firstByte = performance.now();
  res.end(out);
}
