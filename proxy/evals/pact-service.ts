// Continuous evaluation inside the sidecar: the policy's pact is run against the certified baseline on
// a schedule and whenever live traffic shows a new served model or fingerprint, through the sidecar's
// own traffic listener (so pins, scope and every other protection apply as they do to the agent).
// Outcomes go to the behavioural history (evals.db), the audit log (a `drift` event), a webhook,
// metrics and /status. The operator's actions (accept, rollback, remediate) live in operator-actions.ts.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Policy } from '../../policies/types.ts';
import { callFailed } from '../../evals/assertions.ts';
import { certifyBaseline, type Certified } from '../../evals/certify.ts';
import { evaluateDrift } from '../../evals/evaluate.ts';
import { loadPactFile } from '../../evals/pact.ts';
import { runPact } from '../../evals/runner.ts';
import type { EvalStore, PinOverride } from '../../evals/store.ts';
import type { Baseline, DriftReport, DriftState, Pact, RunResult } from '../../evals/types.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { PolicyError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { driftAlert, postAlert } from './drift-alert.ts';
import { LiveWatch } from './live-watch.ts';
import { rollback } from './operator-actions.ts';
import { summarizeDrift, summarizeRun } from './summaries.ts';
import { trustScore } from './trust-score.ts';

export interface PactServiceDeps {
  store: EvalStore;
  metrics: Metrics;
  log: Logger;
  /** Appends to the audit log, when there is one (the agent field is filled in there). */
  record?: (entry: AuditEntry) => void;
  /** The token the agent presents to this sidecar, when the policy asks for one (evaluations present it too). */
  agentToken?: () => string | undefined;
}

export type EvalReason = 'schedule' | 'model_change' | 'operator' | 'rollback';

/** The last evaluation, as /status and the trust score read it. */
export interface LastEvaluation {
  at: string;
  reason: EvalReason;
  /** Absent without a baseline: the run was judged against thresholds only. */
  state?: DriftState;
  passed: boolean;
  /** Mean of the capabilities' values (pass rates or mean scores). */
  value: number;
  served: RunResult['served'];
  drifted: string[];
  error?: string;
}

/** The pact a policy names, loaded and checked; undefined when the policy has no evals section. */
export async function loadPactFor(policy: Policy): Promise<Pact | undefined> {
  if (!policy.evals) return undefined;
  const pact = await loadPactFile(policy.evals.pact);
  if (pact.agent !== policy.agent.id) throw new PolicyError([`${policy.evals.pact}:1:1: the pact is for agent "${pact.agent}", but the policy is agent "${policy.agent.id}"`]);
  return pact;
}

async function baselineFile(file: string, agent: string): Promise<Baseline> {
  const b = JSON.parse(await readFile(file, 'utf8')) as Baseline;
  if (b?.agent !== agent || !b.run?.capabilities) throw new Error(`${file} is not a baseline for agent "${agent}"`);
  return b;
}

export class PactService {
  readonly deps: PactServiceDeps;
  policy?: Policy;
  pact?: Pact;
  last?: LastEvaluation;
  /** The last drift decision with confirmed drift that no operator action has answered yet. */
  openDrift?: DriftReport;
  lastReport?: DriftReport;
  /** What the active baseline was certified on: live traffic served by anything else is a model change. */
  certifiedModel?: Baseline['model'];
  baselineProblem?: string;
  readonly live = new LiveWatch(this);
  private target?: string;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Why the one evaluation queued behind the running one was asked for. */
  private queued?: EvalReason;
  /** Ids of evaluation runs in flight: their calls are the sidecar's own, not the agent's. */
  private readonly runIds = new Set<string>();
  private pinCache = new Map<string, string>();
  private closed = false;
  /** Aborts the runs in flight at shutdown: their calls would only meet a closed listener. */
  private readonly stop = new AbortController();

  constructor(deps: PactServiceDeps) {
    this.deps = deps;
  }

  /** Takes a (re)loaded policy and its pact; restarts the schedule when the service is attached. */
  async configure(policy: Policy, pact: Pact | undefined): Promise<void> {
    this.policy = policy;
    this.pact = pact;
    this.refreshPins();
    this.live.reset();
    this.baselineProblem = undefined;
    try {
      this.certifiedModel = (await this.baseline())?.model;
    } catch (err) {
      this.certifiedModel = undefined;
      // An unreadable baseline file is a warning on /status (baselineProblem), not a reason to stop.
      this.baselineProblem = (err as Error).message;
    }
    if (this.target !== undefined) this.schedule();
  }

