// The context memory and the unit splitter: what a window drops is kept per agent and session, found
// again by relevance, survives a reopen (a sidecar restart), and is erased on request; tool calls and
// their results stay together, and orphans are found in both directions.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Message } from '../../proxy/canonical.ts';
import { MemoryStore } from '../../proxy/context/memory.ts';
import { orphansOf, unitsOf } from '../../proxy/context/units.ts';
import { tempDataDir, WARDEN_BIN } from '../helpers/warden.ts';

test('memories are found by relevance, kept once, scoped to agent and session, and survive a reopen', () => {
  const dir = tempDataDir();
  const path = join(dir, 'memory.db');
  let store = new MemoryStore(path);
  store.store('bot', 's1', [
    { role: 'user', text: 'My order number is ORD-314159 and it has not arrived.' },
    { role: 'assistant', text: 'I am sorry to hear that; let me check the courier.' },
    { role: 'user', text: 'The blender I bought rattles.' },
  ]);
  // The same messages dropped again (every request resends the conversation) are not stored twice.
  assert.equal(store.store('bot', 's1', [{ role: 'user', text: 'The blender I bought rattles.' }]), 0);
  store.store('bot', 's2', [{ role: 'user', text: 'My order number is ORD-999999.' }]);
  store.store('other-bot', 's1', [{ role: 'user', text: 'order number ORD-000000' }]);
  store.close();

  store = new MemoryStore(path);
  const found = store.recall('bot', 's1', 'What was my order number again?', 5);
  assert.equal(found[0].text, 'My order number is ORD-314159 and it has not arrived.');
  assert.ok(found.every((m) => !m.text.includes('ORD-999999') && !m.text.includes('ORD-000000')), 'other sessions and agents stay out');
  assert.deepEqual(store.recall('bot', 's1', 'the and of', 5), [], 'stop words alone recall nothing');
  assert.deepEqual(store.recall('bot', 's1', '" OR * NEAR(', 5), [], 'query syntax in user text is inert');
  assert.equal(store.list('bot', 's1').length, 3);
  store.close();

  // The CLI erases a session: gone from the store and from recall.
  const out = execFileSync(process.execPath, [WARDEN_BIN, 'memory', 'delete', '--agent', 'bot', '--session', 's1', '--data-dir', dir], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { agent: 'bot', session: 's1', erased: 3 });
  store = new MemoryStore(path);
  assert.deepEqual(store.recall('bot', 's1', 'order number', 5), []);
  assert.deepEqual(store.list('bot', 's1'), []);
  assert.equal(store.list('bot', 's2').length, 1);
  // The agent still holds its conversation and resends it; what was erased is not kept again.
  assert.equal(store.store('bot', 's1', [{ role: 'user', text: 'The blender I bought rattles.' }, { role: 'user', text: 'A new message.' }]), 1);
  store.close();
});

const user = (text: string): Message => ({ role: 'user', text });
const callMsg = (...ids: string[]): Message => ({ role: 'assistant', text: '', toolCalls: ids.map((id) => ({ id, name: 'lookup', arguments: '{}' })) });
const result = (id: string): Message => ({ role: 'tool', text: 'r', toolResults: [{ toolCallId: id, content: 'r' }] });

test('an assistant message with tool calls and all their results form one unit; orphans are found both ways', () => {
  const conversation = [user('a'), callMsg('c1', 'c2'), result('c1'), result('c2'), { role: 'assistant' as const, text: 'done' }, user('b')];
  assert.deepEqual(unitsOf(conversation).map((u) => u.messages.length), [1, 3, 1, 1]);
  assert.deepEqual(orphansOf(conversation), { calls: [], results: [] });
  assert.deepEqual(orphansOf([user('a'), result('c1')]), { calls: [], results: ['c1'] });
  assert.deepEqual(orphansOf([user('a'), callMsg('c1'), user('b')]), { calls: ['c1'], results: [] });
  assert.deepEqual(orphansOf([user('a'), callMsg('c1')]), { calls: [], results: [] }, 'a trailing call is the agent\'s next step');
});

test('the extractive fallback keeps instructions and exact values verbatim, within its cap', async () => {
  const { extractiveSummary } = await import('../../proxy/context/summarizer.ts');
  const text = extractiveSummary([
    user('Hi there. Please always answer in French. The weather is nice.'),
    { role: 'assistant', text: 'Sure. Your order ORD-314159 ships on 12 December.' },
    user('Thanks, that is all.'),
  ], undefined, 500);
  assert.equal(text, '- user: Please always answer in French.\n- assistant: Your order ORD-314159 ships on 12 December.');
  assert.ok(extractiveSummary([user('I must keep 1 2 3 4 5 6 7 8 9 forever.')], undefined, 10).length <= 10);
});

test('parallel calls given as separate items (the Responses API) are one unit with their results', () => {
  const items = [user('a'), callMsg('c1'), callMsg('c2'), result('c1'), result('c2'), user('b')];
  assert.deepEqual(unitsOf(items).map((u) => u.messages.length), [1, 4, 1]);
  assert.deepEqual(orphansOf(items), { calls: [], results: [] });
  assert.deepEqual(orphansOf([user('a'), callMsg('c1'), callMsg('c2'), result('c1'), user('b')]), { calls: ['c2'], results: [] });
});
