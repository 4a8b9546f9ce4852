// Token counting: OpenAI counts checked against tiktoken and the OpenAI cookbook's formulas computed
// here independently, the model tables, Anthropic calibration converging on a noisy but consistent
// reported usage, and the message cache (same counts on re-count, bounded, evicting).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { get_encoding, Tiktoken } from 'tiktoken';
import type { Message, ToolDefinition } from '../../proxy/canonical.ts';
import { defaultContextTokens, encodingFor } from '../../proxy/context/model-windows.ts';
import { createTokenCounter } from '../../proxy/context/tokens.ts';

const encodings = { 'gpt-4o': get_encoding('o200k_base'), 'gpt-4': get_encoding('cl100k_base') };

// Tool-free messages: system, a named user (the name lives in the OpenAI wire object), multilingual
// text, emoji (ZWJ sequences included), code.
const PLAIN: Message[] = [
  { role: 'system', text: 'You are a careful support agent. Answer briefly; never invent order numbers.' },
  { role: 'user', text: 'Bonjour ! Où en est ma commande ? 日本語でも大丈夫です。Привет, мир! Γειά σου. مرحبا 🙂🚀👩‍💻🇫🇷', raw: { role: 'user', name: 'alice', content: '…' } },
  { role: 'assistant', text: 'Here is the helper you asked for:\n\n```ts\nexport function add(a: number, b: number): number {\n  return a + b; // ≈ O(1)\n}\n```\n' },
  { role: 'user', text: 'And in Python?\n\tdef add(a, b):\n\t\treturn a + b\n\nAlso: naïve café façade — “quotes” and ‘apostrophes’.' },
  { role: 'developer', text: 'Prefer metric units. Température en °C.' },
];

// With tool calls and results, as the OpenAI chat adapter produces them (a tool message's result is also its text).
const TOOLS_TURN: Message[] = [
  { role: 'assistant', text: '', toolCalls: [
    { id: 'call_1', name: 'lookup_order', arguments: '{"order_id":"ORD-123456"}' },
    { id: 'call_2', name: 'get_weather', arguments: '{"city":"Zürich","unit":"celsius"}' },
  ] },
  { role: 'tool', text: '{"status":"shipped","eta":"2025-06-02","items":["📦 Widget ×2"]}', toolResults: [{ toolCallId: 'call_1', content: '{"status":"shipped","eta":"2025-06-02","items":["📦 Widget ×2"]}' }] },
  { role: 'tool', text: '{"temp":21.5,"summary":"sonnig"}', toolResults: [{ toolCallId: 'call_2', content: '{"temp":21.5,"summary":"sonnig"}' }] },
  { role: 'assistant', text: 'Your order ORD-123456 has shipped 📦 and Zürich is sunny (21.5 °C).' },
];

/** The cookbook's num_tokens_from_messages, on the wire form: 3 per message, every value encoded, 1 per name, 3 for the reply. */
function cookbookMessages(enc: Tiktoken, messages: readonly Record<string, string>[]): number {
  let n = 0;
  for (const m of messages) {
    n += 3;
    for (const [key, value] of Object.entries(m)) {
      n += enc.encode(value).length;
      if (key === 'name') n += 1;
    }
  }
  return n + 3;
}

function wireOf(m: Message): Record<string, string> {
  const name = (m.raw as { name?: string } | undefined)?.name;
  return { role: m.role, content: m.text, ...(name ? { name } : {}) };
}

