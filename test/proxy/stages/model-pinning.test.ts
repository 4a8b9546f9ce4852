import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModelPinning } from '../../../proxy/stages/model-pinning.ts';
import type { Request } from '../../../proxy/canonical.ts';
import type { CallContext, Outcome, Stage } from '../../../proxy/stage.ts';
import { testCall, testPolicy, testRequest } from '../../helpers/policy.ts';

const policy = testPolicy();
const stage = createModelPinning(policy);

// These stages answer synchronously; the cast keeps the assertions short.
const onRequest = (s: Stage, call: CallContext, req: Request) => s.onRequest!(call, req) as Outcome<Request>;

test('continue: a model without a pin goes as asked', () => {
  const call = testCall(policy);
  assert.deepEqual(onRequest(stage, call, testRequest({ model: 'gpt-4o-mini' })), { kind: 'continue' });
  assert.equal(call.modelSent, 'gpt-4o-mini');
});

test('continue: asking for the pinned snapshot itself changes nothing', () => {
  const call = testCall(policy);
  assert.equal((onRequest(stage, call, testRequest({ model: 'gpt-4o-2024-11-20' })) as { kind: string }).kind, 'continue');
});

test('rewrite: an alias goes upstream as the pinned snapshot, and says so', () => {
  const call = testCall(policy);
  const out = onRequest(stage, call, testRequest({ model: 'gpt-4o' }));
  assert.equal(out.kind, 'rewrite');
  assert.equal((out as { value: { model: string } }).value.model, 'gpt-4o-2024-11-20');
  assert.equal((out as { action?: string }).action, 'model-pinned');
  assert.equal(call.modelAsked, 'gpt-4o');
  assert.equal(call.modelSent, 'gpt-4o-2024-11-20');
});

test('the served model and fingerprint are recorded; a served model other than the pin is noted', () => {
  const call = testCall(policy);
  onRequest(stage, call, testRequest({ model: 'gpt-4o' }));
  stage.onResponse!(call, { text: '', toolCalls: [], model: 'gpt-4o-2024-11-20', systemFingerprint: 'fp_a' });
  assert.equal(call.modelServed, 'gpt-4o-2024-11-20');
  assert.equal(call.systemFingerprint, 'fp_a');
  assert.equal(call.decisions.some((d) => d.decision === 'served-model-differs'), false);
  stage.onStreamEnd!(call, { text: '', toolCalls: [], model: 'gpt-4o-2025-01-01' });
  assert.deepEqual(call.decisions.at(-1), { stage: 'model-pinning', decision: 'served-model-differs', detail: { pinned: 'gpt-4o-2024-11-20', served: 'gpt-4o-2025-01-01' } });
});

test('continue: a longer model name that merely starts with a pinned alias is not pinned', () => {
  const only4o = testPolicy({ models: { 'gpt-4o': { name: 'gpt-4o', pin: 'gpt-4o-2024-11-20' } } });
  const s = createModelPinning(only4o);
  for (const model of ['gpt-4o-mini', 'gpt-4o-2024-08-06', 'gpt-4o-audio-preview']) {
    const call = testCall(only4o);
    assert.equal((onRequest(s, call, testRequest({ model })) as { kind: string }).kind, 'continue', model);
    assert.equal(call.modelSent, model);
  }
});
