// From a pact document that passed the schema and the semantic checks to the runtime Pact: every
// default filled in here, once, with assertions turned from their YAML form into the Check union, and
// the whole thing frozen so no run can change what the next one measures.
import { caseId } from './pact-checks.ts';
import type { Capability, Check, EvalCase, Metric, ModelPrice, Pact, PactMessage, PactTool } from './types.ts';

type Raw = Record<string, any>;

const DEFAULTS = {
  api: 'openai',
  tolerance: 0.05, // absolute, on the metric's scale
  alpha: 0.05, // family-wise false-alarm rate of one drift decision
  looks: 3, // sequential rounds before a capability is left inconclusive
  concurrency: 4, // trials in flight
  metric: 'pass_rate',
  trials: 3, // per case per run
  rubricPass: 0.5, // judge score at which a rubric check passes
} as const;

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** One YAML assertion (a one-key map) as a Check. */
export function toCheck(a: Raw): Check {
  const [kind, v] = Object.entries(a)[0];
  switch (kind) {
    case 'contains':
    case 'not_contains':
      return typeof v === 'string' ? { kind, text: v, ignoreCase: false } : { kind, text: v.text, ignoreCase: v.ignoreCase ?? false };
    case 'regex':
      return typeof v === 'string' ? { kind, source: v, flags: '' } : { kind, source: v.pattern, flags: v.flags ?? '' };
    case 'equals':
      return { kind, text: v };
    case 'json_schema':
      return { kind, schema: v };
    case 'tool_call':
      return v.args === undefined ? { kind, name: v.name } : { kind, name: v.name, args: v.args };
    case 'refusal':
      return { kind, expected: v };
    case 'length':
      return { kind, ...(v.min !== undefined && { min: v.min }), ...(v.max !== undefined && { max: v.max }) };
    case 'latency_ms':
      return { kind: 'latency', maxMs: v.max };
    case 'cost_usd':
      return { kind: 'cost', maxUsd: v.max };
    case 'rubric':
      if (typeof v === 'string') return { kind, criteria: v, passScore: DEFAULTS.rubricPass };
      return { kind, criteria: v.criteria, ...(v.model !== undefined && { model: v.model }), passScore: v.pass ?? DEFAULTS.rubricPass };
    default:
      // The schema admits only the kinds above; reaching here means schema and loader disagree.
      throw new Error(`unknown assertion kind "${kind}"`);
  }
}

function toCase(capability: string, index: number, c: Raw, pactModel: string): EvalCase {
  const messages: PactMessage[] = c.messages.map((m: Raw) => ({ role: m.role, content: m.content }));
  const tools: PactTool[] = (c.tools ?? []).map((t: Raw) => ({
    name: t.name,
    ...(t.description !== undefined && { description: t.description }),
    parameters: t.parameters,
  }));
  return {
    id: caseId(capability, index, c.id),
    model: c.model ?? pactModel,
    messages,
    tools,
    ...(c.maxTokens !== undefined && { maxTokens: c.maxTokens }),
    ...(c.temperature !== undefined && { temperature: c.temperature }),
    expect: c.expect.map(toCheck),
  };
}

/** Builds the frozen runtime Pact from a document that passed the schema and the semantic checks. */
export function normalizePact(doc: Raw, source: { file: string; sha256: string }): Pact {
  const tolerance: number = doc.tolerance ?? DEFAULTS.tolerance;
  const capabilities: Capability[] = Object.entries<Raw>(doc.capabilities).map(([name, cap]) => ({
    name,
    ...(cap.description !== undefined && { description: cap.description }),
    metric: (cap.metric ?? DEFAULTS.metric) as Metric,
    threshold: cap.threshold,
    trials: cap.trials ?? DEFAULTS.trials,
    tolerance: cap.tolerance ?? tolerance,
    cases: cap.cases.map((c: Raw, i: number) => toCase(name, i, c, doc.model)),
  }));
  const prices: Record<string, ModelPrice> = {};
  for (const [model, p] of Object.entries<Raw>(doc.prices ?? {})) prices[model] = { inputPerMTok: p.inputPerMTok, outputPerMTok: p.outputPerMTok };
  return deepFreeze({
    file: source.file,
    sha256: source.sha256,
    agent: doc.agent,
    model: doc.model,
    api: doc.api ?? DEFAULTS.api,
    tolerance,
    alpha: doc.alpha ?? DEFAULTS.alpha,
    looks: doc.looks ?? DEFAULTS.looks,
    concurrency: doc.concurrency ?? DEFAULTS.concurrency,
    ...(doc.judge?.model !== undefined && { judgeModel: doc.judge.model }),
    prices,
    capabilities,
  });
}
