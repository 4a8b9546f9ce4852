// The shapes every part of behavioural pacts shares: a pact as loaded (validated once, then frozen),
// what one trial observed, and what a run, a baseline and a drift decision hold. One file, so the
// loader, the runner, the statistics and the sidecar's evaluator agree on them.

/** One message of an eval case, as the pact writes it. */
export interface PactMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A tool the case offers the model (OpenAI function shape; translated for Anthropic targets). */
export interface PactTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

/** An assertion, normalized from its YAML form (`{ contains: "30 days" }` → `{ kind: 'contains', … }`). */
export type Check =
  | { kind: 'contains'; text: string; ignoreCase: boolean }
  | { kind: 'not_contains'; text: string; ignoreCase: boolean }
  | { kind: 'regex'; source: string; flags: string }
  | { kind: 'equals'; text: string }
  /** The reply's text parsed as JSON must satisfy the schema. */
  | { kind: 'json_schema'; schema: Record<string, unknown> }
  /** The model must call `name`; `args` is a JSON Schema its parsed arguments must satisfy. */
  | { kind: 'tool_call'; name: string; args?: Record<string, unknown> }
  /** The reply is (true) or is not (false) a refusal. */
  | { kind: 'refusal'; expected: boolean }
  /** Bounds on the reply's length in characters. */
  | { kind: 'length'; min?: number; max?: number }
  | { kind: 'latency'; maxMs: number }
  | { kind: 'cost'; maxUsd: number }
  /** A judge model grades the reply against the criteria: score in [0, 1], passes at `passScore`. */
  | { kind: 'rubric'; criteria: string; model?: string; passScore: number };

export interface EvalCase {
  /** Stable within the pact: the case's `id` from YAML, else `<capability>#<index from 1>`. */
  readonly id: string;
  /** The model asked for (the pact's default unless the case names one). */
  readonly model: string;
  readonly messages: readonly PactMessage[];
  readonly tools: readonly PactTool[];
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly expect: readonly Check[];
}

export type Metric = 'pass_rate' | 'mean_score';

export interface Capability {
  readonly name: string;
  /** What the capability is, for people reading reports (the pact's `description`). */
  readonly description?: string;
  readonly metric: Metric;
  /** The metric's minimum: pass rate over cases × trials, or mean score in [0, 1]. */
  readonly threshold: number;
  readonly trials: number;
  /** The deviation from the baseline that counts as drift (absolute, on the metric's scale). */
  readonly tolerance: number;
  readonly cases: readonly EvalCase[];
}

export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface Pact {
  readonly file: string;
  /** SHA-256 of the pact file's bytes (hex): part of a baseline's identity. */
  readonly sha256: string;
  readonly agent: string;
  readonly model: string;
  /** The wire format cases are sent in: OpenAI chat completions or Anthropic messages. */
  readonly api: 'openai' | 'anthropic';
  /** Default tolerance (0.05). */
  readonly tolerance: number;
  /** The family-wise false-alarm rate of one drift decision, over its capabilities and looks (0.05). */
  readonly alpha: number;
  /** Sequential looks: an inconclusive capability is asked `trials` more times, up to this many rounds (3). */
  readonly looks: number;
  /** Trials in flight at once (4). */
  readonly concurrency: number;
  /** The judge for rubric checks that name no model; absent: the case's own model. */
  readonly judgeModel?: string;
  /** USD per million tokens, per model asked, for cost checks. */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  readonly capabilities: readonly Capability[];
}

/** What one trial got back from the target. */
export interface Observation {
  /** HTTP status; a non-2xx trial fails every check. */
  status: number;
  /** The error's message when the call failed (status, network or timeout). */
  error?: string;
  text: string;
  toolCalls: { name: string; arguments: string }[];
  finishReason?: string;
  /** The model the target says served the call, and its system_fingerprint (OpenAI). */
  model?: string;
  systemFingerprint?: string;
  latencyMs: number;
  usage?: { inputTokens: number; outputTokens: number };
  /** From the pact's prices and the usage; absent when either is missing. */
  costUsd?: number;
}

export interface CheckOutcome {
  /** e.g. `contains "30 days"`. */
  check: string;
  pass: boolean;
  /** Why it failed (or the judge's reason). */
  reason?: string;
  /** Rubric checks: the judge's score. */
  score?: number;
}

export interface TrialResult {
  trial: number;
  pass: boolean;
  /** Rubric score when the case has a rubric (the mean of them), else the share of checks passed. */
  score: number;
  checks: CheckOutcome[];
  observation: Observation;
}

export interface CaseResult {
  id: string;
  /** Indexed by trial number from 0: trial j of a baseline pairs with trial j of a candidate. */
  trials: TrialResult[];
  passes: number;
  meanScore: number;
}

export interface CapabilityResult {
  name: string;
  metric: Metric;
  threshold: number;
  /** Pass rate over every trial, or mean score over cases. */
  value: number;
  /** 95% interval of the value: Wilson for pass rates, a bootstrap over cases for scores. */
  interval: [number, number];
  /** value ≥ threshold. */
  passed: boolean;
  cases: CaseResult[];
}

export interface RunResult {
  pact: { file: string; sha256: string; agent: string };
  target: string;
  startedAt: string;
  finishedAt: string;
  /** The served model and fingerprint most trials reported. */
  served: { model?: string; systemFingerprint?: string };
  capabilities: CapabilityResult[];
  /** Every capability met its threshold. */
  passed: boolean;
}

/** A certified baseline: what the agent did when someone vouched for it, and under which model. */
export interface Baseline {
  id: string;
  agent: string;
  certifiedAt: string;
  pact: { file: string; sha256: string };
  /** The pact's model (alias) and the snapshot the policy pinned it to at certification, if any. */
  model: { asked: string; pin?: string; served?: string; systemFingerprint?: string };
  /** SHA-256 of the cases' messages and tools (the prompts), and of the policy, when known. */
  promptSha256: string;
  policySha256?: string;
  /** The smallest change in each capability's metric the baseline can detect (α, 80% power). */
  mde: Record<string, number>;
  run: RunResult;
}

export type DriftState = 'no_drift' | 'drift' | 'inconclusive';

export interface CaseRegression {
  id: string;
  baseline: { passes: number; trials: number };
  candidate: { passes: number; trials: number };
}

export interface CapabilityDrift {
  name: string;
  metric: Metric;
  state: DriftState;
  /** candidate − baseline, on the metric's scale. */
  delta: number;
  /** The interval of delta at the capability's corrected level. */
  interval: [number, number];
  /** The test's p-value (McNemar exact for pass rates, paired bootstrap for scores). */
  p: number;
  /** The level this capability's test was held to after Holm's correction and the look's share of alpha. */
  alphaUsed: number;
  tolerance: number;
  baselineValue: number;
  candidateValue: number;
  /** Paired trials (pass rates) or cases (scores) the decision rests on. */
  n: number;
  looks: number;
  /** Cases that fell by at least two passes out of their trials (3/3 → 1/3), even when the capability holds. */
  regressions: CaseRegression[];
}

export interface DriftReport {
  baselineId: string;
  at: string;
  served: { model?: string; systemFingerprint?: string };
  /** The worst state over capabilities: drift > inconclusive > no_drift. */
  state: DriftState;
  capabilities: CapabilityDrift[];
  candidate: RunResult;
}

/** Grades a reply against a rubric's criteria through a judge model: score in [0, 1] and a reason. */
export type Judge = (input: { model: string; criteria: string; evalCase: EvalCase; observation: Observation }) => Promise<{ score: number; reason: string }>;