for (const model of ['gpt-4o', 'gpt-4'] as const) {
  const enc = encodings[model];

  test(`${model}: tool-free messages count exactly as the cookbook's num_tokens_from_messages`, () => {
    const counter = createTokenCounter();
    assert.equal(counter.countRequest(model, 'openai', { messages: PLAIN, tools: [] }), cookbookMessages(enc, PLAIN.map(wireOf)));
    for (const m of PLAIN) assert.equal(counter.countMessage(model, 'openai', m), cookbookMessages(enc, [wireOf(m)]) - 3);
  });

  // The cookbook does not cover tool calls: the reference adds Warden's documented rule for them (the
  // function name plus the arguments text plus 3 per call); tool messages are counted by their content,
  // exactly as the cookbook counts any message's content.
  test(`${model}: tool calls and results add name + arguments + 3 per call, and the result content`, () => {
    const counter = createTokenCounter();
    const messages = [...PLAIN, ...TOOLS_TURN];
    let expected = cookbookMessages(enc, messages.map(wireOf));
    for (const c of TOOLS_TURN.flatMap((m) => m.toolCalls ?? [])) expected += 3 + enc.encode(c.name).length + enc.encode(c.arguments).length;
    assert.equal(counter.countRequest(model, 'openai', { messages, tools: [] }), expected);
  });
}

test('tool definitions follow the cookbook num_tokens_for_tools, matching the API counts it reports', () => {
  // The cookbook's own example, for which it shows the API's prompt_tokens: 101 on gpt-4o and
  // gpt-4o-mini, 105 on gpt-4 and gpt-3.5-turbo.
  const tools: ToolDefinition[] = [{
    name: 'get_current_weather',
    description: 'Get the current weather in a given location',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
        unit: { type: 'string', description: 'The unit of temperature to return', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['location'],
    },
  }];
  const messages: Message[] = [
    { role: 'system', text: 'You are a helpful assistant that can answer to questions about the weather.' },
    { role: 'user', text: "What's the weather like in San Francisco?" },
  ];
  const counter = createTokenCounter();
  for (const [model, api] of [['gpt-4o', 101], ['gpt-4o-mini', 101], ['gpt-4', 105], ['gpt-3.5-turbo', 105]] as const) {
    assert.equal(counter.countRequest(model, 'openai', { messages, tools }), api, model);
  }
  // Beyond the cookbook's flat properties, nested schemas still count (by their JSON text).
  const nested: ToolDefinition = { name: 'f', parameters: { type: 'object', properties: { items: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } } } } } } };
  const flat: ToolDefinition = { name: 'f', parameters: { type: 'object', properties: { items: { type: 'array' } } } };
  assert.ok(counter.countRequest('gpt-4o', 'openai', { messages: [], tools: [nested] }) > counter.countRequest('gpt-4o', 'openai', { messages: [], tools: [flat] }));
});

test('text spelling a special token is counted as plain text', () => {
  const counter = createTokenCounter();
  assert.equal(counter.countText('gpt-4o', 'openai', 'a <|endoftext|> b'), encodings['gpt-4o'].encode_ordinary('a <|endoftext|> b').length);
  assert.equal(counter.countText('gpt-4o', 'openai', ''), 0);
});

