// HTTP tools at /tools/{tool}/*: the agent POSTs the model's arguments, Warden checks them (scope,
// schema), calls the tool's endpoint (timeouts, retries for idempotent tools), checks the result
// (schema, fabrication signals, verification by a second call), records it in the tool ledger, and
// answers with the tool's own response or, when the tool cannot give a trustworthy one, with the
// degradation protocol's structured result. Never a hang, never an HTML error page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Agent, errors as undiciErrors } from 'undici';
import type { Policy, ToolConfig } from '../../policies/types.ts';
import { captureBytes } from '../audit/call-record.ts';
import type { EscalationQueue } from '../escalation/queue.ts';
import { admitToolCall } from '../escalation/tool-hold.ts';
import { InvalidRequestError, UnknownToolError } from '../errors.ts';
import { parseJson, readBody } from '../http/body.ts';
import type { CallTiming } from '../http/call-timing.ts';
import { headerValue } from '../http/headers.ts';
import { readCapped } from '../http/read-capped.ts';
import { wardenHeaders } from '../http/respond.ts';
import type { Metrics } from '../metrics.ts';
import type { CallContext } from '../stage.ts';
import type { ToolCatalog } from './catalog.ts';
import { degradation, noteFor, type Degradation, type DegradationType } from './degrade.ts';
import { contentHash, type ToolLedger } from './ledger.ts';
import { scoreToolResult, type SignalReport } from './signals.ts';
import { judgeAll, type Violation } from './violations.ts';
import type { Limiter } from '../limits/limiter.ts';
import { limitIrreversible, rateLimitedResult } from '../limits/tool-limits.ts';

// A tool's answer is read whole to check it; past this it counts as a failure.
const MAX_RESULT_BYTES = 16 * 1024 * 1024;
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 2_000;
const STAGE = 'http-tool';

export interface HttpToolInput {
  req: IncomingMessage;
  res: ServerResponse;
  call: CallContext;
  policy: Policy;
  catalog: ToolCatalog;
  ledger: ToolLedger;
  dispatcher: Agent;
  metrics: Metrics;
  /** Holds calls that need a person's approval; without it they are refused. */
  escalations?: EscalationQueue;
  /** Counts irreversible calls against their hourly limit; without it they are not limited. */
  limits?: Limiter;
  tool: string;
  /** Path after /tools/{tool}, query included (only "/" is accepted). */
  rest: string;
  timing: CallTiming;
  maxBodyBytes: number;
  signal: AbortSignal;
  release(): Promise<void>;
}

/** What the audit record keeps of a tool call (under `tool`). */
export interface ToolCallRecord {
  name: string;
  call_id?: string;
  target: 'http' | 'mcp';
  outcome: string;
  attempts?: number;
  upstream_status?: number;
  signals?: SignalReport;
  verification?: { rerun: boolean; matched?: boolean };
  fallback?: string;
  /** The escalation that held the call for a person. */
  escalation?: string;
}

/** One try of the tool: its answer, or why there was none. */
type Attempt =
  | { ok: true; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; value: unknown }
  | { ok: false; reason: 'timeout' | 'network' | 'status' | 'too_large'; status?: number; detail: string; body?: Buffer; headers?: Record<string, string | string[] | undefined> };

