import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costOf, createUsageMetering } from '../../../proxy/stages/usage-metering.ts';
import type { Request } from '../../../proxy/canonical.ts';
import type { CallContext, Outcome, Stage } from '../../../proxy/stage.ts';
import { testCall, testPolicy, testRequest } from '../../helpers/policy.ts';

const policy = testPolicy();
const stage = createUsageMetering(policy);
const usage = { inputTokens: 1_000, outputTokens: 500, cachedInputTokens: 200, cacheWriteTokens: 0 };

// These stages answer synchronously; the cast keeps the assertions short.
const onRequest = (s: Stage, call: CallContext, req: Request) => s.onRequest!(call, req) as Outcome<Request>;

test('cost follows the price table, cached tokens at their own price', () => {
  // 800 fresh × 2.5 + 200 cached × 1.25 + 500 out × 10, per million
  assert.equal(costOf(usage, { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 }), (800 * 2.5 + 200 * 1.25 + 500 * 10) / 1e6);
  assert.equal(costOf({ ...usage, cachedInputTokens: 0 }, { inputPerMTok: 3, outputPerMTok: 15 }), (1000 * 3 + 500 * 15) / 1e6);
});

test('continue: a non-streamed call is left alone and metered from the response', () => {
  const call = testCall(policy);
  assert.equal(onRequest(stage, call, testRequest()).kind, 'continue');
  stage.onResponse!(call, { text: 'x', toolCalls: [], model: 'gpt-4o-2024-11-20', usage });
  assert.deepEqual(call.usage, usage);
  assert.equal(call.costUsd, costOf(usage, policy.models['gpt-4o'].price!));
});

test('an absurd reported usage (1e308 tokens) leaves the cost unknown, not infinite; the context tokens are the reported input', () => {
  const call = testCall(policy);
  const huge = { ...usage, inputTokens: 1e308, cachedInputTokens: 0 };
  stage.onResponse!(call, { text: 'x', toolCalls: [], model: 'gpt-4o-2024-11-20', usage: huge });
  assert.equal(call.costUsd, undefined);
  assert.equal(call.contextTokens, 1e308);
  const fine = testCall(policy);
  stage.onResponse!(fine, { text: 'x', toolCalls: [], model: 'gpt-4o-2024-11-20', usage });
  assert.equal(fine.contextTokens, 1_000);
});

test('rewrite: a stream without usage asks for it, and the usage event is kept from the client', () => {
  const call = testCall(policy);
  const out = onRequest(stage, call, testRequest({ stream: true }));
  assert.equal(out.kind, 'rewrite');
  assert.equal((out as { value: { streamUsage: boolean } }).value.streamUsage, true);
  assert.deepEqual(stage.onStreamEvent!(call, { type: 'usage', usage }), { kind: 'rewrite', value: null, action: undefined });
  assert.deepEqual(stage.onStreamEvent!(call, { type: 'text', index: 0, text: 'a' }), { kind: 'continue' });
});

test('continue: a client that asked for usage, or a provider that always sends it, gets it untouched', () => {
  for (const req of [testRequest({ stream: true, streamUsage: true }), testRequest({ stream: true, streamUsageOptional: false })]) {
    const call = testCall(policy);
    assert.equal(onRequest(stage, call, req).kind, 'continue');
    assert.equal(stage.onStreamEvent!(call, { type: 'usage', usage }).kind, 'continue');
  }
});

test('usage.streamUsage: client never changes a request', () => {
  const passive = createUsageMetering(testPolicy({ usage: { streamUsage: 'client' } }));
  assert.equal(onRequest(passive, testCall(policy), testRequest({ stream: true })).kind, 'continue');
});

test('a served dated snapshot of an alias is priced by the alias; an unknown model has no cost', () => {
  const call = testCall(policy);
  stage.onResponse!(call, { text: '', toolCalls: [], model: 'gpt-4o-mini-2024-07-18', usage });
  assert.equal(call.costUsd, costOf(usage, policy.models['gpt-4o-mini'].price!));
  const unknown = testCall(policy);
  stage.onResponse!(unknown, { text: '', toolCalls: [], model: 'llama-3', usage });
  assert.equal(unknown.costUsd, undefined);
  assert.deepEqual(unknown.usage, usage);
});
