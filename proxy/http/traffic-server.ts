// The traffic listener: routes each request to a model call or a pass-through, renders Warden's errors
// in the provider's shape, and reports every call once (log line, metrics, usage ledger).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Policy } from '../../policies/types.ts';
import type { SidecarContext } from '../context.ts';
import { callEntry, type CallInfo } from '../audit/call-record.ts';
import { summarizeCall } from '../admin/recent-calls.ts';
import { AuditFullError, AuditUnavailableError, ClientStalledError, InternalError, RouteNotFoundError, ShuttingDownError, UnknownUpstreamError, UpstreamTimeoutError, WardenError } from '../errors.ts';
import { handleHttpTool } from '../tools/http-tool.ts';
import { handleMcp } from '../tools/mcp-proxy.ts';
import { findEndpoint, providers } from '../providers/index.ts';
import type { ProviderSpec } from '../providers/types.ts';
import { holdRuntime, upstreamOf } from '../runtime.ts';
import { admitAgent } from '../auth/agent-auth.ts';
import { actingFor } from '../agents/acting.ts';
import { handleAgentCall } from '../agents/agent-call.ts';
import type { CallContext } from '../stage.ts';
import type { CallTiming } from './call-timing.ts';
import { headerValue, upstreamRequestHeaders } from './headers.ts';
import { handleModelCall } from './model-call.ts';
import { relay } from './relay.ts';
import { closeIfUnread, sendError, wardenHeaders } from './respond.ts';
import { matchRoute } from './router.ts';
import { readBody, setBodyDeadline } from './body.ts';
import { answerClientError, DEFAULT_CLIENT_TIMEOUTS, guardedServerOptions, type ClientTimeouts } from './client-guard.ts';

/**
 * Creates (but does not start) the traffic server; `inbound`: the listener other agents' sidecars
 * call, which serves /agents/{this agent}/* to verified callers and nothing else.
 */
export function createTrafficServer(ctx: SidecarContext, timeouts: ClientTimeouts = DEFAULT_CLIENT_TIMEOUTS, inbound = false): Server {
  const server = createServer(guardedServerOptions(timeouts), (req, res) => {
    setBodyDeadline(req, timeouts.bodyMs);
    void handle(ctx, req, res, inbound);
  });
  server.on('clientError', (err, socket) => answerClientError(ctx.log, timeouts, err, socket));
  return server;
}