/** Answers one /tools request. */
export async function handleHttpTool(input: HttpToolInput): Promise<void> {
  const { req, call, policy, catalog } = input;
  const entry = catalog.get(input.tool);
  if (!entry?.config.http) throw new UnknownToolError(input.tool, entry ? 'it has no http target' : undefined);
  // Everything the tool receives is checked: a sub-path or query string would reach it unchecked.
  if (input.rest !== '/') throw new InvalidRequestError(`/tools/${input.tool} takes no sub-path or query string: the tool's arguments are the JSON body`);
  const method = req.method ?? 'POST';
  const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req, input.maxBodyBytes);
  const args = body.length === 0 ? {} : parseJson(body);
  call.bodies.request = captureBytes(policy, body);
  const callId = headerValue(req.headers, 'x-warden-tool-call-id');
  const record: ToolCallRecord = { name: input.tool, call_id: callId, target: 'http', outcome: 'ok' };
  call.toolCall = record;

  const result = await runTool(input, entry.config, args, record, 0);
  if ('degraded' in result) return deliverDegradation(input, entry.config, args, record, result.degraded, result.failure);
  // The tool's own answer, byte for byte.
  input.ledger.recordResult(policy.agent.id, call.session, input.tool, args, result.value, true, callId);
  input.metrics.toolCalls.inc({ tool: input.tool, outcome: record.outcome });
  call.bodies.response = captureBytes(policy, result.body);
  input.timing.status = result.status;
  await input.release();
  const headers = { ...passHeaders(result.headers), ...wardenHeaders(call.id, call.actions), 'x-warden-tool-outcome': record.outcome, 'content-length': result.body.length };
  input.res.writeHead(result.status, headers);
  input.timing.firstByte = performance.now();
  input.res.end(result.body);
}

type ToolRun = { value: unknown; body: Buffer; status: number; headers: Record<string, string | string[] | undefined> } | { degraded: Degradation; failure?: Attempt };

/** Checks, calls and judges one tool (and its fallback, once). */
async function runTool(input: HttpToolInput, tool: ToolConfig, args: unknown, record: ToolCallRecord, depth: number): Promise<ToolRun> {
  const { call, catalog } = input;
  const admitted = await admit(input, tool, args, record);
  if ('degraded' in admitted) return admitted;
  args = admitted.args;
  const attempt = await callWithRetries(input, tool, args, record);
  if (!attempt.ok) {
    record.outcome = attempt.reason === 'timeout' ? 'timeout' : 'failed';
    const fallback = tool.onFailure.action === 'fallback' && depth === 0 ? catalog.get(tool.onFailure.fallback!)?.config : undefined;
    if (fallback?.http) {
      record.fallback = fallback.name;
      call.decisions.push({ stage: STAGE, decision: 'fallback', detail: { from: tool.name, to: fallback.name, reason: attempt.detail } });
      const second = await runTool(input, fallback, args, record, depth + 1);
      if (!('degraded' in second)) record.outcome = 'fallback';
      return second;
    }
    const retryable = attempt.reason !== 'status' || (attempt.status ?? 0) >= 500 || attempt.status === 429;
    return { degraded: degradation(tool, 'tool_unavailable', attempt.detail, retryable), failure: attempt };
  }
  const invalid = judgeAll(call, STAGE, catalog.checkResult(tool.name, attempt.value, record.call_id));
  if (invalid.length > 0) {
    record.outcome = 'invalid_result';
    return { degraded: degradation(tool, 'tool_invalid_result', invalid.map((d) => d.message).join('; '), false), failure: attempt };
  }
  const suspicious = await verify(input, tool, args, attempt, record);
  if (suspicious) return { degraded: degradation(tool, 'tool_invalid_result', suspicious, tool.idempotent), failure: attempt };
  return attempt;
}

/** Scope and argument checks, and a person's approval where the policy asks for one (see admitToolCall). */
async function admit(input: HttpToolInput, tool: ToolConfig, args: unknown, record: ToolCallRecord): Promise<{ args: unknown } | { degraded: Degradation }> {
  const admitted = await admitToolCall({
    call: input.call, stage: STAGE, queue: input.escalations, config: tool, args, callId: record.call_id, signal: input.signal,
    check: (a) => input.catalog.checkCall(tool.name, a, record.call_id, undefined, input.call.agent.scopes).violations,
  });
  record.escalation = admitted.escalation;
  if ('refused' in admitted) record.outcome = admitted.outcome;
  if ('refused' in admitted) return { degraded: admitted.refused };
  // Counted last, once nothing else refuses the call: only a call that is about to run spends the allowance.
  const limited = limitIrreversible(input.call, input.limits, [tool]);
  if (limited) record.outcome = 'rate_limited';
  return limited ? { degraded: rateLimitedResult(tool, limited) } : admitted;
}

