// Deliberate retries for a model call: attempts read whole, scored for confidence and retried below
// the threshold (the best kept), or run n at once and judged by a jury, with a disagreement sent to
// a person. The agent sees nothing until an answer is chosen; the caller then replays that answer
// through the normal response path. Every score and vote goes into the call's record.
import { addUsage, zeroUsage, type Usage } from '../canonical.ts';
import { captureValue } from '../audit/call-record.ts';
import { EscalationConsumedError, EscalationRejectedError, EscalationTimeoutError, WardenError } from '../errors.ts';
import { toWardenError } from '../http/upstream-client.ts';
import type { EscalationQueue } from '../escalation/queue.ts';
import { argsHash, type KeptAnswer } from '../escalation/store.ts';
import type { Metrics } from '../metrics.ts';
import { partialResponse, readWhole, type Buffered } from './buffered.ts';
import { meanProbability } from './confidence.ts';
import { forward, type ForwardInput, type Target } from './forward.ts';
import { belowAgreement, judge } from './jury.ts';
import type { Deliberation } from './plan.ts';
import { recordable, type Pipeline } from '../pipeline.ts';
import type { Response } from '../canonical.ts';

export interface DeliberateInput {
  fwd: ForwardInput;
  /** The call's stages, for what the record and a reviewer may see of an answer (sanitized). */
  pipeline: Pipeline;
  plan: Deliberation;
  metrics: Metrics;
  escalations: EscalationQueue;
  /** Called before waiting for a person: the call's total upstream timeout no longer applies. */
  beforeHumanWait(): void;
}

export type Chosen = Buffered & { target: Target };

type Attempt = Chosen | { failed: unknown };

/** Runs the deliberation; the chosen answer (or the upstream's error answer), ready to replay. */
export async function deliberate(input: DeliberateInput): Promise<Chosen> {
  return input.plan.parallel ? jury(input) : scoredRetries(input);
}

async function attempt(input: DeliberateInput, n: number): Promise<Attempt> {
  const { fwd, plan } = input;
  const stream = fwd.request.stream;
  try {
    // The call's first attempt counts as its call in the retry budget; its others are not new calls.
    const { up, target } = await forward(n === 1 ? fwd : { ...fwd, again: true });
    const b = await readWhole(up, { adapter: fwd.adapter, stream, logprobs: plan.logprobs, selfReport: plan.selfReport, score: meanProbability });
    if (b.confidence !== undefined) input.metrics.confidence.observe(b.confidence);
    if (plan.confidence && b.response) {
      fwd.call.decisions.push({ stage: 'confidence', decision: 'scored', detail: { attempt: n, method: plan.confidence.method, score: b.confidence } });
    }
    return { ...b, target };
  } catch (err) {
    if (fwd.signal.aborted) throw err;
    const bytes = (err as { partial?: Buffer }).partial;
    // What the attempt said before it broke, as the agent would have received it (sanitized).
    const partial = bytes && shown(input, partialResponse(bytes, fwd.adapter, stream));
    fwd.call.decisions.push({ stage: 'retry', decision: 'attempt-failed', detail: { attempt: n, error: errorText(err), partial: partial && captureValue(fwd.call.policy, bytes!.length, () => partial) } });
    // A body that stalled or broke is the upstream's failure, told to the agent as one (502/504).
    const mapped = err instanceof WardenError ? err : toWardenError(fwd.targets[0].client.config, err, fwd.signal);
    return { failed: mapped instanceof WardenError ? mapped : err };
  }
}

/** An answer as the agent would receive it: what records and reviewers may see. */
function shown(input: DeliberateInput, r: Response): Response {
  return recordable(input.pipeline, input.fwd.call, r);
}

function errorText(err: unknown): string {
  return err instanceof WardenError ? err.code : err instanceof Error ? err.message : String(err);
}

function answered(a: Attempt): a is Chosen & { response: NonNullable<Chosen['response']> } {
  return !('failed' in a) && a.response !== undefined;
}

/** The first attempt that is an answer of any kind (an upstream error included), or the first failure rethrown. */
function fallbackOf(attempts: readonly Attempt[]): Chosen {
  const any = attempts.find((a): a is Chosen => !('failed' in a));
  if (any) return any;
  throw (attempts[0] as { failed: unknown }).failed;
}

/** Adds the usage of answers not chosen to the call, so its cost counts every attempt it paid for. */
function chargeDiscarded(input: DeliberateInput, attempts: readonly Attempt[], chosen: Chosen): void {
  const extra = attempts.filter((a) => a !== chosen && answered(a)).map((a) => (a as Chosen).response!.usage).filter((u): u is Usage => !!u);
  if (extra.length > 0) input.fwd.call.extraUsage = extra.reduce(addUsage, zeroUsage());
}

