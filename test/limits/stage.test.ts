// The limits stage on its own: continue under a limit (the hold left for the settlement), short-circuit
// with a 429 over it, monitor mode and rules.limit_exceeded: log record the hit and continue, and a
// fault in the limiter propagates (the pipeline answers 500). The stage never rewrites a request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenCounter } from '../../proxy/context/tokens.ts';
import { BudgetExceededError, RateLimitedError } from '../../proxy/errors.ts';
import { HOLD, Limiter } from '../../proxy/limits/limiter.ts';
import { SpendStore } from '../../proxy/limits/spend-store.ts';
import { createLimits, DEFAULT_OUTPUT_RESERVATION, reservationOf } from '../../proxy/stages/limits.ts';
import { DEFAULT_RULES } from '../../policies/normalize.ts';
import type { LimitsConfig, Policy } from '../../policies/types.ts';
import type { Request } from '../../proxy/canonical.ts';
import type { CallContext, Outcome, Stage } from '../../proxy/stage.ts';
import { testCall, testPolicy, testRequest } from '../helpers/policy.ts';

const tokens = createTokenCounter();

/** The stage's request hook, which answers synchronously. */
function run(stage: Stage, call: CallContext, req: Request): Outcome<Request> {
  return stage.onRequest!(call, req) as Outcome<Request>;
}

function setup(limits: Partial<LimitsConfig>, overrides: Partial<Policy> = {}) {
  const spend = new SpendStore(':memory:');
  const refused: string[] = [];
  const limiter = new Limiter({ spend, onRefused: (l) => refused.push(l) });
  const policy = testPolicy({ limits: { maxBodyBytes: 1_000_000, ...limits }, ...overrides });
  return { stage: createLimits(policy, { limiter, tokens }), policy, limiter, spend, refused };
}

test('continue: under the limit the request goes unchanged, and the call holds its reservation', () => {
  const { stage, policy } = setup({ tokensPerMinute: 100_000, concurrent: 4 });
  const call = testCall(policy);
  const req = testRequest({ maxOutputTokens: 50 });
  const out = run(stage, call, req);
  assert.equal(out.kind, 'continue');
  const hold = call.state.get(HOLD) as { reserved: number; slot?: { n: number } };
  assert.equal(hold.reserved, reservationOf(tokens, call, req));
  assert.equal(hold.slot?.n, 1);
  assert.deepEqual(call.decisions, []);
});

test('short-circuit: over the limit, a 429 RateLimitedError naming the limit, with Retry-After; counted', () => {
  const { stage, policy, refused } = setup({ requestsPerMinute: 1 });
  run(stage, testCall(policy), testRequest());
  const call = testCall(policy);
  const out = run(stage, call, testRequest());
  assert.equal(out.kind, 'reply');
  const err = (out as { error: RateLimitedError }).error;
  assert.ok(err instanceof RateLimitedError);
  assert.deepEqual([err.status, err.code, err.type, err.retryAfterSeconds], [429, 'WARDEN_ERR_RATE_LIMITED', 'warden_rate_limited', 60]);
  assert.match(err.message, /limits\.requestsPerMinute is 1/);
  assert.deepEqual(call.decisions, [{ stage: 'limits', decision: 'limited', detail: { limit: 'requests_per_minute', key: 'limits.requestsPerMinute', value: 1, retryAfterSeconds: 60, action: 'block' } }]);
  assert.deepEqual(call.violations.map((v) => [v.kind, v.action]), [['limit_exceeded', 'block']]);
  assert.deepEqual(refused, ['requests_per_minute']);
  assert.equal(call.state.get(HOLD), undefined);
});

test('short-circuit: a spent budget is a BudgetExceededError', () => {
  const { stage, policy, spend } = setup({ usdPerDay: 0.5 });
  spend.add(new Date().toISOString().slice(0, 10), policy.agent.id, undefined, 0.5);
  const out = run(stage, testCall(policy), testRequest());
  const err = (out as { error: BudgetExceededError }).error;
  assert.ok(err instanceof BudgetExceededError);
  assert.deepEqual([err.status, err.code, err.type], [429, 'WARDEN_ERR_BUDGET_EXCEEDED', 'warden_budget_exceeded']);
  assert.ok(err.retryAfterSeconds! >= 1 && err.retryAfterSeconds! <= 86_400);
});

test('monitor mode, and rules.limit_exceeded: log, record the hit and let the call through', () => {
  for (const overrides of [{ mode: 'monitor' as const }, { rules: { ...DEFAULT_RULES, limit_exceeded: 'log' as const } }]) {
    const { stage, policy, refused } = setup({ requestsPerMinute: 1 }, overrides);
    run(stage, testCall(policy), testRequest());
    const call = testCall(policy);
    assert.equal(run(stage, call, testRequest()).kind, 'continue');
    assert.equal((call.decisions[0].detail as { action: string }).action, 'log');
    assert.deepEqual(call.violations.map((v) => [v.kind, v.action]), [['limit_exceeded', 'log']]);
    assert.deepEqual(refused, [], 'a 429 that was not sent is not counted as one');
  }
});

test('rules.limit_exceeded: escalate blocks (a limit is not a call a person could approve)', () => {
  const { stage, policy } = setup({ requestsPerMinute: 1 }, { rules: { ...DEFAULT_RULES, limit_exceeded: 'escalate' } });
  run(stage, testCall(policy), testRequest());
  assert.equal(run(stage, testCall(policy), testRequest()).kind, 'reply');
});

test('the reservation: counted input plus max_tokens, or the default; embeddings reserve no output', () => {
  const call = testCall(testPolicy());
  const input = tokens.countRequest('gpt-4o', 'openai', testRequest());
  assert.equal(reservationOf(tokens, call, testRequest({ maxOutputTokens: 200 })), input + 200);
  assert.equal(reservationOf(tokens, call, testRequest()), input + DEFAULT_OUTPUT_RESERVATION);
  assert.equal(reservationOf(tokens, call, testRequest({ kind: 'embeddings', messages: [] })), 0);
});

test('fault: a limiter whose store fails throws, and the pipeline turns that into a 500', () => {
  const { stage, policy, spend } = setup({ usdPerDay: 1 });
  spend.close();
  assert.throws(() => run(stage, testCall(policy), testRequest()), /database connection is not open/);
});