/**
 * Fabrication signals on a result: a score over the tool's threshold flags it. An idempotent tool is
 * called again and the answers compared (a real system says the same thing twice); otherwise, or
 * when they differ, it is a suspicious_tool_result, which does what its rule says (by default: log).
 * Returns why the result is refused, when its rule blocks it.
 */
async function verify(input: HttpToolInput, tool: ToolConfig, args: unknown, first: Attempt & { ok: true }, record: ToolCallRecord): Promise<string | undefined> {
  const report = scoreToolResult(first.value, args);
  if (report.signals.length > 0) record.signals = report;
  if (report.score < tool.suspicionThreshold) return undefined;
  for (const s of report.signals) input.metrics.hallucinationFlags.inc({ tool: tool.name, signal: s.name });
  let matched: boolean | undefined;
  if (tool.idempotent) {
    const again = await callOnce(input, tool, args);
    matched = again.ok && contentHash(again.value) === contentHash(first.value);
  }
  record.verification = { rerun: tool.idempotent, matched };
  if (matched) return undefined;
  const why = `${tool.name}'s result looks invented (${report.signals.map((s) => s.name).join(', ')}; score ${report.score.toFixed(2)})${tool.idempotent ? ' and a second call returned something else' : ' and the tool cannot be called again to check'}`;
  const [d] = judgeAll(input.call, STAGE, [{ kind: 'suspicious_tool_result', tool: tool.name, callId: record.call_id, message: why }]);
  if (!d) return undefined;
  record.outcome = 'invalid_result';
  return why;
}

async function callWithRetries(input: HttpToolInput, tool: ToolConfig, args: unknown, record: ToolCallRecord): Promise<Attempt> {
  // Only an idempotent tool is called twice: a refund must never go out again because a reply was slow.
  const attempts = tool.idempotent ? 1 + tool.retries : 1;
  let last: Attempt | undefined;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** i), input.signal);
    if (input.signal.aborted) break;
    last = await callOnce(input, tool, args);
    record.attempts = i + 1;
    record.upstream_status = last.status;
    const retryable = !last.ok && (last.reason === 'timeout' || last.reason === 'network' || (last.status ?? 0) >= 500 || last.status === 429);
    if (!retryable) break;
  }
  return last ?? { ok: false, reason: 'network', detail: 'the call was cancelled' };
}

