// Prometheus metrics on the admin listener. Labels are bounded: route, model (from the policy or the
// upstream's answer, capped), status, direction. Never task ids, session ids or user text.
import { statSync } from 'node:fs';
import client from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
// Warden's own overhead is sub-millisecond when healthy, so its buckets start at 50 µs.
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
// Model names come from upstream answers; past this many distinct values, new ones are reported as "other".
const MAX_MODEL_LABELS = 64;

export interface Metrics {
  registry: client.Registry;
  requests: client.Counter<'route' | 'model' | 'status'>;
  requestDuration: client.Histogram<'route'>;
  upstreamDuration: client.Histogram<'route'>;
  timeToFirstByte: client.Histogram<'route'>;
  overhead: client.Histogram<'route'>;
  tokens: client.Counter<'model' | 'direction'>;
  cost: client.Counter<'model'>;
  policyReloads: client.Counter<'result'>;
  inFlight: client.Gauge;
  auditRecords: client.Counter<'event'>;
  auditCommitDuration: client.Histogram;
  auditCommitFailures: client.Counter<'code'>;
  auditDiskBytes: client.Gauge;
  auditUnshipped: client.Gauge;
  auditShipFailures: client.Counter<'reason'>;
  auditQuotaUsed: client.Gauge;
  toolCalls: client.Counter<'tool' | 'outcome'>;
  contextTokens: client.Histogram;
  contextActions: client.Counter<'action'>;
  violations: client.Counter<'kind' | 'action'>;
  redactions: client.Counter<'detector'>;
  hallucinationFlags: client.Counter<'tool' | 'signal'>;
  auditPruned: client.Counter;
  auditFullCalls: client.Counter<'outcome'>;
  authFailures: client.Counter<'reason'>;
  retries: client.Counter<'reason'>;
  retryBudgetExhausted: client.Counter;
  rateLimited: client.Counter<'limit'>;
  confidence: client.Histogram;
  juryDisagreements: client.Counter;
  scopeChecks: client.Counter<'result'>;
  scopeHonesty: client.Gauge;
  escalations: client.Gauge<'state'>;
  escalationWait: client.Histogram<'kind' | 'state'>;
  evalRuns: client.Counter<'reason' | 'state'>;
  driftDeviation: client.Gauge<'capability'>;
  evalValue: client.Gauge<'capability'>;
  modelChanges: client.Counter;
  passiveAlerts: client.Counter<'metric'>;
  trustScore: client.Gauge<'agent'>;
  /** The agent's trust score, computed at scrape time. */
  trust?: () => Promise<{ agent: string; score: number }>;
  /** The escalation queue's counts per state, read at scrape time. */
  escalationStates?: () => Record<string, number>;
  /** The audit database whose files auditDiskBytes measures at scrape time. */
  auditPath?: string;
  /** A model name safe to use as a label value. */
  modelLabel(model: string | undefined): string;
}