  /** Starts evaluating against the sidecar's own traffic listener (or the policy's evals.target). */
  attach(trafficUrl: string): void {
    this.target = trafficUrl;
    this.schedule();
  }

  private schedule(): void {
    clearInterval(this.timer);
    const every = this.policy?.evals?.everyMs ?? 0;
    if (this.pact && every > 0 && !this.closed) this.timer = setInterval(() => void this.evaluate('schedule'), every).unref();
  }

  /** The snapshot an operator's rollback pinned `alias` to, above the policy's pin. */
  snapshotFor(alias: string): string | undefined {
    return this.pinCache.get(alias);
  }

  refreshPins(): PinOverride[] {
    const pins = this.policy ? this.deps.store.pins(this.policy.agent.id) : [];
    this.pinCache = new Map(pins.map((p) => [p.alias, p.snapshot]));
    return pins;
  }

  /** True for the x-warden-eval value of an evaluation this sidecar is running. */
  isOwnRun(id: string | undefined): boolean {
    return id !== undefined && this.runIds.has(id);
  }

  /** The active baseline: certified in this sidecar, else the policy's baseline file. */
  async baseline(): Promise<Baseline | undefined> {
    const policy = this.policy;
    if (!policy?.evals) return undefined;
    const stored = this.deps.store.activeBaseline(policy.agent.id);
    if (stored || !policy.evals.baseline) return stored;
    return baselineFile(policy.evals.baseline, policy.agent.id);
  }

  /** Base URL evaluations call, in the pact's API. */
  private targetFor(pact: Pact): string {
    const base = this.policy?.evals?.target ?? this.target;
    if (!base) throw new Error('the sidecar is not listening yet');
    if (this.policy?.evals?.target) return base;
    return pact.api === 'anthropic' ? `${base}/anthropic` : `${base}/v1`;
  }

  /** Run options for one evaluation run: its own id, marked so the sidecar knows its own calls. */
  private runOptions(pact: Pact): { target: string; headers: Record<string, string>; apiKey?: string; signal: AbortSignal; release(): void } {
    const id = `ev_${randomBytes(6).toString('hex')}`;
    this.runIds.add(id);
    return {
      target: this.targetFor(pact),
      headers: { 'x-warden-eval': id, 'x-warden-task': `eval:${id}` },
      apiKey: this.deps.agentToken?.(),
      signal: this.stop.signal,
      release: () => this.runIds.delete(id),
    };
  }

  /** Certifies a baseline from the model as served now, and makes it the active one. */
  async certify(by = 'operator'): Promise<Certified> {
    const { pact, policy } = this.ready();
    const { release, ...opts } = this.runOptions(pact);
    try {
      const certified = await certifyBaseline(pact, opts, { pin: policy.models[pact.model]?.pin, policySha256: policy.source.sha256 });
      this.deps.store.saveBaseline(certified.baseline);
      this.certifiedModel = certified.baseline.model;
      this.baselineProblem = undefined;
      this.deps.store.addHistory(policy.agent.id, 'baseline_certified', { by, baseline: certified.baseline.id, model: certified.baseline.model, mde: certified.baseline.mde, warnings: certified.warnings });
      this.openDrift = undefined;
      return certified;
    } finally {
      release();
    }
  }

  private ready(): { pact: Pact; policy: Policy } {
    if (!this.pact || !this.policy) throw new Error('the policy has no evals section');
    return { pact: this.pact, policy: this.policy };
  }

  /**
   * Runs one evaluation unless one is running; a request during a run queues exactly one more (a model
   * change seen mid-run must still be evaluated after it). Never throws: failures are recorded.
   */
  evaluate(reason: EvalReason): Promise<void> {
    if (!this.pact || this.closed) return Promise.resolve();
    if (this.running) {
      this.queued = reason;
      return this.running;
    }
    this.running = this.evaluateOnce(reason).finally(() => {
      this.running = undefined;
      const next = this.queued;
      this.queued = undefined;
      if (next && !this.closed) void this.evaluate(next);
    });
    return this.running;
  }