/** One HTTP call to the tool, within its timeout. */
async function callOnce(input: HttpToolInput, tool: ToolConfig, args: unknown): Promise<Attempt> {
  const http = tool.http!;
  const url = new URL(http.url);
  const hasBody = http.method !== 'GET' && http.method !== 'DELETE';
  // Without a body, the checked arguments travel as the query string (objects as JSON).
  if (!hasBody && args && typeof args === 'object') {
    for (const [k, v] of Object.entries(args)) url.searchParams.append(k, typeof v === 'string' ? v : JSON.stringify(v));
  }
  const path = url.pathname + url.search;
  const timeout = AbortSignal.timeout(http.timeoutMs);
  const signal = AbortSignal.any([timeout, input.signal]);
  input.timing.upstreamStart ??= performance.now();
  try {
    const res = await input.dispatcher.request({
      origin: url.origin, path, method: http.method, signal,
      headers: { ...http.headers, 'content-type': 'application/json', accept: 'application/json', 'x-warden-agent': input.policy.agent.id },
      body: hasBody ? JSON.stringify(args ?? {}) : undefined,
    });
    const { bytes: body, over } = await readCapped(res.body, MAX_RESULT_BYTES);
    if (over) return { ok: false, reason: 'too_large', detail: `the tool answered with more than ${MAX_RESULT_BYTES} bytes` };
    input.timing.upstreamEnd = performance.now();
    const text = body.toString('utf8');
    if (res.statusCode < 200 || res.statusCode >= 300) {
      return { ok: false, reason: 'status', status: res.statusCode, detail: `the tool answered HTTP ${res.statusCode}${summary(res.headers['content-type'], text)}`, body, headers: res.headers };
    }
    let value: unknown = text;
    if (String(res.headers['content-type'] ?? '').includes('json') || /^\s*[[{]/.test(text)) {
      try {
        value = JSON.parse(text);
      } catch {
        return { ok: false, reason: 'status', status: res.statusCode, detail: 'the tool answered with malformed JSON', body, headers: res.headers };
      }
    }
    return { ok: true, status: res.statusCode, headers: res.headers, body, value };
  } catch (err) {
    input.timing.upstreamEnd = performance.now();
    if (timeout.aborted || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
      return { ok: false, reason: 'timeout', detail: `the tool did not answer within ${http.timeoutMs} ms` };
    }
    return { ok: false, reason: 'network', detail: `the tool is unreachable (${(err as { code?: string }).code ?? (err as Error).message})` };
  }
}

/** What an error answer says, briefly; an HTML page is named, never relayed. */
function summary(contentType: string | string[] | undefined, text: string): string {
  if (String(contentType ?? '').includes('html') || /^\s*</.test(text)) return ' (an HTML error page)';
  const brief = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return brief ? `: ${brief}` : '';
}

/** Answers with the degradation result (or, with onFailure: error, the failure itself). */
async function deliverDegradation(input: HttpToolInput, tool: ToolConfig, args: unknown, record: ToolCallRecord, d: Degradation, failure?: Attempt): Promise<void> {
  const { call, policy, res } = input;
  if (record.outcome === 'ok') record.outcome = 'degraded';
  input.metrics.toolCalls.inc({ tool: tool.name, outcome: record.outcome });
  if (tool.onFailure.noteToModel && call.session) input.ledger.addNote(policy.agent.id, call.session, noteFor(d));
  const asError = tool.onFailure.action === 'error';
  let status = 200;
  let body: Buffer;
  let contentType = 'application/json';
  if (asError && failure && !failure.ok && failure.body && !/html/.test(String(failure.headers?.['content-type'] ?? ''))) {
    // The tool's own error answer, as onFailure: error asks (HTML pages are still never relayed).
    status = failure.status ?? 502;
    body = failure.body;
    contentType = String(failure.headers?.['content-type'] ?? 'application/json');
  } else {
    if (asError) status = d.error.code === 'WARDEN_ERR_RATE_LIMITED' ? 429 : STATUS_FOR[d.error.type](failure);
    body = Buffer.from(JSON.stringify(d));
  }
  // The degradation is what the agent hands its model: the ledger holds it as the tool's answer.
  input.ledger.recordResult(policy.agent.id, call.session, tool.name, args, JSON.parse(body.toString('utf8') || 'null'), false, record.call_id);
  call.bodies.response = captureBytes(policy, body);
  input.timing.status = status;
  await input.release();
  const retryAfter = status === 429 && d.error.retryAfterSeconds !== undefined ? { 'retry-after': String(d.error.retryAfterSeconds) } : {};
  res.writeHead(status, { ...wardenHeaders(call.id, call.actions), ...retryAfter, 'x-warden-tool-outcome': record.outcome, 'content-type': contentType, 'content-length': body.length });
  input.timing.firstByte = performance.now();
  res.end(body);
}

const STATUS_FOR: Record<DegradationType, (failure?: Attempt) => number> = {
  tool_blocked: () => 403,
  tool_invalid_result: () => 502,
  tool_unavailable: (f) => (f && !f.ok && f.reason === 'timeout' ? 504 : 502),
};

// Response headers that describe the tool's body; hop-by-hop and framing headers are Warden's own.
const PASSED = ['content-type', 'content-language', 'etag', 'last-modified', 'cache-control'];

function passHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of PASSED) if (h[k] !== undefined) out[k] = h[k]!;
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