/** Asks until an answer reaches the confidence threshold or the retries are spent; keeps the best. */
async function scoredRetries(input: DeliberateInput): Promise<Chosen> {
  const { fwd, metrics } = input;
  const cfg = input.plan.confidence!;
  const attempts: Attempt[] = [];
  let best: Chosen | undefined;
  for (let i = 0; i <= cfg.maxRetries; i++) {
    if (i > 0) metrics.retries.inc({ reason: 'low_confidence' });
    const a = await attempt(input, i + 1);
    attempts.push(a);
    // An attempt that stalled or broke said nothing to the agent yet, so asking again is safe; an
    // upstream's error answer (its transport retries already spent) goes back as it is.
    if ('failed' in a) continue;
    if (!answered(a)) break;
    if (!best || (a.confidence ?? -1) > (best.confidence ?? -1)) best = a;
    // An answer that cannot be scored is taken as it is: retrying would not make it scoreable.
    if (a.confidence === undefined || a.confidence >= cfg.threshold) break;
  }
  const chosen = best ?? fallbackOf(attempts);
  const scores = attempts.map((a) => (answered(a) ? a.confidence ?? null : null));
  fwd.call.decisions.push({ stage: 'confidence', decision: 'chosen', detail: { method: cfg.method, threshold: cfg.threshold, scores, chosen: attempts.indexOf(chosen) + 1 } });
  if (attempts.length > 1) fwd.call.actions.push(`confidence-retried:${attempts.length - 1}`);
  if (best && (best.confidence ?? 1) < cfg.threshold) fwd.call.actions.push('low-confidence');
  chargeDiscarded(input, attempts, chosen);
  return chosen;
}

/** Runs n instances at once and lets the jury pick; a disagreement waits for a person. */
async function jury(input: DeliberateInput): Promise<Chosen> {
  const { fwd, metrics } = input;
  const { call } = fwd;
  const cfg = input.plan.parallel!;
  if (call.policy.mode === 'enforce' && call.policy.audit.bodies !== 'none') {
    const again = await reattached(input).catch((err) => {
      // Another sending of this call took the decision: this one runs its own jury.
      if (err instanceof EscalationConsumedError) return undefined;
      throw err;
    });
    if (again) return again;
  }
  const attempts = await Promise.all(Array.from({ length: cfg.n }, (_, i) => attempt(input, i + 1)));
  const answers = attempts.filter(answered);
  call.actions.push(`jury:${cfg.n}`);
  if (answers.length === 0) return fallbackOf(attempts);
  const select = cfg.select === 'confidence' && answers.some((a) => a.confidence !== undefined) ? 'confidence' : 'majority';
  const verdict = judge(answers, select);
  // Each group is spoken for by its first member; the winning group by the jury's pick.
  const groups = verdict.groups.map((g, i) => (i === 0 ? [verdict.winner, ...g.filter((m) => m !== verdict.winner)] : g));
  let chosen: Chosen = answers[verdict.winner];
  // Failed instances count against agreement: a jury where most members could not answer has not agreed.
  const agreement = groups[0].length / cfg.n;
  const keepsBodies = call.policy.audit.enabled && call.policy.audit.bodies !== 'none';
  const detail = {
    n: cfg.n, answered: answers.length, select, agreement, threshold: cfg.escalateBelowAgreement,
    votes: groups.map((g) => ({ count: g.length, answer: keepsBodies ? preview(shown(input, answers[g[0]].response!)) : undefined, confidence: answers[g[0]].confidence })),
  };
  call.decisions.push({ stage: 'jury', decision: 'verdict', detail });
  if (belowAgreement(agreement, cfg.escalateBelowAgreement)) {
    metrics.juryDisagreements.inc();
    chosen = await escalate(input, answers, groups, agreement);
  }
  chargeDiscarded(input, attempts, chosen);
  return chosen;
}

function preview(r: Response): string {
  const text = r.toolCalls.length ? r.toolCalls.map((c) => `${c.name}(${c.arguments})`).join('; ') : r.text;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * Identifies a jury's call across requests: the agent, its session, where it goes (route, endpoint,
 * upstream) and the agent's exact request. The same call sent again (its request cut by a sidecar
 * restart or the agent's own timeout) attaches to the escalation its first sending opened, instead
 * of running a new jury and a new review.
 */
function juryKey(fwd: ForwardInput): string {
  const { call } = fwd;
  return `model:${call.agent.id}:${call.session ?? ''}:${call.route}:${call.endpoint}:${fwd.targets[0].client.config.name}:${argsHash(fwd.wire)}`;
}

