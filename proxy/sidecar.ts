// Starts and stops one sidecar: traffic and admin listeners over the runtime built from the policy.
import { RetryBudgets } from './retry/budgets.ts';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { Agent } from 'undici';
import { agentOf, startAudit } from './audit/audit-setup.ts';
import { ecsIdentity } from './audit/ecs-identity.ts';
import { loadPolicyFile } from '../policies/load.ts';
import { createAdminServer } from './admin/admin-server.ts';
import type { SidecarContext } from './context.ts';
import { ConfigError } from './errors.ts';
import { KeyCustody } from './auth/key-custody.ts';
import { LOG_REDACT } from './auth/log-redact.ts';
import { createAgentServices } from './agents/services.ts';
import type { ClientTimeouts } from './http/client-guard.ts';
import { storeAdvice } from './store-advice.ts';
import { createTrafficServer } from './http/traffic-server.ts';
import { createMetrics } from './metrics.ts';
import { createPolicyReloader } from './policy-reloader.ts';
import { MemoryStore } from './context/memory.ts';
import { createTokenCounter } from './context/tokens.ts';
import { EscalationQueue } from './escalation/queue.ts';
import { EscalationStore } from './escalation/store.ts';
import { buildRuntime, closeRuntime, type RuntimeServices } from './runtime.ts';
import { ToolLedger } from './tools/ledger.ts';
import { UsageLedger } from './usage-ledger.ts';
import { RecentCalls } from './admin/recent-calls.ts';
import { Limiter } from './limits/limiter.ts';
import { SpendStore } from './limits/spend-store.ts';
import { EvalStore } from '../evals/store.ts';
import { loadPactFor, PactService } from './evals/pact-service.ts';
import { trustScore } from './evals/trust-score.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface SidecarOptions {
  policyFile: string;
  listen: HostPort;
  adminListen: HostPort;
  /** How long in-flight calls may take to finish after SIGTERM (Fargate's stop timeout is 30 s). */
  shutdownGraceMs: number;
  /** Reload when the policy file changes, and re-read credential files when they do (SIGHUP and the admin route always work). */
  watchPolicy: boolean;
  /** Where the audit log and its signing key live (WARDEN_DATA_DIR, default ./.warden). */
  dataDir?: string;
  /** Slow-loris deadlines for the traffic listener (default 30 s for headers, 60 s for a body). */
  clientTimeouts?: ClientTimeouts;
  /** The listener other agents' sidecars call (/agents/{this agent}/* only); absent: none. */
  inboundListen?: HostPort;
  logger?: Logger;
}

