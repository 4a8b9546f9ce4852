// What live traffic says about behaviour, between evaluations: a served model or system_fingerprint
// never seen before for a model the pact uses (a provider moved an alias silently) starts an
// evaluation at once, and the passive monitor compares each window of calls with its baseline period.
// The sidecar's own evaluation calls are left out of both: they would measure the pact, not the agent.
import { DEFAULT_PASSIVE_CONFIG, PassiveMonitor, type LiveSample, type PassiveComparison } from '../../evals/passive.ts';
import { isRefusal } from '../../evals/refusal.ts';
import type { Request, Response } from '../canonical.ts';
import type { CallContext } from '../stage.ts';
import { postAlert } from './drift-alert.ts';
import type { PactService } from './pact-service.ts';

// Replies that start like JSON are judged for validity; others are prose and have none to judge.
const JSON_START = /^\s*(?:```(?:json)?\s*)?[[{]/;

/** The live sample of one model call: the reply as the agent got it, and what the request carried back. */
export function sampleOf(call: CallContext, req: Request | undefined, res: Response, now: number): LiveSample {
  const results = req?.messages.at(-1)?.toolResults ?? [];
  const text = res.text;
  let jsonValid: boolean | undefined;
  if (JSON_START.test(text)) {
    try {
      JSON.parse(text.trim().replace(/^```(?:json)?\s*|\s*```$/g, ''));
      jsonValid = true;
    } catch {
      jsonValid = false;
    }
  }
  return {
    responseChars: text.length,
    refusal: isRefusal(text),
    // OpenAI tool messages carry no error flag, so an error object as the whole result counts too.
    toolError: results.length === 0 ? undefined : results.some((r) => r.isError || /^\s*\{\s*"error"\s*:/.test(r.content)),
    jsonValid,
    latencyMs: now - call.startedAt,
    outputTokens: res.usage?.outputTokens,
  };
}

export class LiveWatch {
  private readonly service: PactService;
  private monitor?: PassiveMonitor;
  /** (served model, fingerprint) pairs seen per model asked since the baseline or the last accept. */
  private readonly seen = new Map<string, Set<string>>();
  last?: PassiveComparison;
  /** Flagged comparisons no operator has answered (accept rebaselines). */
  openAlert?: PassiveComparison;

  constructor(service: PactService) {
    this.service = service;
  }

  private passive(): PassiveMonitor | undefined {
    const policy = this.service.policy;
    const cfg = policy?.evals?.passive;
    if (!policy || !cfg?.enabled) return (this.monitor = undefined);
    if (!this.monitor) {
      const stored = this.service.deps.store.passiveBaseline(policy.agent.id);
      this.monitor = new PassiveMonitor({ ...cfg, permutations: DEFAULT_PASSIVE_CONFIG.permutations }, stored);
    }
    return this.monitor;
  }

  /**
   * One model call the agent made, as its response leaves the pipeline. Only the sample is taken here;
   * the store writes, logs and window comparisons happen just after, off the agent's response path,
   * and a fault in them is logged, never the agent's call failing.
   */
  observe(call: CallContext, req: Request | undefined, res: Response): void {
    const service = this.service;
    if (!service.pact || service.isOwnRun(header(call, 'x-warden-eval'))) return;
    const sample = sampleOf(call, req, res, performance.now());
    const served = { asked: call.modelAsked, model: res.model ?? call.modelServed, fingerprint: call.systemFingerprint ?? res.systemFingerprint };
    setImmediate(() => {
      try {
        this.watchModel(served.asked, served.model, served.fingerprint);
        const monitor = this.passive();
        if (monitor) this.compare(monitor, sample);
      } catch (err) {
        service.deps.log.error({ err: String(err) }, 'the live watch failed on a call');
      }
    });
  }

  private compare(monitor: PassiveMonitor, sample: LiveSample): void {
    const service = this.service;
    const wasComplete = monitor.snapshot().baselineComplete;
    const comparison = monitor.observe(sample);
    const snap = monitor.snapshot();
    const agent = service.policy!.agent.id;
    if (!wasComplete && snap.baselineComplete) service.deps.store.savePassiveBaseline(agent, snap.baseline);
    if (!comparison) return;
    this.last = comparison;
    if (comparison.flagged.length === 0) return;
    this.openAlert = comparison;
    const flagged = comparison.flagged.map((m) => ({ metric: m.metric, baseline: m.baseline, current: m.current, reason: m.reason }));
    for (const m of comparison.flagged) service.deps.metrics.passiveAlerts.inc({ metric: m.metric });
    service.deps.store.addHistory(agent, 'passive_alert', { window: comparison.window, flagged });
    service.deps.record?.({ event: 'drift', ts: comparison.at, passive: { window: comparison.window, flagged } });
    const evals = service.policy!.evals!;
    if (evals.webhook) {
      postAlert(evals.webhook, evals.webhookHeaders, {
        kind: 'passive_drift', agent, at: comparison.at, window: comparison.window, flagged,
        text: `[warden] Agent ${agent}: live traffic shifted (${comparison.flagged.map((m) => m.reason ?? m.metric).join('; ')}).`,
      }, service.deps.log);
    }
  }

  private watchModel(asked: string | undefined, served: string | undefined, fingerprint: string | undefined): void {
    const service = this.service;
    if (!asked || !served || !service.pact || !usesModel(service, asked)) return;
    const key = `${served}\0${fingerprint ?? ''}`;
    let seen = this.seen.get(asked);
    if (!seen) {
      seen = new Set();
      this.seen.set(asked, seen);
    }
    if (seen.has(key)) return;
    const first = seen.size === 0;
    seen.add(key);
    // What the baseline was certified on is never news (a rollback returns to it); the first pair
    // seen after a start is news only against a baseline served by something else.
    const baseline = service.certifiedModel?.asked === asked ? service.certifiedModel : undefined;
    if (baseline && baseline.served === served && (baseline.systemFingerprint ?? '') === (fingerprint ?? '')) return;
    if (first && !baseline) return;
    const detail = { asked, served, systemFingerprint: fingerprint, baselineServed: baseline?.served };
    service.deps.metrics.modelChanges.inc();
    service.deps.store.addHistory(service.policy!.agent.id, 'model_change', detail);
    service.deps.log.warn(detail, 'the served model changed; evaluating the pact');
    if (service.policy!.evals!.onModelChange) void service.evaluate('model_change');
  }

  /** Accepted behaviour: the last window becomes the passive baseline, and the models seen become known. */
  rebaseline(): void {
    this.seen.clear();
    this.openAlert = undefined;
    const monitor = this.passive();
    if (!monitor) return;
    // Without a live window since the passive baseline was taken (a sidecar that just started, a
    // second accept) there is no newer live behaviour to adopt, so the baseline stays.
    if (!monitor.canRebaseline) return;
    monitor.rebaseline();
    this.service.deps.store.savePassiveBaseline(this.service.policy!.agent.id, monitor.snapshot().baseline);
  }

  /** Forgets the monitor, so a reloaded passive section takes effect. */
  reset(): void {
    this.monitor = undefined;
  }

  /** For /status and GET /evals. */
  status(): Record<string, unknown> | undefined {
    const snap = this.monitor?.snapshot();
    return snap && { baselineCalls: snap.baseline.length, baselineComplete: snap.baselineComplete, pending: snap.pending, last: this.last, alert: this.openAlert };
  }
}

function header(call: CallContext, name: string): string | undefined {
  const v = call.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function usesModel(service: PactService, model: string): boolean {
  const pact = service.pact!;
  return pact.model === model || pact.capabilities.some((c) => c.cases.some((k) => k.model === model));
}