test('encodingFor and defaultContextTokens, dated snapshots included', () => {
  const table: [string, 'o200k_base' | 'cl100k_base', number | undefined][] = [
    ['gpt-4o', 'o200k_base', 128_000],
    ['gpt-4o-2024-08-06', 'o200k_base', 128_000],
    ['gpt-4o-mini-2024-07-18', 'o200k_base', 128_000],
    ['chatgpt-4o-latest', 'o200k_base', 128_000],
    ['gpt-4.1', 'o200k_base', 1_047_576],
    ['gpt-4.1-mini-2025-04-14', 'o200k_base', 1_047_576],
    ['gpt-4.1-nano', 'o200k_base', 1_047_576],
    ['gpt-4.5-preview', 'o200k_base', 128_000],
    ['gpt-5', 'o200k_base', 400_000],
    ['gpt-5-mini-2025-08-07', 'o200k_base', 400_000],
    ['gpt-5.1', 'o200k_base', 400_000],
    ['gpt-5-chat-latest', 'o200k_base', 128_000],
    ['o1', 'o200k_base', 200_000],
    ['o1-2024-12-17', 'o200k_base', 200_000],
    ['o1-mini', 'o200k_base', 128_000],
    ['o3', 'o200k_base', 200_000],
    ['o3-mini-2025-01-31', 'o200k_base', 200_000],
    ['o4-mini', 'o200k_base', 200_000],
    ['o4-mini-2025-04-16', 'o200k_base', 200_000],
    ['gpt-4-turbo', 'cl100k_base', 128_000],
    ['gpt-4-turbo-2024-04-09', 'cl100k_base', 128_000],
    ['gpt-4-0125-preview', 'cl100k_base', 128_000],
    ['gpt-4', 'cl100k_base', 8_192],
    ['gpt-4-0613', 'cl100k_base', 8_192],
    ['gpt-4-32k', 'cl100k_base', 32_768],
    ['gpt-3.5-turbo', 'cl100k_base', 16_385],
    ['gpt-3.5-turbo-0125', 'cl100k_base', 16_385],
    ['text-embedding-3-small', 'cl100k_base', undefined],
    ['openai/gpt-4o', 'o200k_base', 128_000],
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', 'o200k_base', 128_000],
    ['claude-sonnet-4-5', 'o200k_base', 200_000],
    ['claude-sonnet-4-5-20250929', 'o200k_base', 200_000],
    ['claude-3-5-haiku-20241022', 'o200k_base', 200_000],
    ['llama-3.1-70b', 'o200k_base', undefined],
    ['gpt-4ish', 'cl100k_base', undefined],
  ];
  for (const [model, encoding, window] of table) {
    assert.equal(encodingFor(model), encoding, `encodingFor(${model})`);
    assert.equal(defaultContextTokens(model), window, `defaultContextTokens(${model})`);
  }
});

/** Deterministic pseudo-random numbers in [0, 1) (a linear congruential generator). */
function random(seed: number): () => number {
  let s = seed;
  return () => (s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
}

test('anthropic: calibration converges within 5% of a consistent reported usage in 20 calls', () => {
  const model = 'claude-sonnet-4-5-20250929';
  const counter = createTokenCounter();
  const raw = createTokenCounter(); // never calibrated: the raw estimate
  const rnd = random(42);
  const conversation: Message[] = [...PLAIN, ...TOOLS_TURN];
  const tools: ToolDefinition[] = [{ name: 'lookup_order', description: 'Look an order up', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } }];
  const TRUE_RATIO = 1.23;
  assert.equal(counter.ratio(model), 1);
  for (let call = 0; call < 20; call++) {
    conversation.push({ role: call % 2 ? 'assistant' : 'user', text: `Turn ${call}: ${'some more context, '.repeat(1 + Math.floor(rnd() * 40))}` });
    const req = { messages: conversation, tools };
    const estimated = counter.countRequest(model, 'anthropic', req);
    const reported = Math.round(raw.countRequest(model, 'anthropic', req) * TRUE_RATIO * (1 + (rnd() - 0.5) * 0.06)); // ±3% noise
    counter.calibrate(model, estimated, reported);
  }
  conversation.push({ role: 'user', text: 'One more question about the order, please.' });
  const req = { messages: conversation, tools };
  const truth = raw.countRequest(model, 'anthropic', req) * TRUE_RATIO;
  const estimate = counter.countRequest(model, 'anthropic', req);
  assert.ok(Math.abs(estimate - truth) / truth < 0.05, `estimate ${estimate} vs reported ${truth}`);
  assert.ok(Math.abs(counter.ratio(model) - TRUE_RATIO) / TRUE_RATIO < 0.05, `ratio ${counter.ratio(model)}`);
  // The ratio applies to every anthropic count, and only to the model it was learned for.
  assert.equal(counter.countText(model, 'anthropic', 'x'.repeat(350)), Math.ceil(100 * counter.ratio(model)));
  assert.equal(counter.ratio('claude-opus-4-1'), 1);

  // One wild answer (100× the estimate) moves the ratio by at most a bounded step.
  const before = counter.ratio(model);
  counter.calibrate(model, estimate, estimate * 100);
  assert.ok(counter.ratio(model) < before * 1.25, `ratio after an outlier: ${counter.ratio(model)}`);
  counter.calibrate(model, 0, 100); // nonsense is ignored
  counter.calibrate(model, 100, Number.NaN);
  assert.ok(Number.isFinite(counter.ratio(model)));
});

