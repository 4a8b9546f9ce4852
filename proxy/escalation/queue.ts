// The human-escalation queue, sidecar-wide: a call that needs a person is opened here and waits
// (its HTTP request held open) until someone approves or rejects it, or its deadline passes. State
// lives in escalations.db, so a restart loses nothing: the agent sends the call again, it attaches
// to its escalation by key, and waits out the original deadline or gets the decision made meanwhile.
//
// One loop settles everything (and at once after a decision here): pending calls past their deadline
// time out, and each decision not yet noted, whoever made it (the admin API, the CLI writing the file,
// the clock), is recorded in the audit log and the wait histogram once and wakes its waiters. The same
// loop delivers webhook notifications from the outbox. It polls the file every POLL_MS while a call
// waits (a decision the CLI writes there wakes it that fast) or a webhook is due, and every
// IDLE_POLL_MS otherwise: an idle sidecar, the common case, costs a few queries every two seconds.
import type { Logger } from 'pino';
import type { EscalationConfig } from '../../policies/types.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { EscalationConsumedError, EscalationNotFoundError, ShuttingDownError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { applyVerdict, type ApproveInput, type RejectInput, type SchemaLookup } from './decide.ts';
import { argsHash, newEscalationId, type Escalation, type EscalationState, type EscalationStore, type KeptAnswer } from './store.ts';
import { postWebhook, webhookBackoffMs } from './webhook.ts';

export type { Escalation, EscalationState } from './store.ts';

/** What a held call asks of the queue: the escalation's own fields (see store.ts), and how long it may wait. */
export type EscalationRequest = Pick<Escalation, 'kind' | 'key' | 'agent' | 'session' | 'task' | 'requestId' | 'tool' | 'args' | 'argsSchema' | 'candidates' | 'reason'> & {
  timeoutMs: number;
};

export type EscalationDecision =
  | { state: 'approved'; args?: unknown; argsHash?: string; edited?: boolean; choice?: number; by?: string; note?: string }
  | { state: 'rejected'; by?: string; note?: string }
  | { state: 'timed_out' };

export interface EscalationQueueOptions {
  store: EscalationStore;
  /** The running policy's escalation section (read on each use, so a reload applies). */
  settings(): EscalationConfig;
  metrics?: Metrics;
  /** Writes a standalone audit record (the sidecar adds the agent's identity). */
  record?(entry: AuditEntry): void;
  log?: Logger;
  /** A tool's argument schema under the running policy, to check edited arguments. */
  schemaOf?: SchemaLookup;
  /** The poll while a call waits or a webhook is due. */
  pollMs?: number;
  /** The poll otherwise (at least pollMs). */
  idlePollMs?: number;
}

// A decision waits this long for its call to come back (the agent's request was cut while it was
// held); then a call with the same key opens a new escalation. An outcome is delivered once.
export const CLAIM_GRACE_MS = 24 * 3_600_000;
// Decided escalations are forgotten after this; the audit log keeps their record for good.
const RETAIN_MS = 30 * 86_400_000;
const POLL_MS = 250;
const IDLE_POLL_MS = 2_000;

interface Waiter {
  resolve(d: EscalationDecision): void;
  reject(err: unknown): void;
}

export class EscalationQueue {
  private readonly store: EscalationStore;
  private readonly opts: EscalationQueueOptions;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly pollMs: number;
  private readonly idlePollMs: number;
  private ticker: NodeJS.Timeout | undefined;
  /** When the armed tick fires (epoch ms). */
  private tickAt = Infinity;
  private pumping = false;
  private closed = false;
  private lastPrune = 0;

  constructor(opts: EscalationQueueOptions) {
    this.opts = opts;
    this.store = opts.store;
    if (opts.metrics) opts.metrics.escalationStates = () => this.store.counts();
    this.pollMs = opts.pollMs ?? POLL_MS;
    this.idlePollMs = Math.max(opts.idlePollMs ?? IDLE_POLL_MS, this.pollMs);
    this.tick();
  }

