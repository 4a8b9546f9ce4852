// Prometheus metrics on the admin listener. Labels are bounded: route, model (from the policy or the
// upstream's answer, capped), status, direction. Never task ids, session ids or user text.
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
  /** A model name safe to use as a label value. */
  modelLabel(model: string | undefined): string;
}

/** Creates a registry of its own, so several sidecars can live in one process (tests). */
export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'warden_' });
  const seenModels = new Set<string>();
  const opts = { registers: [registry] };
  return {
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
    modelLabel(model) {
      if (!model) return 'none';
      if (seenModels.has(model)) return model;
      if (seenModels.size >= MAX_MODEL_LABELS) return 'other';
      seenModels.add(model);
      return model;
    },
  };
}
