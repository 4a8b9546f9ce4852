// Checking one trial's observation against its case's assertions. Checks are plain data (the Check
// union, from the pact loader); this file gives each kind its meaning, a short label for reports, and
// a reason when it fails. A failed call fails every check, and a judge that breaks fails its rubric
// check, never the run: a run measures the agent, and one bad trial is a data point.
import type { ValidateFunction } from 'ajv';
import { describeErrors, toolSchemaCompiler } from '../policies/tool-schema.ts';
import { isRefusal } from './refusal.ts';
import type { Check, CheckOutcome, EvalCase, Judge, Observation } from './types.ts';

export interface CheckContext {
  judge?: Judge;
  evalCase: EvalCase;
  /** The pact's judge model, for rubric checks that name none; absent: the case's own model. */
  defaultJudgeModel?: string;
}

export interface ChecksResult {
  /** Every check passed. */
  pass: boolean;
  /** The mean rubric score when the checks include a rubric, else the share of checks passed. */
  score: number;
  checks: CheckOutcome[];
}

// Each schema compiles once per Check object (a pact's checks are frozen and live as long as the
// pact), and each in its own ajv instance so a reloaded pact's schemas are not kept by a shared cache.
const compiled = new WeakMap<Check, ValidateFunction>();

function validatorFor(check: Check, schema: Record<string, unknown>): ValidateFunction {
  let validate = compiled.get(check);
  if (!validate) compiled.set(check, (validate = toolSchemaCompiler()(schema)));
  return validate;
}

const regexes = new WeakMap<Check, RegExp>();

function regexFor(check: Extract<Check, { kind: 'regex' }>): RegExp {
  let re = regexes.get(check);
  // g and y would make test() remember where it stopped, so one trial would move the next one's start.
  if (!re) regexes.set(check, (re = new RegExp(check.source, check.flags.replace(/[gy]/g, ''))));
  return re;
}

function quote(text: string, max = 40): string {
  const s = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return JSON.stringify(s);
}

/** A short human label for a check, as reports show it: `contains "30 days"`, `tool_call lookup_order`. */
export function checkLabel(check: Check): string {
  switch (check.kind) {
    case 'contains':
    case 'not_contains':
      return `${check.kind} ${quote(check.text)}${check.ignoreCase ? ' (any case)' : ''}`;
    case 'regex':
      return `regex /${check.source.length > 40 ? `${check.source.slice(0, 39)}…` : check.source}/${check.flags}`;
    case 'equals':
      return `equals ${quote(check.text)}`;
    case 'json_schema':
      return 'json_schema';
    case 'tool_call':
      return `tool_call ${check.name}`;
    case 'refusal':
      return check.expected ? 'refusal' : 'no refusal';
    case 'length':
      if (check.min !== undefined && check.max !== undefined) return `length ${check.min}..${check.max}`;
      return check.min !== undefined ? `length ≥${check.min}` : `length ≤${check.max}`;
    case 'latency':
      return `latency ≤${check.maxMs} ms`;
    case 'cost':
      return `cost ≤$${check.maxUsd}`;
    case 'rubric':
      return `rubric (≥${check.passScore})`;
  }
}

// Models often wrap JSON in a Markdown fence even when told not to; the content is what is judged.
const FENCE = /```(?:json|JSON)?[ \t]*\r?\n([\s\S]*?)\r?\n?```/;