test('anthropic: the estimate grows with non-Latin text and counts tool blocks', () => {
  const counter = createTokenCounter();
  const english = counter.countText('claude-sonnet-4-5', 'anthropic', 'hello world, hello world');
  const japanese = counter.countText('claude-sonnet-4-5', 'anthropic', 'こんにちは世界、こんにちは世界');
  assert.ok(japanese > english);
  const withCall = counter.countMessage('claude-sonnet-4-5', 'anthropic', TOOLS_TURN[0]);
  assert.ok(withCall > counter.countMessage('claude-sonnet-4-5', 'anthropic', { role: 'assistant', text: '' }));
});

/** Counts tiktoken encodes while `fn` runs: what the cache saves. */
function encodesDuring(fn: () => void): number {
  const original = Tiktoken.prototype.encode_ordinary;
  let calls = 0;
  Tiktoken.prototype.encode_ordinary = function (this: Tiktoken, text: string) {
    calls++;
    return original.call(this, text);
  };
  try {
    fn();
  } finally {
    Tiktoken.prototype.encode_ordinary = original;
  }
  return calls;
}

/** A copy with fresh objects, as the next request's parse produces. */
function reparsed(messages: readonly Message[]): Message[] {
  return JSON.parse(JSON.stringify(messages));
}

test('cache: a re-count gives the same number and tokenizes only new messages', () => {
  const counter = createTokenCounter();
  const messages = [...PLAIN, ...TOOLS_TURN];
  const first = counter.countRequest('gpt-4o', 'openai', { messages, tools: [] });
  let again = 0;
  assert.equal(encodesDuring(() => (again = counter.countRequest('gpt-4o', 'openai', { messages: reparsed(messages), tools: [] }))), 0);
  assert.equal(again, first);
  const next = [...reparsed(messages), { role: 'user', text: 'Thanks!' } as Message];
  let grown = 0;
  assert.ok(encodesDuring(() => (grown = counter.countRequest('gpt-4o', 'openai', { messages: next, tools: [] }))) > 0);
  assert.equal(grown, first + counter.countMessage('gpt-4o', 'openai', { role: 'user', text: 'Thanks!' }));
  // Encodings are cached apart: the same messages for gpt-4 are tokenized afresh.
  assert.ok(encodesDuring(() => counter.countRequest('gpt-4', 'openai', { messages, tools: [] })) > 0);
  // A message with the same text under another role is another entry.
  assert.ok(encodesDuring(() => counter.countMessage('gpt-4o', 'openai', { role: 'assistant', text: PLAIN[0].text })) > 0);
});

test('cache: a resent conversation with an earlier message edited counts the edit', () => {
  // Ends with a result as the Anthropic adapter carries it: a user message with a tool_result block.
  const base: Message[] = [...PLAIN, ...TOOLS_TURN, { role: 'assistant', text: '', toolCalls: [{ id: 'toolu_1', name: 'lookup_order', arguments: '{}' }] }, { role: 'user', text: '', toolResults: [{ toolCallId: 'toolu_1', content: 'not found' }] }];
  const edits: ((ms: Message[]) => void)[] = [
    (ms) => (ms[3] = { ...ms[3], text: `${ms[3].text} (edited)` }),
    (ms) => (ms[1] = { ...ms[1], raw: { role: 'user', name: 'a-much-longer-participant-name' } }),
    (ms) => (ms[5] = { ...ms[5], toolCalls: [{ ...ms[5].toolCalls![0], arguments: '{"order_id":"ORD-999999","verbose":true}' }, ms[5].toolCalls![1]] }),
    (ms) => (ms[6] = { ...ms[6], text: '{"status":"lost"}', toolResults: [{ toolCallId: 'call_1', content: '{"status":"lost"}' }] }),
    (ms) => (ms[10] = { ...ms[10], toolResults: [{ toolCallId: 'toolu_1', content: 'found it after all, here is the full order record' }] }),
    (ms) => ms.splice(2, 1),
  ];
  const counter = createTokenCounter();
  counter.countRequest('gpt-4o', 'openai', { messages: base, tools: [] });
  edits.forEach((edit, i) => {
    const messages = reparsed(base);
    edit(messages);
    messages.push({ role: 'user', text: `next turn ${i}` });
    const expected = createTokenCounter().countRequest('gpt-4o', 'openai', { messages, tools: [] });
    assert.equal(counter.countRequest('gpt-4o', 'openai', { messages, tools: [] }), expected, `edit ${i}`);
    // Then the same conversation continues from the edited request.
    const next = [...reparsed(messages), { role: 'assistant', text: 'ok' } as Message];
    assert.equal(counter.countRequest('gpt-4o', 'openai', { messages: next, tools: [] }), expected + counter.countMessage('gpt-4o', 'openai', { role: 'assistant', text: 'ok' }));
  });
});