/**
 * A call sent again while its jury waits for a person, or after the person decided: the pick among
 * the answers kept with the escalation, without asking the upstream again. Undefined: run the jury.
 */
async function reattached(input: DeliberateInput): Promise<Chosen | undefined> {
  const esc = input.escalations.attachable(juryKey(input.fwd));
  if (esc?.kind !== 'model_answer') return undefined;
  const kept = input.escalations.answers(esc.id).map((a) => keptChosen(input.fwd, a));
  if (kept.length === 0) return undefined;
  return awaitPick(input, esc.id, kept, esc.reason, 'attached');
}

function keptChosen(fwd: ForwardInput, a: KeptAnswer): Chosen {
  // The upstream that answered, as this policy knows it (the first target if it is gone since).
  const target = fwd.targets.find((t) => t.client.config.name === a.upstream && t.model === a.model) ?? fwd.targets[0];
  return { status: a.status, headers: a.headers, raw: a.raw, confidence: a.confidence, target };
}

/** Holds the call for a person to pick among the distinct answers (the jury's pick first). */
async function escalate(input: DeliberateInput, answers: readonly Chosen[], groups: readonly number[][], agreement: number): Promise<Chosen> {
  const { fwd, escalations } = input;
  const { call } = fwd;
  const reason = `the jury agreed at ${agreement.toFixed(2)}, below escalateBelowAgreement ${input.plan.parallel!.escalateBelowAgreement}`;
  // Monitor and research modes record what would have gone to a person, and never hold a call.
  if (call.policy.mode !== 'enforce') {
    call.decisions.push({ stage: 'escalation', decision: 'logged', detail: { reason, mode: call.policy.mode } });
    call.actions.push('unreviewed');
    return answers[groups[0][0]];
  }
  // The reviewer sees each distinct answer as the agent would receive it (sanitized).
  const candidates = groups.map((g) => {
    const r = shown(input, answers[g[0]].response!);
    return { text: r.text, toolCalls: r.toolCalls.length ? r.toolCalls : undefined, confidence: answers[g[0]].confidence, votes: g.length };
  });
  const picks = groups.map((g) => answers[g[0]]);
  // With audit.bodies: none the operator keeps model output off disk: nothing is kept, and a call sent
  // again runs its own jury (its key is its own request).
  const keep = call.policy.audit.bodies !== 'none';
  const kept = keep ? picks.map((c) => ({
    status: c.status, headers: c.headers, raw: c.raw, upstream: c.target.client.config.name, model: c.target.model, confidence: c.confidence,
  })) : [];
  let key = keep ? juryKey(fwd) : `model:${call.id}`;
  for (;;) {
    const esc = escalations.open({
      kind: 'model_answer', key, agent: call.agent.id, session: call.session, task: call.task, requestId: call.id,
      candidates, reason, timeoutMs: call.policy.escalation.timeoutMs,
    }, kept);
    const mine = esc.requestId === call.id;
    // An identical call already waits (sent twice at once): this one waits for the same person's pick,
    // among the answers that person saw.
    const theirs = mine ? [] : escalations.answers(esc.id).map((a) => keptChosen(fwd, a));
    if (!mine && theirs.length === 0) {
      // Nothing kept to map the pick onto (delivered meanwhile): this call is reviewed on its own.
      key = `model:${call.id}`;
      continue;
    }
    try {
      return await awaitPick(input, esc.id, mine ? picks : theirs, reason, mine ? 'opened' : 'attached');
    } catch (err) {
      // The other sending took the decision: this one needs its own review.
      if (err instanceof EscalationConsumedError) continue;
      throw err;
    }
  }
}

/** Waits for the person's decision on escalation `id`; the answer it picks among `kept` (in candidate order). */
async function awaitPick(input: DeliberateInput, id: string, kept: readonly Chosen[], reason: string, how: 'opened' | 'attached'): Promise<Chosen> {
  const { call } = input.fwd;
  call.decisions.push({ stage: 'escalation', decision: how, detail: { id, reason } });
  input.beforeHumanWait();
  const decision = await input.escalations.wait(id, input.fwd.signal);
  call.decisions.push({ stage: 'escalation', decision: decision.state, detail: { id, ...decision } });
  if (decision.state === 'approved') {
    call.actions.push('reviewed');
    return kept[Math.min(decision.choice ?? 0, kept.length - 1)];
  }
  if (decision.state === 'rejected') throw new EscalationRejectedError(id, decision.note);
  if (call.policy.escalation.onTimeout === 'unreviewed') {
    call.actions.push('unreviewed');
    return kept[0];
  }
  throw new EscalationTimeoutError(reason, id);
}