async function handle(ctx: SidecarContext, req: IncomingMessage, res: ServerResponse, inbound: boolean): Promise<void> {
  const rt = ctx.runtime;
  const letGo = holdRuntime(rt);
  const timing: CallTiming = { start: performance.now(), startedAt: Date.now(), status: 0 };
  const id = randomUUID();
  const url = req.url ?? '/';
  // Until the route is known, errors take the shape of the SDK the path belongs to.
  let provider: ProviderSpec = /^\/anthropic(?:[/?]|$)/.test(url) ? providers.anthropic : /^\/mcp(?:[/?]|$)/.test(url) ? providers.mcp : providers.openai;
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  ctx.inFlight++;
  ctx.metrics.inFlight.inc();
  let call: CallContext | undefined;
  const info: CallInfo = { id, method: req.method ?? 'GET', path: url, route: 'none', timing, policy: rt.policy, identity: ctx.identity };
  let recorded: Promise<void> | undefined;
  // One record per call, built when its response is about to be released (or, for a call cut short,
  // when it ends). Awaiting it is the release: under strict durability it waits for the commit.
  const release = (): Promise<void> => (recorded ??= appendRecord(ctx, call, info));
  let totalTimer: NodeJS.Timeout | undefined;
  // How long an answer may sit unread once the call has ended: the upstream's idleMs, once it is known.
  let idleMs = rt.policy.retries.timeouts.idleMs;
  try {
    if (ctx.draining) throw new ShuttingDownError();
    // Before routing and before anything reads the request: the token leaves the headers here.
    // Inbound callers are other agents' sidecars: each request proves itself with an identity token instead.
    if (!inbound) admitAgent(rt.agentAuth, req.headers, res, ctx.metrics);
    admitToAudit(ctx, rt.policy);
    const match = matchRoute(url);
    if (!match || (inbound && match.kind !== 'agent')) throw new RouteNotFoundError(req.method ?? 'GET', url.split('?')[0]);
    // An agent working for another agent names the delegation it was handed; it narrows its scopes.
    const acting = inbound ? undefined : actingFor(ctx.services.agents, ctx.metrics, rt.policy, req.headers);
    const newCall = (fields: Pick<CallContext, 'route' | 'endpoint' | 'upstream' | 'adapter'>): CallContext => ({
      id, startedAt: timing.start, policy: rt.policy, agent: acting?.agent ?? rt.policy.agent, headers: req.headers, ...fields,
      task: headerValue(req.headers, 'x-warden-task'), session: headerValue(req.headers, 'x-warden-session'),
      actions: [], decisions: acting ? [acting.decision] : [], violations: [], bodies: {}, state: new Map(),
    });
    if (match.kind === 'agent') {
      info.route = 'agents';
      call = newCall({ route: 'agents', endpoint: 'agent' });
      await handleAgentCall({
        ctx, runtime: rt, req, res, call, name: match.upstream, rest: match.rest, timing, signal: controller.signal, release, inbound, delegation: acting?.delegation,
      });
      return;
    }
    if (match.kind === 'tool') {
      info.route = 'tools';
      call = newCall({ route: 'tools', endpoint: 'tool' });
      await handleHttpTool({
        req, res, call, policy: rt.policy, catalog: rt.tools, ledger: ctx.services.toolLedger, dispatcher: ctx.services.toolDispatcher,
        metrics: ctx.metrics, escalations: ctx.services.escalations, limits: ctx.services.limits, tool: match.upstream, rest: match.rest, timing, maxBodyBytes: rt.policy.limits.maxBodyBytes, signal: controller.signal, release,
      });
      return;
    }
    // The route label only once the upstream is known to be declared: names in paths are the caller's.
    const client = upstreamOf(rt, match.upstream);
    info.route = match.upstream;
    idleMs = client.config.timeouts.idleMs;
    provider = client.provider;
    if (client.config.provider === 'mcp') {
      call = newCall({ route: info.route, endpoint: 'mcp', upstream: client.config });
      await handleMcp({
        req, res, call, client, policy: rt.policy, catalog: rt.tools, ledger: ctx.services.toolLedger, metrics: ctx.metrics, escalations: ctx.services.escalations, limits: ctx.services.limits,
        rest: match.rest, timing, maxBodyBytes: rt.policy.limits.maxBodyBytes, signal: controller.signal, release,
      });
      return;
    }
    if (match.kind === 'mcp') throw new UnknownUpstreamError(match.upstream, 'it is not an MCP server (provider: mcp)');
    const { totalMs } = client.config.timeouts;
    totalTimer = setTimeout(() => controller.abort(new UpstreamTimeoutError(client.config.name, 'total', totalMs)), totalMs);
    const endpoint = findEndpoint(client.provider, req.method ?? 'GET', match.rest.split('?')[0]);
    call = newCall({ route: info.route, endpoint: endpoint?.adapter.name ?? 'passthrough', adapter: endpoint?.adapter, upstream: client.config });
    if (endpoint) {
      await handleModelCall({
        req, res, call, client, adapter: endpoint.adapter, pipeline: rt.pipeline, rest: match.rest, timing,
        maxBodyBytes: rt.policy.limits.maxBodyBytes, signal: controller.signal, release,
        upstreams: rt.upstreams, budgets: ctx.services.retryBudgets, metrics: ctx.metrics, escalations: ctx.services.escalations,
        suspendTotal: () => clearTimeout(totalTimer),
      });
    } else {
      await passThrough(req, res, call, client, match.rest, timing, rt.policy.limits.maxBodyBytes, controller.signal, release);
    }
  } catch (err) {
    if (err instanceof ClientStalledError) {
      // The agent stopped reading, and Warden closed the connection: it is recorded as one the agent
      // left, whatever the stream had come to (a partial close, say).
      timing.status = 499;
      timing.streamError = err.code;
    } else if (controller.signal.aborted && !(controller.signal.reason instanceof WardenError)) {
      timing.status = 499; // the agent went away; nothing to answer
    } else {
      let wardenError = err instanceof WardenError ? err : new InternalError({ cause: err });
      if (!(err instanceof WardenError)) ctx.log.error({ err, reqId: id }, 'internal error');
      if (!res.headersSent) {
        timing.status = wardenError.status;
        timing.error = wardenError.code;
        if (!(wardenError instanceof AuditUnavailableError || wardenError instanceof AuditFullError)) {
          try {
            await release();
          } catch (auditErr) {
            wardenError = auditErr instanceof WardenError ? auditErr : new InternalError({ cause: auditErr });
          }
        }
        timing.status = wardenError.status;
        sendError(res, provider, wardenError, id, call?.actions);
      } else {
        timing.streamError ??= wardenError.code;
        res.destroy();
      }
    }
  } finally {
    letGo();
    ctx.inFlight--;
    ctx.metrics.inFlight.dec();
    clearTimeout(totalTimer);
    closeIfUnread(res, idleMs);
    // A call that ended without releasing a response (the agent left) is recorded all the same.
    void release();
    // The call's concurrency slot frees, its token reservation settles against the reported usage, and its cost joins the day's spend.
    ctx.services.limits?.settle(call, timing.status);
    report(ctx, req, id, call, info.route, timing);
    ctx.recentCalls.push(summarizeCall(call, id, info.route, timing, info.policy, performance.now()));
  }
}

/**
 * A call that cannot be recorded is not made: while the audit log has no room, new calls get a 503
 * (nothing goes upstream), unless a monitor or research policy says to fail open.
 */
function admitToAudit(ctx: SidecarContext, policy: Policy): void {
  const audit = ctx.audit;
  if (!audit || !policy.audit.enabled || audit.hasRoom()) return;
  if (policy.audit.onFull === 'failOpen') {
    ctx.metrics.auditFullCalls.inc({ outcome: 'failed_open' });
    return;
  }
  ctx.metrics.auditFullCalls.inc({ outcome: 'refused' });
  throw new AuditFullError(audit.stats().space?.reason ?? 'no room');
}