  /** Resolves once no evaluation is running or queued (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async evaluateOnce(reason: EvalReason): Promise<void> {
    const { pact, policy } = this.ready();
    const agent = policy.agent.id;
    const at = new Date().toISOString();
    let release: (() => void) | undefined;
    try {
      const { release: done, ...opts } = this.runOptions(pact);
      release = done;
      const baseline = await this.baseline();
      if (!baseline) {
        const run = unfailed(await runPact(pact, opts));
        this.last = { at, reason, passed: run.passed, value: meanValue(run), served: run.served, drifted: [] };
        this.deps.store.addHistory(agent, 'evaluation', { reason, baseline: null, ...summarizeRun(run) });
        this.deps.metrics.evalRuns.inc({ reason, state: 'no_baseline' });
        await this.recordEvaluation(at, reason, 'no_baseline', []);
        return;
      }
      const report = await evaluateDrift(pact, baseline, opts);
      unfailed(report.candidate);
      // An operator accepted a new baseline while this ran: its verdict is about the old one.
      if ((await this.baseline())?.id !== baseline.id) return;
      this.lastReport = report;
      const drifted = report.capabilities.filter((c) => c.state === 'drift').map((c) => c.name);
      this.last = { at, reason, state: report.state, passed: report.candidate.passed, value: meanValue(report.candidate), served: report.served, drifted };
      for (const c of report.capabilities) {
        this.deps.metrics.driftDeviation.set({ capability: c.name }, c.delta);
        this.deps.metrics.evalValue.set({ capability: c.name }, c.candidateValue);
      }
      this.deps.metrics.evalRuns.inc({ reason, state: report.state });
      const summary = summarizeDrift(report);
      this.deps.store.addHistory(agent, 'evaluation', { reason, ...summary });
      await this.recordEvaluation(at, reason, report.state, drifted);
      if (report.state === 'drift') await this.onDrift(report, summary);
    } catch (err) {
      if (this.closed) return;
      const message = (err as Error).message ?? String(err);
      this.last = { at, reason, passed: false, value: this.last?.value ?? 0, served: this.last?.served ?? {}, drifted: this.last?.drifted ?? [], error: message };
      this.deps.store.addHistory(agent, 'evaluation_failed', { reason, error: message });
      this.deps.metrics.evalRuns.inc({ reason, state: 'failed' });
      this.deps.log.error({ err: message, reason }, 'pact evaluation failed');
    } finally {
      release?.();
    }
  }

  /**
   * Every finished evaluation goes to the audit log with the trust score it leaves, so the collector
   * can draw each agent's trust history without the sidecar's own store.
   */
  private async recordEvaluation(at: string, reason: EvalReason, state: string, drifted: string[]): Promise<void> {
    if (!this.deps.record || !this.last) return;
    const trust = await trustScore(this.deps.metrics, this);
    this.deps.record({
      event: 'evaluation', ts: at, reason, state, passed: this.last.passed, value: this.last.value, drifted,
      trust_score: trust.score, trust_components: trust.components,
    });
  }

  /** Confirmed drift: history, audit, alert, and under `rules.model_drift: block` an automatic rollback. */
  private async onDrift(report: DriftReport, summary: Record<string, unknown>): Promise<void> {
    const policy = this.policy!;
    this.openDrift = report;
    this.deps.store.addHistory(policy.agent.id, 'drift', summary);
    this.deps.record?.({ event: 'drift', ts: report.at, drift: summary });
    this.deps.log.warn({ drift: summary }, 'behavioural drift confirmed');
    const evals = policy.evals!;
    if (evals.webhook) postAlert(evals.webhook, evals.webhookHeaders, driftAlert(policy, report), this.deps.log);
    if (policy.rules.model_drift === 'block') await rollback(this, { by: 'warden', note: 'rules.model_drift: block' });
  }

  /** Stops the schedule and aborts an evaluation in flight (it is not recorded as failed). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.stop.abort(new Error('the sidecar is shutting down'));
  }
}

// Beyond this share of failed calls (an outage, a spent budget, a refused key), a run measures the
// failure, not the behaviour: it is recorded as a failed evaluation, never as drift.
const MAX_FAILED_SHARE = 0.2;

/** The run, unless too many of its calls failed to say anything about behaviour (then it throws why). */
function unfailed(run: RunResult): RunResult {
  const trials = run.capabilities.flatMap((c) => c.cases.flatMap((k) => k.trials));
  const failed = trials.filter((t) => callFailed(t.observation));
  if (trials.length > 0 && failed.length / trials.length > MAX_FAILED_SHARE) {
    throw new Error(`${failed.length} of ${trials.length} evaluation calls failed (first: ${failed[0].observation.error ?? `HTTP ${failed[0].observation.status}`}); behaviour was not judged`);
  }
  return run;
}

function meanValue(run: RunResult): number {
  return run.capabilities.length === 0 ? 0 : run.capabilities.reduce((s, c) => s + c.value, 0) / run.capabilities.length;
}
