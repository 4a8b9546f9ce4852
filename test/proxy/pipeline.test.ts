import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidRequestError } from '../../proxy/errors.ts';
import { runRequest, runResponse, runStreamEvent, type Pipeline } from '../../proxy/pipeline.ts';
import { CONTINUE, reply, rewrite, type Stage } from '../../proxy/stage.ts';
import { testCall, testPolicy, testRequest } from '../helpers/policy.ts';

const policy = testPolicy();
const seen: string[] = [];
const tag = (name: string): Stage => ({ name, onRequest: () => (seen.push(name), CONTINUE) });

test('stages run in order; a rewrite is passed on and reported', async () => {
  seen.length = 0;
  const p: Pipeline = { stages: [tag('a'), { name: 'up', onRequest: (_c, r) => rewrite({ ...r, model: 'x' }, 'upped') }, { name: 'async', onRequest: async (_c, r) => (seen.push(r.model), CONTINUE) }] };
  const call = testCall(policy);
  const out = await runRequest(p, call, testRequest());
  assert.deepEqual(seen, ['a', 'x']);
  assert.ok('value' in out && out.changed && out.value.model === 'x');
  assert.deepEqual(call.actions, ['upped']);
});

test('unchanged requests report changed: false (so the original bytes are forwarded)', async () => {
  const out = await runRequest({ stages: [tag('a')] }, testCall(policy), testRequest());
  assert.ok('value' in out && !out.changed);
});

test('a reply short-circuits: later stages do not run, the decision is recorded', async () => {
  seen.length = 0;
  const err = new InvalidRequestError('nope');
  const call = testCall(policy);
  const out = await runResponse({ stages: [{ name: 'stop', onResponse: () => reply(err) }, { name: 'after', onResponse: () => (seen.push('after'), CONTINUE) }] }, call, { text: '', toolCalls: [] });
  assert.deepEqual(out, { reply: err });
  assert.deepEqual(seen, []);
  assert.deepEqual(call.decisions, [{ stage: 'stop', decision: 'reply', detail: { hook: 'onResponse', code: 'WARDEN_ERR_INVALID_REQUEST' } }]);
});

test('a fault in a stage propagates as an exception (the server turns it into a 500)', async () => {
  const p: Pipeline = { stages: [{ name: 'broken', onRequest: () => { throw new Error('bug'); } }] };
  await assert.rejects(runRequest(p, testCall(policy), testRequest()), /bug/);
});

test('stream events: a dropped event stops later stages from seeing it', () => {
  seen.length = 0;
  const p: Pipeline = { stages: [{ name: 'drop', onStreamEvent: () => rewrite(null) }, { name: 'after', onStreamEvent: () => (seen.push('after'), CONTINUE) }] };
  assert.deepEqual(runStreamEvent(p, testCall(policy), { type: 'text', index: 0, text: 'x' }), []);
  assert.deepEqual(seen, []);
});
