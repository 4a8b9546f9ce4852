// Context windowing tokenizes only what may need trimming: a request under the trigger by its upper
// bound goes unchanged without a count (and so without loading the tokenizer), a request that may be
// over it, or whose session already has a cut, is counted and trimmed as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Policy } from '../../policies/types.ts';
import type { Message } from '../../proxy/canonical.ts';
import { createTokenCounter, type TokenCounter } from '../../proxy/context/tokens.ts';
import { createContextWindow } from '../../proxy/stages/context-window.ts';
import { testCall, testPolicy, testRequest } from '../helpers/policy.ts';

const CONTEXT = {
  enabled: true, trigger: 0.8, target: 0.5, reserveOutputTokens: 100, marginTokens: 0, preserve: [], pinnedMaxTokens: 2000,
  toolResults: { keepLast: 3 }, window: { minRecentMessages: 2 }, memory: { enabled: false, topK: 5, maxTokens: 1000 },
  summarize: { enabled: false, ratio: 0.2, maxTokens: 800, timeoutMs: 20_000 },
} as Policy['context'];

function countingTokens(): TokenCounter & { counted: number } {
  const inner = createTokenCounter();
  const spy = { ...inner, counted: 0 };
  spy.countRequest = (...args) => {
    spy.counted++;
    return inner.countRequest(...args);
  };
  return spy;
}

const policy = testPolicy({ models: { 'gpt-4o-mini': { name: 'gpt-4o-mini', contextTokens: 1_100 } } as Policy['models'], context: CONTEXT });
const turn = (i: number): Message[] => [
  { role: 'user', text: `Question ${i}: ${'where is my parcel going next week? '.repeat(6)}` },
  { role: 'assistant', text: `Answer ${i}: ${'it is on its way to the depot. '.repeat(6)}` },
];

test('a request under the trigger by its byte bound is passed on without being tokenized', async () => {
  const tokens = countingTokens();
  const stage = createContextWindow(policy, { tokens });
  const messages = [{ role: 'system', text: 'You are a support agent.' } as Message, ...turn(1), { role: 'user', text: 'Thanks!' } as Message];
  const outcome = await stage.onRequest!({ ...testCall(policy), session: 's1' }, testRequest({ model: 'gpt-4o-mini', messages }));
  assert.equal(outcome.kind, 'continue');
  assert.equal(tokens.counted, 0);
});

test('a request that may be over the trigger is counted and trimmed, and its session stays counted', async () => {
  const tokens = countingTokens();
  const stage = createContextWindow(policy, { tokens });
  const long = [{ role: 'system', text: 'You are a support agent.' } as Message, ...Array.from({ length: 14 }, (_, i) => turn(i)).flat(), { role: 'user', text: 'And now?' } as Message];
  const call = { ...testCall(policy), session: 's2' };
  const trimmed = await stage.onRequest!(call, testRequest({ model: 'gpt-4o-mini', messages: long }));
  assert.ok(tokens.counted > 0);
  assert.equal(trimmed.kind, 'rewrite', 'the long conversation is trimmed');
  // The next, shorter-by-bound request of a session with a cut still gets its cut applied (counted).
  const before = tokens.counted;
  const next = await stage.onRequest!({ ...testCall(policy), session: 's2' }, testRequest({ model: 'gpt-4o-mini', messages: [...long, { role: 'assistant', text: 'Soon.' }, { role: 'user', text: 'Ok' }] }));
  assert.ok(tokens.counted > before);
  assert.equal(next.kind, 'rewrite');
});