/** The reply parsed as JSON, or the content of its first ``` fenced block; undefined when neither parses. */
export function parseReplyJson(text: string): { value: unknown } | undefined {
  for (const candidate of [text.trim(), FENCE.exec(text)?.[1]?.trim()]) {
    if (candidate === undefined || candidate === '') continue;
    try {
      return { value: JSON.parse(candidate) };
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}

function parseArgs(args: string): { value: unknown } | undefined {
  // OpenAI sends "" for a call without arguments.
  if (args.trim() === '') return { value: {} };
  try {
    return { value: JSON.parse(args) };
  } catch {
    return undefined;
  }
}

type Verdict = { pass: boolean; reason?: string };

function schemaVerdict(check: Check, schema: Record<string, unknown>, value: unknown): Verdict {
  let validate: ValidateFunction;
  try {
    validate = validatorFor(check, schema);
  } catch (err) {
    return { pass: false, reason: `the schema does not compile: ${(err as Error).message}` };
  }
  if (validate(value)) return { pass: true };
  return { pass: false, reason: describeErrors(validate.errors).join('; ') };
}

function toolCallVerdict(check: Extract<Check, { kind: 'tool_call' }>, obs: Observation): Verdict {
  const calls = obs.toolCalls.filter((c) => c.name === check.name);
  if (calls.length === 0) {
    const made = obs.toolCalls.map((c) => c.name);
    return { pass: false, reason: `no call to ${check.name} (${made.length ? `calls: ${made.join(', ')}` : 'no tool calls'})` };
  }
  if (!check.args) return { pass: true };
  const reasons: string[] = [];
  for (const call of calls) {
    const args = parseArgs(call.arguments);
    if (!args) {
      reasons.push(`arguments are not JSON: ${quote(call.arguments, 60)}`);
      continue;
    }
    const verdict = schemaVerdict(check, check.args, args.value);
    if (verdict.pass) return verdict;
    reasons.push(`arguments ${verdict.reason}`);
  }
  return { pass: false, reason: `${check.name} was called, but ${reasons.join(' | ')}` };
}

function verdict(check: Check, obs: Observation): Verdict {
  const text = obs.text;
  switch (check.kind) {
    case 'contains':
    case 'not_contains': {
      const found = check.ignoreCase ? text.toLowerCase().includes(check.text.toLowerCase()) : text.includes(check.text);
      if (found === (check.kind === 'contains')) return { pass: true };
      return { pass: false, reason: found ? `the reply contains ${quote(check.text)}` : `${quote(check.text)} is not in the reply` };
    }
    case 'regex': {
      let re: RegExp;
      try {
        re = regexFor(check);
      } catch (err) {
        return { pass: false, reason: (err as Error).message };
      }
      return re.test(text) ? { pass: true } : { pass: false, reason: `the reply does not match /${check.source}/${check.flags}` };
    }
    case 'equals':
      return text.trim() === check.text.trim() ? { pass: true } : { pass: false, reason: `the reply is ${quote(text.trim(), 60)}` };
    case 'json_schema': {
      const parsed = parseReplyJson(text);
      if (!parsed) return { pass: false, reason: `the reply is not JSON: ${quote(text.trim(), 60)}` };
      const v = schemaVerdict(check, check.schema, parsed.value);
      return v.pass ? v : { pass: false, reason: `the reply's JSON does not fit the schema: ${v.reason}` };
    }
    case 'tool_call':
      return toolCallVerdict(check, obs);
    case 'refusal': {
      const refused = isRefusal(text);
      if (refused === check.expected) return { pass: true };
      return { pass: false, reason: refused ? 'the reply is a refusal' : 'the reply is not a refusal' };
    }
    case 'length': {
      const n = text.length;
      if (check.min !== undefined && n < check.min) return { pass: false, reason: `the reply has ${n} characters, fewer than ${check.min}` };
      if (check.max !== undefined && n > check.max) return { pass: false, reason: `the reply has ${n} characters, more than ${check.max}` };
      return { pass: true };
    }
    case 'latency':
      return obs.latencyMs <= check.maxMs ? { pass: true } : { pass: false, reason: `took ${Math.round(obs.latencyMs)} ms, more than ${check.maxMs} ms` };
    case 'cost':
      // An unknown cost must not pass a cost bound silently: the price or the usage is missing.
      if (obs.costUsd === undefined) return { pass: false, reason: 'the cost is unknown (the target reported no usage, or the model has no price)' };
      return obs.costUsd <= check.maxUsd ? { pass: true } : { pass: false, reason: `cost $${obs.costUsd.toPrecision(3)}, more than $${check.maxUsd}` };
    case 'rubric':
      throw new Error('rubric checks are graded by the judge'); // handled by grade()
  }
}

async function grade(check: Extract<Check, { kind: 'rubric' }>, obs: Observation, ctx: CheckContext): Promise<CheckOutcome> {
  const label = checkLabel(check);
  if (!ctx.judge) return { check: label, pass: false, score: 0, reason: 'no judge is configured for rubric checks' };
  const model = check.model ?? ctx.defaultJudgeModel ?? ctx.evalCase.model;
  try {
    const { score, reason } = await ctx.judge({ model, criteria: check.criteria, evalCase: ctx.evalCase, observation: obs });
    if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) {
      return { check: label, pass: false, score: 0, reason: `the judge (${model}) gave an invalid score: ${String(score)}` };
    }
    return { check: label, pass: score >= check.passScore, score, reason };
  } catch (err) {
    return { check: label, pass: false, score: 0, reason: `the judge (${model}) failed: ${(err as Error)?.message ?? String(err)}` };
  }
}

/** Whether the call itself failed: a non-2xx status or a transport error. */
export function callFailed(obs: Observation): boolean {
  return obs.error !== undefined || obs.status < 200 || obs.status >= 300;
}

/** Runs every check against one trial's observation: pass when all pass, with a score and a reason for each failure. */
export async function runChecks(checks: readonly Check[], obs: Observation, ctx: CheckContext): Promise<ChecksResult> {
  if (callFailed(obs)) {
    const reason = obs.error ?? `the target answered HTTP ${obs.status}`;
    const outcomes = checks.map((c) => ({ check: checkLabel(c), pass: false, reason, ...(c.kind === 'rubric' && { score: 0 }) }));
    return { pass: false, score: 0, checks: outcomes };
  }
  const outcomes = await Promise.all(checks.map(async (c): Promise<CheckOutcome> => {
    if (c.kind === 'rubric') return grade(c, obs, ctx);
    const v = verdict(c, obs);
    return { check: checkLabel(c), pass: v.pass, ...(v.reason !== undefined && { reason: v.reason }) };
  }));
  const rubricScores = outcomes.filter((o, i) => checks[i].kind === 'rubric').map((o) => o.score ?? 0);
  const passed = outcomes.filter((o) => o.pass).length;
  const score = rubricScores.length > 0
    ? rubricScores.reduce((a, b) => a + b, 0) / rubricScores.length
    : outcomes.length > 0 ? passed / outcomes.length : 1;
  return { pass: passed === outcomes.length, score, checks: outcomes };
}