  /** Opens an escalation for a call (with a jury's answers to keep), or returns the one this call (by key) already has. */
  open(req: EscalationRequest, answers: readonly KeptAnswer[] = []): Escalation {
    if (this.closed) throw new ShuttingDownError();
    const now = Date.now();
    const existing = this.store.claimable(req.key, now - CLAIM_GRACE_MS);
    if (existing) return existing;
    const esc: Escalation = {
      id: newEscalationId(), kind: req.kind, state: 'pending', key: req.key, agent: req.agent, session: req.session, task: req.task,
      requestId: req.requestId, tool: req.tool, reason: req.reason, createdAt: now, deadline: now + req.timeoutMs,
      ...(req.kind === 'tool_call' ? { args: req.args ?? {}, argsHash: argsHash(req.args), argsSchema: req.argsSchema } : { candidates: req.candidates ?? [] }),
    };
    this.store.insert(esc, answers);
    if (this.opts.settings().webhook) {
      this.store.enqueueWebhook(esc.id, now);
      queueMicrotask(() => void this.pump());
    }
    this.opts.record?.({
      event: 'escalation', ts: new Date(now).toISOString(), action: 'opened', request_id: esc.requestId, session: esc.session, task: esc.task,
      escalation: { id: esc.id, kind: esc.kind, tool: esc.tool, reason: esc.reason, deadline: new Date(esc.deadline).toISOString(), args_hash: esc.argsHash },
      subject: esc.kind === 'tool_call' ? { args: esc.args } : { candidates: esc.candidates },
    });
    this.opts.log?.info({ escalation: esc.id, kind: esc.kind, tool: esc.tool, reqId: esc.requestId, reason: esc.reason }, 'escalation opened');
    return esc;
  }

  /** The escalation a call with this key would attach to (pending, or decided and not yet delivered), if any. */
  attachable(key: string): Escalation | undefined {
    return this.store.claimable(key, Date.now() - CLAIM_GRACE_MS);
  }

  /** The jury answers kept with escalation `id`, in candidate order. */
  answers(id: string): KeptAnswer[] {
    return this.store.answers(id);
  }