/** Hands the call's record to the audit log; rejects only under strict durability (the caller answers 503). */
function appendRecord(ctx: SidecarContext, call: CallContext | undefined, info: CallInfo): Promise<void> {
  const audit = ctx.audit;
  if (!audit || !info.policy.audit.enabled) return Promise.resolve();
  // A call refused for want of room made no upstream call, and its record would eat the headroom
  // kept for the calls already in flight.
  if (info.timing.error === 'WARDEN_ERR_AUDIT_FULL') return Promise.resolve();
  let committed: Promise<void>;
  try {
    committed = audit.append(callEntry(call, info, performance.now()));
  } catch (err) {
    // Never a throw out of the release: the call's answer and its bookkeeping still run.
    committed = Promise.reject(err);
  }
  committed.catch((err) => ctx.log.error({ err, reqId: info.id }, 'audit record not committed'));
  return info.policy.audit.durability === 'strict' ? committed : Promise.resolve();
}

async function passThrough(
  req: IncomingMessage, res: ServerResponse, call: CallContext, client: ReturnType<typeof upstreamOf>,
  rest: string, timing: CallTiming, maxBodyBytes: number, signal: AbortSignal, release: () => Promise<void>,
): Promise<void> {
  const method = req.method ?? 'GET';
  const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(req, maxBodyBytes);
  const headers = upstreamRequestHeaders(req.headers, { strip: client.stripHeaders, set: client.setHeaders, identity: false });
  if (body) headers['content-length'] = String(body.length);
  timing.upstreamStart = performance.now();
  const up = await client.send({ method, path: client.path(rest), headers, body, signal });
  timing.status = up.status;
  await relay(res, up, wardenHeaders(call.id, call.actions), timing, release, client.config.timeouts.idleMs);
}

const CONTEXT_ACTIONS = new Set(['context-trimmed', 'tool-results-cleared', 'memory-recalled', 'summarized', 'summary-written']);

/** One log line, the metrics, and the usage ledger, for every call. */
function report(ctx: SidecarContext, req: IncomingMessage, id: string, call: CallContext | undefined, route: string, timing: CallTiming): void {
  const end = performance.now();
  const total = (end - timing.start) / 1000;
  const upstream = timing.upstreamStart !== undefined ? ((timing.upstreamEnd ?? end) - timing.upstreamStart) / 1000 : 0;
  const m = ctx.metrics;
  const model = m.modelLabel(call?.modelAsked);
  m.requests.inc({ route, model, status: String(timing.status) });
  m.requestDuration.observe({ route }, total);
  m.overhead.observe({ route }, Math.max(0, total - upstream));
  if (timing.upstreamStart !== undefined) m.upstreamDuration.observe({ route }, upstream);
  if (timing.firstByte !== undefined) m.timeToFirstByte.observe({ route }, (timing.firstByte - timing.start) / 1000);
  if (call?.usage) {
    const served = m.modelLabel(call.modelServed ?? call.modelSent);
    m.tokens.inc({ model: served, direction: 'input' }, call.usage.inputTokens);
    m.tokens.inc({ model: served, direction: 'output' }, call.usage.outputTokens);
    if (call.costUsd !== undefined) m.cost.inc({ model: served }, call.costUsd);
  }
  if (call) ctx.ledger.record(call.agent.id, call.task, call.usage, call.costUsd);
  for (const v of call?.violations ?? []) m.violations.inc({ kind: v.kind, action: v.action });
  for (const d of call?.decisions ?? []) {
    if (d.stage !== 'sanitize' || d.decision !== 'redacted') continue;
    for (const [detector, n] of Object.entries(d.detail?.counts as Record<string, number>)) m.redactions.inc({ detector }, n);
  }
  if (call?.toolCallsChecked) {
    const out = call.violations.filter((v) => v.kind === 'scope_violation' || v.kind === 'unknown_tool').length;
    m.scopeChecks.inc({ result: 'out_of_scope' }, Math.min(out, call.toolCallsChecked));
    m.scopeChecks.inc({ result: 'in_scope' }, Math.max(0, call.toolCallsChecked - out));
  }
  if (call?.contextTokens !== undefined) m.contextTokens.observe(call.contextTokens);
  for (const a of call?.actions ?? []) {
    const action = a.split(':')[0];
    if (CONTEXT_ACTIONS.has(action)) m.contextActions.inc({ action });
  }
  ctx.log.info({
    reqId: id, agent: call?.agent.id, agentVersion: call?.agent.version, task: call?.task, session: call?.session,
    route, method: req.method, endpoint: call?.endpoint, modelAsked: call?.modelAsked, modelServed: call?.modelServed,
    fingerprint: call?.systemFingerprint, status: timing.status, streamError: timing.streamError,
    latencyMs: round(total * 1000), upstreamMs: round(upstream * 1000),
    tokensIn: call?.usage?.inputTokens, tokensOut: call?.usage?.outputTokens, costUsd: call?.costUsd,
    actions: call?.actions.length ? call.actions : undefined,
  }, 'call');
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
