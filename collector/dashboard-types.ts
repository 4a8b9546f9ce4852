// What the collector's dashboard pages show, as plain data: dashboard-data.ts computes it from the
// store (either dialect), the pages in dashboard/ render it. Money is USD, times are ISO-8601 UTC,
// days are YYYY-MM-DD (UTC).

/** A time range: inclusive from, exclusive to (ISO timestamps). */
export interface Range {
  from: string;
  to: string;
}

/** One UTC day of model calls. */
export interface DailyRow {
  day: string;
  calls: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** Calls, tokens and cost grouped by one key (an agent, a task, a model): the /v1/cost API's rows. */
export type { CostRow } from './store.ts';
import type { CostRow } from './store.ts';

/** One agent on the fleet overview. */
export interface AgentRow {
  agent: string;
  /** The newest agent version seen. */
  version?: string;
  calls: number;
  errors: number;
  costToday: number;
  costMonth: number;
  violations: number;
  lastSeen: string;
}

export interface FleetOverview {
  /** "Today" and "this month" are UTC, from `now`. */
  now: string;
  agents: number;
  callsToday: number;
  errorsToday: number;
  costToday: number;
  callsMonth: number;
  errorsMonth: number;
  costMonth: number;
  /** The last 30 UTC days, oldest first, every day present (zeros where nothing happened). */
  daily: DailyRow[];
  agentRows: AgentRow[];
  /** Integrity alerts in all (the alerts page lists them). */
  alerts: number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface KindCount {
  kind: string;
  /** The tool it was about, where there is one (hallucination flags, violations on tools). */
  tool?: string;
  count: number;
}

/** A drift record: a pact evaluation that confirmed drift, or a passive alert on live traffic. */
export interface DriftEvent {
  ts: string;
  kind: 'pact' | 'passive';
  /** One line a person can read: which capabilities or metrics moved, and by how much. */
  summary: string;
  logId: string;
  seq: number;
}

export interface TrustPoint {
  ts: string;
  score: number;
}

export interface EscalationRow {
  ts: string;
  id: string;
  kind: string;
  tool?: string;
  /** approved | rejected | edited | expired | … as the sidecar recorded it; "pending" while only opened. */
  outcome: string;
  by?: string;
  waitedMs?: number;
  task?: string;
  logId: string;
  seq: number;
}

export interface AgentDetail {
  agent: string;
  range: Range;
  versions: string[];
  calls: number;
  errors: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  daily: DailyRow[];
  costByTask: CostRow[];
  costByModel: CostRow[];
  latency: LatencySummary;
  violations: KindCount[];
  hallucinations: KindCount[];
  drift: DriftEvent[];
  trust: TrustPoint[];
  escalations: EscalationRow[];
  /** Escalations by outcome. */
  escalationOutcomes: KindCount[];
}

/** One row of the audit search. */
export interface RecordRow {
  logId: string;
  seq: number;
  ts: string;
  event: string;
  agent?: string;
  session?: string;
  task?: string;
  model?: string;
  status?: number;
  latencyMs?: number;
  costUsd?: number;
  verified: boolean;
}

export interface RecordPage {
  rows: RecordRow[];
  /** The cursor for the next page ("logId:seq"), or null at the end. */
  next: string | null;
}

/** A price the collector applies to model calls the sidecar did not price (USD per million tokens). */
export interface Price {
  model: string;
  inputPerMTok: number;
  outputPerMTok: number;
  /** When this price took effect; records ingested before it keep the price they were stored with. */
  since: string;
}
