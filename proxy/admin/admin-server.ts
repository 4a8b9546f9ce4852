// The admin listener: liveness, readiness, Prometheus metrics, semantic status, usage, policy reload,
// context memory, the escalation queue, behavioural pacts (drift actions).
// It never carries agent traffic, so an operator can scrape and probe it while the traffic port is busy.
// The agent can still reach it (it shares the task's localhost), so escalation decisions need the
// admin token (admin-auth.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SidecarContext } from '../context.ts';
import type { ReloadResult } from '../policy-reloader.ts';
import { admitReviewer, createAdminAuth, type AdminAuth } from './admin-auth.ts';
import { adminErrorBody, escalationRoute } from './escalation-routes.ts';
import { WardenError } from '../errors.ts';
import { ReshipError } from '../audit/reship.ts';
import { adminPageView, sendAdminPage } from './admin-page.ts';
import { evalRoute, evalsHealth } from './eval-routes.ts';
import { trustScore } from '../evals/trust-score.ts';

export interface AdminDeps {
  ctx: SidecarContext;
  /** True once both listeners are up. */
  listening(): boolean;
  /** The last reload's result, if any (a failure keeps the last good policy and turns /status yellow). */
  lastReload(): ReloadResult | undefined;
  reload(): Promise<ReloadResult>;
  readonly startedAt: number;
  readonly version: string;
  /** The reviewer's credential for escalation decisions; by default the admin token from the environment at start. */
  adminAuth?: AdminAuth;
}

type State = 'green' | 'yellow' | 'red';

/** The semantic health of the sidecar, with a reason for anything short of green. */
export function status(deps: AdminDeps): Record<string, unknown> {
  const { ctx } = deps;
  const rt = ctx.runtime;
  const reasons: string[] = [...rt.warnings, ...(deps.adminAuth?.warnings ?? [])];
  const reload = deps.lastReload();
  if (reload && !reload.ok) reasons.push(`policy reload failed at ${reload.at.toISOString()}; still serving the last good policy: ${reload.problems.join('; ')}`);
  const audit = ctx.audit?.stats();
  if (audit?.deadLettered) reasons.push(`${audit.deadLettered} audit batch(es) rejected by the collector are in the dead_letters table (once the collector is mended, \`warden audit reship\` sends them again)`);
  if (audit?.shipFailure) reasons.push(`audit shipping is failing (${audit.shipFailure}); ${audit.unshipped ?? 'some'} records wait locally`);
  if (audit?.space && audit.space.level !== 'ok') reasons.push(audit.space.reason!);
  const evals = evalsHealth(ctx.services.pacts);
  reasons.push(...evals.reasons);
  let state: State = reasons.length ? 'yellow' : 'green';
  if (evals.red) state = 'red';
  // No room in the audit log: the sidecar is up, but refusing (or not recording) new calls.
  if (audit?.space?.level === 'full') state = 'red';
  if (ctx.draining) {
    state = 'red';
    reasons.push('draining for shutdown');
  }
  return {
    state,
    reasons,
    version: deps.version,
    uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    inFlight: ctx.inFlight,
    policy: {
      file: rt.policy.source.file,
      sha256: rt.policy.source.sha256,
      agent: rt.policy.agent.id,
      agentVersion: rt.policy.agent.version,
      mode: rt.policy.mode,
      loadedAt: rt.loadedAt.toISOString(),
    },
    audit: ctx.audit && { path: ctx.audit.path, logId: ctx.audit.logId, ...audit },
    lastReload: reload && { ok: reload.ok, at: reload.at.toISOString(), problems: reload.ok ? undefined : reload.problems },
  };
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function route(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const key = `${req.method} ${url.pathname}`;
  switch (key) {
    case 'GET /healthz':
      return json(res, 200, { ok: true });
    case 'GET /readyz': {
      const ready = deps.listening() && !deps.ctx.draining;
      return json(res, ready ? 200 : 503, { ready, policy: deps.ctx.runtime.policy.source.sha256 });
    }
    case 'GET /metrics': {
      const text = await deps.ctx.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.ctx.metrics.registry.contentType });
      res.end(text);
      return;
    }
    case 'GET /status': {
      const pacts = deps.ctx.services.pacts;
      const body = status(deps);
      return json(res, 200, { ...body, trust: await trustScore(deps.ctx.metrics, pacts), evals: pacts?.pact && { last: pacts.last, pins: pacts.refreshPins() } });
    }
    // Reads, open like /status and GET /escalations; the page's buttons call the token-guarded POST routes.
    case 'GET /':
      return sendAdminPage(res, adminPageView(deps.ctx, status(deps), !!deps.adminAuth?.configured), url.searchParams.get('part') === 'sections');
    case 'GET /calls/recent': {
      const limit = Math.max(1, Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, deps.ctx.recentCalls.capacity));
      return json(res, 200, { calls: deps.ctx.recentCalls.list(limit) });
    }
    case 'GET /usage':
      return json(res, 200, deps.ctx.ledger.snapshot(url.searchParams.get('task') ?? undefined));
    case 'POST /policy/reload': {
      const result = await deps.reload();
      return json(res, result.ok ? 200 : 422, { ok: result.ok, problems: result.ok ? undefined : result.problems });
    }
    case 'POST /audit/reship':
      return reshipRoute(deps, req, res);
    default:
      if (url.pathname.startsWith('/memory/')) return memoryRoute(deps, req, url, res);
      if (url.pathname === '/evals' || url.pathname.startsWith('/evals/')) {
        return evalRoute(deps.ctx.services.pacts, deps.ctx.metrics, req, url, res, json, (r, s) => admitReviewer(deps.adminAuth!, r.headers, s, deps.ctx.metrics));
      }
      if (url.pathname === '/escalations' || url.pathname.startsWith('/escalations/')) {
        return escalationRoute(deps.ctx.services.escalations, req, url, res, json, (r, s) => admitReviewer(deps.adminAuth!, r.headers, s, deps.ctx.metrics));
      }
      return json(res, 404, { error: { message: `no admin route ${key}`, type: 'warden_not_found', code: 'WARDEN_ERR_ROUTE_NOT_FOUND' } });
  }
}