test('cache: bounded, the least recently used entry is evicted', () => {
  const counter = createTokenCounter({ cacheEntries: 2 });
  const [a, b, c] = PLAIN.map((m) => ({ role: m.role, text: m.text }));
  const count = (m: Message) => encodesDuring(() => counter.countMessage('gpt-4o', 'openai', reparsed([m])[0]));
  assert.ok(count(a) > 0);
  assert.ok(count(b) > 0);
  assert.equal(count(a), 0); // both fit; a is now the most recent
  assert.ok(count(c) > 0); // evicts b, the least recently used
  assert.equal(count(a), 0);
  assert.ok(count(b) > 0); // b was evicted and is tokenized again
  const sameAgain = createTokenCounter({ cacheEntries: 2 });
  assert.equal(sameAgain.countMessage('gpt-4o', 'openai', b), counter.countMessage('gpt-4o', 'openai', b));
});

test('boundRequest is never below countRequest, and is the count itself for Anthropic', () => {
  const counter = createTokenCounter();
  const tools: ToolDefinition[] = [
    { name: 'get_weather', description: 'Weather in a city.', parameters: { type: 'object', properties: { city: { type: 'string', description: 'Zürich, 東京' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit', 7] }, days: { type: 'array', items: { type: 'integer', minimum: 1 } } } } },
    { name: 'noop', parameters: {} },
  ];
  // Random texts from a seeded generator: ASCII words, accents, CJK, emoji (surrogate pairs), lone
  // surrogates, control characters and long runs, which BPE packs most tightly.
  let seed = 0x5eed;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const alphabet = ['the ', 'order ', 'é', 'ß', '日本', '語', '🙂', '👩‍💻', '\ud800', '\n', '\t', '{"a":1}', 'aaaaaaaa', '          ', '0123456789'];
  const text = () => Array.from({ length: rand(60) }, () => alphabet[rand(alphabet.length)]).join('');
  const conversations: Message[][] = [PLAIN, TOOLS_TURN, [...PLAIN, ...TOOLS_TURN]];
  for (let i = 0; i < 200; i++) {
    conversations.push(Array.from({ length: 1 + rand(6) }, (): Message => rand(4) === 0
      ? { role: 'assistant', text: text(), toolCalls: [{ id: `c${i}`, name: 'get_weather', arguments: text() }] }
      : { role: rand(2) === 0 ? 'user' : 'system', text: text(), ...(rand(3) === 0 ? { raw: { role: 'user', name: 'bob' } } : {}) }));
  }
  for (const model of ['gpt-4o', 'gpt-4']) {
    for (const [i, messages] of conversations.entries()) {
      for (const t of [[], tools]) {
        const req = { messages, tools: t };
        const bound = counter.boundRequest(model, 'openai', req);
        const count = counter.countRequest(model, 'openai', req);
        assert.ok(bound >= count, `${model}, conversation ${i}: bound ${bound} < count ${count}`);
      }
    }
  }
  const req = { messages: [...PLAIN, ...TOOLS_TURN], tools };
  assert.equal(counter.boundRequest('claude-sonnet-4-5', 'anthropic', req), counter.countRequest('claude-sonnet-4-5', 'anthropic', req));
});