  /**
   * Resolves with the decision once there is one (at the deadline: timed_out), and marks it delivered.
   * Rejects when `signal` aborts (the escalation stays open for the call to come back), on shutdown
   * (ShuttingDownError), and with EscalationConsumedError when another call took the approval.
   */
  wait(id: string, signal: AbortSignal): Promise<EscalationDecision> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    if (signal.aborted) return Promise.reject(signal.reason);
    this.settle();
    const esc = this.store.get(id);
    if (!esc) return Promise.reject(new EscalationNotFoundError(id));
    if (esc.state !== 'pending') {
      try {
        return Promise.resolve(this.deliver(esc));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise<EscalationDecision>((resolve, reject) => {
      const set = this.waiters.get(id) ?? new Set<Waiter>();
      const done = (settle: () => void) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        if (this.waiters.size === 0) this.ticker?.unref();
        settle();
      };
      const waiter: Waiter = { resolve: (d) => done(() => resolve(d)), reject: (err) => done(() => reject(err)) };
      const onAbort = () => done(() => reject(signal.reason));
      // Ref'd: a held call keeps the process up until its deadline.
      const timer = setTimeout(() => this.tick(), Math.max(0, esc.deadline - Date.now()) + 5);
      set.add(waiter);
      this.waiters.set(id, set);
      this.schedule();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Approves a pending escalation (edited arguments or a candidate choice checked first). */
  approve(id: string, input: ApproveInput = {}): Escalation {
    const esc = applyVerdict(this.store, id, { state: 'approved', ...input }, this.opts.schemaOf);
    this.settle();
    return esc;
  }

  reject(id: string, input: RejectInput = {}): Escalation {
    const esc = applyVerdict(this.store, id, { state: 'rejected', ...input }, this.opts.schemaOf);
    this.settle();
    return esc;
  }

  get(id: string): Escalation | undefined {
    return this.store.get(id);
  }

  /** Newest first. */
  list(filter: { state?: EscalationState; limit?: number } = {}): Escalation[] {
    this.settle();
    return this.store.list(filter.state, filter.limit);
  }

  /** Notification deliveries still to make (for tests and /status). */
  outbox(): ReturnType<EscalationStore['outbox']> {
    return this.store.outbox();
  }

  /**
   * Shutdown: every held call is answered 503 (retry) at once rather than holding the drain; the
   * escalations stay pending, for the calls to attach to when the agent sends them to the next sidecar.
   */
  interrupt(): void {
    this.closed = true;
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.reject(new ShuttingDownError());
  }

  close(): void {
    this.interrupt();
    clearTimeout(this.ticker);
    this.store.close();
  }

  private tick(): void {
    if (this.closed) return;
    try {
      this.settle();
      if (Date.now() - this.lastPrune > 3_600_000) {
        this.lastPrune = Date.now();
        this.store.prune(Date.now() - RETAIN_MS);
        this.store.pruneAnswers(Date.now() - CLAIM_GRACE_MS);
      }
    } catch (err) {
      this.opts.log?.error({ err: String(err) }, 'escalation queue: settling failed');
    }
    void this.pump();
    this.schedule();
  }

  /**
   * Arms the next tick: POLL_MS out while a call waits, at the next webhook's time when one is queued,
   * IDLE_POLL_MS otherwise; an earlier tick already armed is kept. Ref'd only while a call waits: an
   * idle queue never keeps a process alive.
   */
  private schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    const waiting = this.waiters.size > 0;
    let delay = waiting ? this.pollMs : this.idlePollMs;
    try {
      const hook = this.store.nextWebhookAt();
      if (hook !== undefined) delay = Math.min(delay, Math.max(this.pollMs, hook - now));
    } catch (err) {
      this.opts.log?.error({ err: String(err) }, 'escalation queue: reading the webhook outbox failed');
    }
    if (this.ticker && this.tickAt <= now + delay) {
      if (waiting) this.ticker.ref();
      return;
    }
    clearTimeout(this.ticker);
    this.tickAt = now + delay;
    this.ticker = setTimeout(() => {
      this.ticker = undefined;
      this.tickAt = Infinity;
      this.tick();
    }, delay);
    if (!waiting) this.ticker.unref();
  }

  /** Times out what is due, and notes (records, wakes) every decision not yet noted. */
  private settle(): void {
    if (this.closed) return;
    this.store.expire(Date.now());
    for (const esc of this.store.unnoted()) {
      this.store.markNoted(esc.id);
      this.note(esc);
      for (const w of [...(this.waiters.get(esc.id) ?? [])]) {
        try {
          w.resolve(this.deliver(esc));
        } catch (err) {
          w.reject(err);
        }
      }
    }
  }

  private note(esc: Escalation): void {
    const waited = ((esc.decidedAt ?? Date.now()) - esc.createdAt) / 1000;
    this.opts.metrics?.escalationWait.observe({ kind: esc.kind, state: esc.state }, waited);
    const d = esc.decision;
    this.opts.record?.({
      event: 'escalation', ts: new Date(esc.decidedAt ?? Date.now()).toISOString(), action: esc.state, request_id: esc.requestId, session: esc.session, task: esc.task,
      escalation: { id: esc.id, kind: esc.kind, tool: esc.tool, waited_ms: Math.round(waited * 1000) },
      decision: d && { by: d.by, note: d.note, args_hash: d.argsHash, edited: d.edited, args: d.edited ? d.args : undefined, choice: d.choice },
    });
    this.opts.log?.info({ escalation: esc.id, state: esc.state, by: d?.by, edited: d?.edited, waitedS: waited }, 'escalation decided');
  }

  /** The decision for one waiting call: an approval goes to one call only; a refusal to every call waiting. */
  private deliver(esc: Escalation): EscalationDecision {
    const first = this.store.consume(esc.id, Date.now());
    const d = esc.decision ?? {};
    if (esc.state === 'approved') {
      if (!first) throw new EscalationConsumedError(esc.id);
      return { state: 'approved', args: d.args, argsHash: d.argsHash, edited: d.edited, choice: d.choice, by: d.by, note: d.note };
    }
    if (esc.state === 'rejected') return { state: 'rejected', by: d.by, note: d.note };
    return { state: 'timed_out' };
  }

  /** Sends due webhook notifications; failures are retried with backoff, up to the policy's attempts. */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      for (;;) {
        const due = this.store.dueWebhooks(Date.now(), 16);
        if (due.length === 0 || this.closed) return;
        await Promise.all(due.map((entry) => this.deliverWebhook(entry.id, entry.attempts)));
      }
    } catch (err) {
      this.opts.log?.error({ err: String(err) }, 'escalation queue: webhook outbox failed');
    } finally {
      this.pumping = false;
      // A failed delivery set its retry time: tick by then, not at the idle pace.
      this.schedule();
    }
  }

  private async deliverWebhook(id: string, attempts: number): Promise<void> {
    const cfg = this.opts.settings();
    const esc = this.store.get(id);
    // Decided already, or the webhook was removed by a reload: there is nobody left to tell.
    if (!esc || esc.state !== 'pending' || !cfg.webhook) return this.store.webhookDone(id);
    try {
      await postWebhook(cfg, esc);
      if (!this.closed) this.store.webhookDone(id);
    } catch (err) {
      if (this.closed) return;
      const tries = attempts + 1;
      const why = String((err as Error).message ?? err);
      if (tries >= cfg.webhookRetry.attempts) {
        this.store.webhookDone(id);
        this.opts.log?.warn({ escalation: id, attempts: tries, err: why }, 'escalation webhook given up');
        return;
      }
      this.store.webhookRetryAt(id, tries, Date.now() + webhookBackoffMs(cfg, tries), why);
      this.opts.log?.warn({ escalation: id, attempts: tries, err: why }, 'escalation webhook failed; will retry');
    }
  }
}