/** Whether the request carries the admin token; if not, the refusal (401, or 403 with none configured) has been sent. */
function admitted(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): boolean {
  try {
    admitReviewer(deps.adminAuth!, req.headers, res, deps.ctx.metrics);
    return true;
  } catch (err) {
    if (!(err instanceof WardenError)) throw err;
    json(res, err.status, adminErrorBody(err));
    return false;
  }
}

/**
 * A session's context memory: GET lists it (or searches it with ?q=), DELETE erases it (a person's
 * right to erasure: gone from the store and from recall at once; admin token required).
 */
function memoryRoute(deps: AdminDeps, req: IncomingMessage, url: URL, res: ServerResponse): void {
  const method = req.method ?? 'GET';
  // Erasure destroys data, so it takes the admin token like any other decision; the agent shares
  // this loopback in an ECS task and must not be able to erase what it was told. Reads stay open.
  if (method === 'DELETE' && !admitted(deps, req, res)) return;
  let session: string;
  try {
    session = decodeURIComponent(url.pathname.slice('/memory/'.length));
  } catch {
    return json(res, 400, { error: { message: 'the session in /memory/{session} is not valid percent-encoding', type: 'warden_invalid_request', code: 'WARDEN_ERR_INVALID_REQUEST' } });
  }
  const agent = deps.ctx.runtime.policy.agent.id;
  const memory = deps.ctx.services.memory;
  if (!session) return json(res, 400, { error: { message: 'name a session: /memory/{session}', type: 'warden_invalid_request', code: 'WARDEN_ERR_INVALID_REQUEST' } });
  if (method === 'DELETE') return json(res, 200, { session, erased: memory.eraseDurably(agent, session) });
  if (method !== 'GET') return json(res, 405, { error: { message: `${method} /memory/{session}: use GET or DELETE`, type: 'warden_invalid_request', code: 'WARDEN_ERR_METHOD' } });
  const q = url.searchParams.get('q');
  const limit = Math.max(1, Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 1000));
  return json(res, 200, { session, memories: q ? memory.recall(agent, session, q, limit) : memory.list(agent, session, limit, Number(url.searchParams.get('offset') ?? 0) || 0) });
}

/**
 * `warden audit reship` without a shell in the task: the batches the collector refused, sent again
 * by the writer thread. It writes to the log (dead_letters), so it takes the admin token.
 */
async function reshipRoute(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!admitted(deps, req, res)) return;
  req.resume();
  const audit = deps.ctx.audit;
  if (!audit) return json(res, 409, { error: { message: 'this sidecar keeps no audit log (audit.enabled: false)', type: 'warden_invalid_request', code: 'WARDEN_ERR_NO_AUDIT_LOG' } });
  let outcomes;
  try {
    outcomes = await audit.reship();
  } catch (err) {
    if (!(err instanceof ReshipError)) throw err;
    // Nothing to send to is the caller's to fix (409); a writer shutting down or failing is the sidecar's (503).
    if (err.reason === 'no_collector') return json(res, 409, { error: { message: err.message, type: 'warden_invalid_request', code: 'WARDEN_ERR_NO_COLLECTOR' } });
    return json(res, 503, { error: { message: `the reship did not finish (${err.message}); what went is out of dead_letters`, type: 'warden_unavailable', code: 'WARDEN_ERR_RESHIP_UNFINISHED' } });
  }
  return json(res, 200, { delivered: outcomes.every((o) => o.result === 'delivered'), outcomes });
}

/** Creates (but does not start) the admin server. */
export function createAdminServer(deps: AdminDeps): Server {
  const adminAuth = deps.adminAuth ?? createAdminAuth(deps.ctx.services.custody);
  deps = { ...deps, adminAuth };
  if (!adminAuth.configured) {
    deps.ctx.log.info({ problem: adminAuth.problem }, 'escalation decisions over the admin API are refused: set WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE to allow them');
  }
  return createServer((req, res) => {
    route(deps, req, res).catch((err) => {
      deps.ctx.log.error({ err }, 'admin route failed');
      if (!res.headersSent) json(res, 500, { error: { message: 'internal error', type: 'warden_internal_error', code: 'WARDEN_ERR_INTERNAL' } });
      else res.destroy();
    });
  });
}