export interface Sidecar {
  readonly ctx: SidecarContext;
  readonly trafficUrl: string;
  readonly adminUrl: string;
  readonly inboundUrl?: string;
  /** Stops accepting, lets in-flight calls finish within the grace period, then closes everything. */
  shutdown(): Promise<void>;
}

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Parses HOST:PORT (IPv6 in brackets); throws with the offending text. */
export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65_535) throw new Error(`${what}: expected HOST:PORT (e.g. 127.0.0.1:15100), got "${text}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Stops a listener (started or not) and drops its connections. */
function closeListener(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

// Why a listener could not bind, for the errors an operator can fix by choosing another address.
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address in use',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'address not available (no interface on this host has it)',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'no such host (the name did not resolve)',
};

/**
 * Starts `server` listening at `at` and returns its URL. A bind that fails is a configuration error
 * naming the address and the flag that chose it, so the CLI exits 2 with one line, not a stack trace.
 */
export async function listenAt(server: Server, at: HostPort, flag: string): Promise<string> {
  server.listen(at.port, at.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const host = at.host.includes(':') ? `[${at.host}]` : at.host;
    throw new ConfigError(`cannot listen on ${host}:${at.port}: ${LISTEN_ERRORS[code] ?? (err as Error).message} (${flag})`, { cause: err });
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

// How long the tool ledger remembers a call: a conversation resumed after that is flagged when it
// quotes the call's result, which is the price of a ledger that does not grow without bound.
const TOOL_LEDGER_RETENTION_MS = 30 * 86_400_000;

/** A store in the data directory (created if need be); an unwritable directory never starts. */
function openStore<T>(dataDir: string, file: string, what: string, open: (path: string) => T): T {
  try {
    mkdirSync(dataDir, { recursive: true });
    return open(join(dataDir, file));
  } catch (err) {
    throw new ConfigError(`cannot open ${what} in ${dataDir}: ${(err as Error).message} (${storeAdvice(err)})`, { cause: err });
  }
}

// What start-up has opened so far, each with its closer: when a later step throws, they are closed in
// reverse order, so a sidecar that fails to start (in a test, or a host that retries) holds nothing.
type Opened = (() => unknown)[];

/** Registers the closer of something just opened and hands it back. */
function track<T>(opened: Opened, value: T, close: (value: T) => unknown): T {
  opened.push(() => close(value));
  return value;
}

/** Loads the policy (a bad one throws PolicyError and nothing starts), then opens both listeners. */
export async function startSidecar(opts: SidecarOptions): Promise<Sidecar> {
  const opened: Opened = [];
  try {
    return await start(opts, opened);
  } catch (err) {
    for (const close of opened.reverse()) {
      // The start-up error is the one to report; a closer that fails too changes nothing about it.
      await Promise.resolve().then(close).catch(() => undefined);
    }
    throw err;
  }
}

async function start(opts: SidecarOptions, opened: Opened): Promise<Sidecar> {
  const { policy, notes } = await loadPolicyFile(opts.policyFile);
  // Asynchronous writes: a line per call must not cost the event loop a write(2) each; lines written
  // while one write is in flight go out together, and pino flushes what is left when the process exits.
  const log = opts.logger ?? pino({ level: process.env.WARDEN_LOG_LEVEL ?? 'info', base: { svc: 'warden' }, redact: LOG_REDACT }, pino.destination({ dest: 1, sync: false }));
  const metrics = createMetrics();
  const dataDir = resolve(opts.dataDir ?? process.env.WARDEN_DATA_DIR ?? '.warden');
  // Outside ECS there is no metadata endpoint; inside, a failure to read it must not stop the sidecar.
  const identity = await ecsIdentity().catch((err) => {
    log.warn({ err: String(err) }, 'ECS task metadata unreadable; records will carry the policy\'s agent identity only');
    return undefined;
  });
  const audit = policy.audit.enabled ? await startAudit(policy, dataDir, metrics, log, identity, version) : undefined;
  if (audit) opened.push(() => audit.close({ event: 'log_close', ts: new Date().toISOString(), agent: agentOf(policy, identity), reason: 'start_failed' }));
  // The queue outlives reloads, so it reads the running policy (the first one until ctx exists: a
  // restart settles leftover escalations while it starts).
  let running: SidecarContext | undefined;
  const current = () => running?.runtime.policy ?? policy;
  const escalations = new EscalationQueue({
    store: track(opened, openStore(dataDir, 'escalations.db', 'the escalation queue', (p) => new EscalationStore(p)), (s) => s.close()),
    settings: () => current().escalation, metrics, log,
    schemaOf: (tool) => running?.runtime.tools.get(tool)?.args,
    record: audit && ((entry) => {
      const p = current();
      // The held call's arguments are content, kept only where the policy keeps bodies.
      const content = p.audit.bodies === 'none' ? { subject: undefined, decision: entry.decision && { ...(entry.decision as object), args: undefined } } : {};
      void audit.append({ ...entry, ...content, agent: agentOf(p, identity) }).catch((err) => log.error({ err: String(err) }, 'audit record of an escalation not committed'));
    }),
  });
  opened.push(() => escalations.close());
  // Tools answer in seconds, and a slow one must not hold sockets for long once it has.
  const services: RuntimeServices = {
    toolLedger: track(opened, openStore(dataDir, 'tools.db', 'the tool ledger', (p) => new ToolLedger(p)), (l) => l.close()),
    memory: track(opened, openStore(dataDir, 'memory.db', 'the context memory', (p) => new MemoryStore(p)), (m) => m.close()),
    toolDispatcher: track(opened, new Agent({ keepAliveTimeout: 10_000, connections: 64 }), (a) => a.close()),
    retryBudgets: new RetryBudgets(),
    limits: new Limiter({
      spend: track(opened, openStore(dataDir, 'limits.db', 'the daily spend of budgets', (p) => new SpendStore(p)), (s) => s.close()),
      onRefused: (limit) => metrics.rateLimited.inc({ limit }),
      onError: (err) => log.error({ err: String(err) }, 'settling a call\'s limits failed'),
    }),
    tokens: createTokenCounter(),
    escalations,
    record: audit && ((entry) => void audit.append(entry).catch((err) => log.error({ err: String(err) }, 'audit record of a summarizer call not committed'))),
    custody: track(opened, new KeyCustody({ log, watch: opts.watchPolicy }), (c) => c.close()),
    // The identity key is not read here: the first runtime whose policy has an agents section loads it.
    agents: track(opened, createAgentServices(dataDir), (a) => a.close()),
    pacts: track(opened, new PactService({
      store: track(opened, openStore(dataDir, 'evals.db', 'the behavioural history', (p) => new EvalStore(p)), (s) => s.close()),
      metrics, log,
      record: audit && ((entry) => void audit.append({ ...entry, agent: agentOf(current(), identity) }).catch((err) => log.error({ err: String(err) }, 'audit record of a pact evaluation not committed'))),
      agentToken: () => running?.runtime.agentAuth?.token(),
    }), (p) => p.close()),
  };
  // A pact that does not load is a bad policy: nothing starts.
  await services.pacts!.configure(policy, await loadPactFor(policy));
  const ctx: SidecarContext = {
    runtime: buildRuntime(policy, services), services, metrics, log, ledger: new UsageLedger(), recentCalls: new RecentCalls(), identity, audit, inFlight: 0, draining: false,
  };
  running = ctx;
  metrics.trust = async () => ({ agent: ctx.runtime.policy.agent.id, score: (await trustScore(metrics, services.pacts)).score });
  opened.push(() => closeRuntime(ctx.runtime));
  const reloader = track(opened, createPolicyReloader(ctx, opts.policyFile, opts.watchPolicy), (r) => r.close());
  const pruneLedger = setInterval(() => {
    try {
      services.toolLedger.prune(TOOL_LEDGER_RETENTION_MS);
    } catch (err) {
      log.warn({ err: String(err) }, 'pruning the tool ledger failed');
    }
  }, 3_600_000).unref();
  opened.push(() => clearInterval(pruneLedger));
  let up = false;
  const startedAt = Date.now();
  const traffic = track(opened, createTrafficServer(ctx, opts.clientTimeouts), closeListener);
  const admin = track(opened, createAdminServer({
    ctx, listening: () => up, lastReload: reloader.last, reload: reloader.reload, startedAt, version,
  }), closeListener);
  const trafficUrl = await listenAt(traffic, opts.listen, '--listen');
  const adminUrl = await listenAt(admin, opts.adminListen, '--admin-listen');
  const inbound = opts.inboundListen && track(opened, createTrafficServer(ctx, opts.clientTimeouts, true), closeListener);
  const inboundUrl = inbound ? await listenAt(inbound, opts.inboundListen!, '--inbound-listen') : undefined;
  if (policy.agents?.inbound && !inbound) log.warn('agents.inbound is set, but there is no inbound listener (--inbound-listen): no other agent can reach this one');
  up = true;
  services.pacts!.attach(trafficUrl);
  for (const w of ctx.runtime.warnings) log.warn(w);
  for (const n of notes) log.warn(n);
  log.info({ trafficUrl, adminUrl, inboundUrl, policy: policy.source, agent: policy.agent.id }, 'warden listening');

  let stopping: Promise<void> | undefined;
  async function drain(): Promise<void> {
    ctx.draining = true;
    services.pacts?.close();
    // Held calls are answered 503 now (their escalations stay pending for the next sidecar) rather than holding the drain.
    escalations.interrupt();
    log.info({ inFlight: ctx.inFlight, graceMs: opts.shutdownGraceMs }, 'draining');
    const closed = new Promise((resolve) => traffic.close(resolve));
    traffic.closeIdleConnections();
    const inboundClosed = inbound && new Promise((resolve) => inbound.close(resolve));
    inbound?.closeIdleConnections();
    const deadline = Date.now() + opts.shutdownGraceMs;
    while (ctx.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (ctx.inFlight > 0) log.warn({ inFlight: ctx.inFlight }, 'grace period over; closing remaining connections');
    traffic.closeAllConnections();
    await closed;
    inbound?.closeAllConnections();
    await inboundClosed;
    reloader.close();
    admin.closeAllConnections();
    await new Promise((resolve) => admin.close(resolve));
    await closeRuntime(ctx.runtime);
    clearInterval(pruneLedger);
    services.toolLedger.close();
    services.memory.close();
    services.limits?.close();
    services.custody?.close();
    services.pacts?.deps.store.close();
    escalations.close();
    await services.toolDispatcher.close();
    await services.agents?.close();
    if (audit) {
      await audit.close({ event: 'log_close', ts: new Date().toISOString(), agent: agentOf(ctx.runtime.policy, identity), reason: 'shutdown' });
      log.info({ path: audit.path, ...audit.stats() }, 'audit log closed');
    }
    log.info('stopped');
  }
  return {
    ctx,
    trafficUrl,
    adminUrl,
    inboundUrl,
    shutdown: () => (stopping ??= drain()),
  };
}