/** Creates a registry of its own, so several sidecars can live in one process (tests). */
export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'warden_' });
  const seenModels = new Set<string>();
  // Commits take from ~50 µs (page cache) to tens of ms (fsync on a busy volume).
  const COMMIT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
  const opts = { registers: [registry] };
  const metrics: Metrics = {
    registry,
    requests: new client.Counter({ name: 'warden_requests_total', help: 'Calls handled, by route, model asked and HTTP status.', labelNames: ['route', 'model', 'status'], ...opts }),
    requestDuration: new client.Histogram({ name: 'warden_request_duration_seconds', help: 'Whole call, from request received to response finished.', labelNames: ['route'], buckets: LATENCY_BUCKETS, ...opts }),
    upstreamDuration: new client.Histogram({ name: 'warden_upstream_duration_seconds', help: 'Time from dispatch upstream to the end of the upstream response.', labelNames: ['route'], buckets: LATENCY_BUCKETS, ...opts }),
    timeToFirstByte: new client.Histogram({ name: 'warden_time_to_first_byte_seconds', help: 'Time from request received to the first response body byte sent to the agent.', labelNames: ['route'], buckets: LATENCY_BUCKETS, ...opts }),
    overhead: new client.Histogram({ name: 'warden_overhead_seconds', help: 'Time spent in Warden: whole call minus upstream time (streamed calls included).', labelNames: ['route'], buckets: OVERHEAD_BUCKETS, ...opts }),
    tokens: new client.Counter({ name: 'warden_tokens_total', help: 'Tokens reported by upstreams, by model served and direction (input|output).', labelNames: ['model', 'direction'], ...opts }),
    cost: new client.Counter({ name: 'warden_cost_usd_total', help: 'Cost in USD from the policy price table, by model served.', labelNames: ['model'], ...opts }),
    policyReloads: new client.Counter({ name: 'warden_policy_reloads_total', help: 'Policy reloads, by result (ok|error).', labelNames: ['result'], ...opts }),
    inFlight: new client.Gauge({ name: 'warden_in_flight_requests', help: 'Calls currently being handled.', ...opts }),
    auditRecords: new client.Counter({ name: 'warden_audit_records_total', help: 'Audit records committed, by event (model_call, passthrough, agent_call, request, policy_reload, log_open, log_close).', labelNames: ['event'], ...opts }),
    auditCommitDuration: new client.Histogram({ name: 'warden_audit_commit_duration_seconds', help: 'One group-commit transaction of the audit log, fsync included.', buckets: COMMIT_BUCKETS, ...opts }),
    auditCommitFailures: new client.Counter({ name: 'warden_audit_commit_failures_total', help: 'Audit transactions that failed, by SQLite error code (their calls were not released under strict durability).', labelNames: ['code'], ...opts }),
    auditUnshipped: new client.Gauge({ name: 'warden_audit_unshipped_records', help: 'Audit records the collector has not acknowledged yet.', ...opts }),
    auditShipFailures: new client.Counter({ name: 'warden_audit_ship_failures_total', help: 'Failed shipments to the collector, by reason (network, throttled, server: also any other unexpected answer, unauthorized, too_large: a 413, sent again in halves, rejected: dead-lettered).', labelNames: ['reason'], ...opts }),
    contextTokens: new client.Histogram({ name: 'warden_context_tokens', help: 'Input tokens of model requests, as the upstream reported them (the context each call sent).', buckets: [1_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 200_000, 400_000, 1_000_000], ...opts }),
    contextActions: new client.Counter({ name: 'warden_context_actions_total', help: 'What context windowing did, by action (context-trimmed, tool-results-cleared, summarized, summary-written, memory-recalled).', labelNames: ['action'], ...opts }),
    toolCalls: new client.Counter({ name: 'warden_tool_calls_total', help: 'Tool calls through /tools and /mcp, by tool (declared names, else "undeclared") and outcome (ok, blocked, rejected, escalation_timeout, rate_limited, invalid_result, failed, timeout, degraded, fallback).', labelNames: ['tool', 'outcome'], ...opts }),
    violations: new client.Counter({ name: 'warden_violations_total', help: 'Policy violations, by kind (scope_violation, unknown_tool, invalid_arguments, approval_required, …) and action taken (log, block, escalate).', labelNames: ['kind', 'action'], ...opts }),
    redactions: new client.Counter({ name: 'warden_redactions_total', help: 'Sanitizer matches masked or hashed, by detector (email, credit_card, … and custom pattern names), in responses, streams and requests.', labelNames: ['detector'], ...opts }),
    hallucinationFlags: new client.Counter({ name: 'warden_hallucination_flags_total', help: 'Tool results flagged as possibly invented, by tool and signal (round_numbers, placeholder_values, …).', labelNames: ['tool', 'signal'], ...opts }),
    auditQuotaUsed: new client.Gauge({ name: 'warden_audit_quota_used_ratio', help: 'Share of audit.quotaBytes the audit log uses (alert at 0.7; new calls refused at 1).', ...opts }),
    auditPruned: new client.Counter({ name: 'warden_audit_pruned_records_total', help: 'Audit records pruned after the collector acknowledged them and their retention passed.', ...opts }),
    auditFullCalls: new client.Counter({ name: 'warden_audit_full_calls_total', help: 'Calls that arrived while the audit log had no room, by outcome (refused: 503; unrecorded: let through by onFull: failOpen).', labelNames: ['outcome'], ...opts }),
    authFailures: new client.Counter({ name: 'warden_auth_failures_total', help: 'Requests refused with a 401 because the agent did not authenticate, by reason (missing: no token; invalid: a wrong token; from another agent: unsigned, malformed, forged, expired, replayed, untrusted, audience; delegation: an x-warden-delegation that is not open; admin: an escalation decision on the admin listener without the admin token or with a wrong one).', labelNames: ['reason'], ...opts }),
    retries: new client.Counter({ name: 'warden_retries_total', help: 'Model calls sent again, by reason (rate_limited, server_error, network, timeout, fallback, stall, low_confidence).', labelNames: ['reason'], ...opts }),
    retryBudgetExhausted: new client.Counter({ name: 'warden_retry_budget_exhausted_total', help: 'Retries not made because the upstream\'s retry budget was spent.', ...opts }),
    rateLimited: new client.Counter({ name: 'warden_rate_limited_total', help: 'Calls refused with a 429 by a limit, by limit (requests_per_minute, tokens_per_minute, concurrent, usd_per_day, irreversible_tools, task_requests_per_minute, task_tokens_per_minute, task_usd_per_day).', labelNames: ['limit'], ...opts }),
    confidence: new client.Histogram({ name: 'warden_confidence', help: 'Confidence of scored model answers (0 to 1).', buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99], ...opts }),
    juryDisagreements: new client.Counter({ name: 'warden_jury_disagreements_total', help: 'Parallel juries whose agreement fell below escalateBelowAgreement.', ...opts }),
    escalations: new client.Gauge({
      name: 'warden_escalations', help: 'Escalations in the queue (escalations.db), by state (pending, approved, rejected, timed_out); decided ones are kept 30 days.', labelNames: ['state'], ...opts,
      collect() {
        for (const [state, n] of Object.entries(metrics.escalationStates?.() ?? {})) this.set({ state }, n);
      },
    }),
    // People answer in seconds to hours.
    escalationWait: new client.Histogram({ name: 'warden_escalation_wait_seconds', help: 'Time from an escalation\'s opening to its decision or timeout, by kind (tool_call, model_answer) and outcome (approved, rejected, timed_out).', labelNames: ['kind', 'state'], buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 14_400, 86_400], ...opts }),
    scopeChecks: new client.Counter({ name: 'warden_scope_checks_total', help: 'Tool calls checked against the agent\'s scopes, model-side and executed, by result (in_scope, out_of_scope: a scope_violation or unknown_tool): the agent\'s scope-honesty count.', labelNames: ['result'], ...opts }),
    scopeHonesty: new client.Gauge({
      name: 'warden_scope_honesty_ratio', help: 'Share of checked tool calls that stayed in scope since the sidecar started (1 when none were checked).', ...opts,
      async collect() {
        const values = (await metrics.scopeChecks.get()).values;
        const count = (result: string) => values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
        const inScope = count('in_scope');
        const total = inScope + count('out_of_scope');
        this.set(total === 0 ? 1 : inScope / total);
      },
    }),
    evalRuns: new client.Counter({ name: 'warden_eval_runs_total', help: 'Pact evaluations, by what started them (schedule, model_change, operator, rollback) and their outcome (no_drift, drift, inconclusive, no_baseline, failed).', labelNames: ['reason', 'state'], ...opts }),
    driftDeviation: new client.Gauge({ name: 'warden_drift_deviation', help: 'Last evaluation\'s change of each capability\'s metric from the baseline (candidate − baseline; drift is |value| ≥ the tolerance, 0.05 by default, with a significant test).', labelNames: ['capability'], ...opts }),
    evalValue: new client.Gauge({ name: 'warden_eval_value', help: 'Last evaluation\'s pass rate (or mean score) per pact capability.', labelNames: ['capability'], ...opts }),
    modelChanges: new client.Counter({ name: 'warden_model_changes_total', help: 'Served model or system_fingerprint changes seen in live responses for a model the pact uses (each starts an evaluation when evals.onModelChange is on).', ...opts }),
    passiveAlerts: new client.Counter({ name: 'warden_passive_alerts_total', help: 'Live-traffic windows that shifted from the baseline period, by metric (refusal_rate, tool_error_rate, json_validity_rate, response_chars, latency_ms, output_tokens).', labelNames: ['metric'], ...opts }),
    trustScore: new client.Gauge({
      name: 'warden_trust_score', help: 'Composite trust score in [0, 1]: pact pass rate (weight 0.5), scope honesty (0.25) and reliability (0.25), over the components that have data.', labelNames: ['agent'], ...opts,
      async collect() {
        const t = await metrics.trust?.();
        this.reset();
        if (t) this.set({ agent: t.agent }, t.score);
      },
    }),
    auditDiskBytes: new client.Gauge({
      name: 'warden_audit_disk_bytes', help: 'Bytes the audit log uses on disk (database and write-ahead log).', ...opts,
      collect() {
        if (metrics.auditPath) this.set(fileBytes(metrics.auditPath) + fileBytes(`${metrics.auditPath}-wal`));
      },
    }),
    modelLabel(model) {
      if (!model) return 'none';
      if (seenModels.has(model)) return model;
      if (seenModels.size >= MAX_MODEL_LABELS) return 'other';
      seenModels.add(model);
      return model;
    },
  };
  return metrics;
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
