// Each adapter's rewriteToolCalls, on a real stream from the fake upstream with two tool calls: the
// rewritten bytes, after the unheld prefix, are fed to the official SDK's stream accumulator, which
// must see the blocked calls as refusal text and the allowed ones exactly as the model sent them.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { SseSplitter, type SseEvent } from '../../proxy/http/sse.ts';
import { anthropicMessages } from '../../proxy/providers/anthropic-messages.ts';
import { openaiChat } from '../../proxy/providers/openai-chat.ts';
import { openaiResponses } from '../../proxy/providers/openai-responses.ts';
import type { EndpointAdapter } from '../../proxy/providers/types.ts';

let fake: FakeUpstream;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  fake = await startFakeUpstream();
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 10_000 });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'sk-ant-test', maxRetries: 0, timeout: 10_000 });
});
after(() => fake.close());

const ASK = 'do both [[call lookup_order {"order_id":"ORD-123456"}]] [[call refund {"order_id":"ORD-123456","amount_cents":1500}]]';
const PARAMS = { type: 'object', properties: { order_id: { type: 'string' }, amount_cents: { type: 'integer' } } };
const REFUSED = ['lookup_order was refused by policy.', 'refund was refused by policy: over the limit.'];
const TIMEOUT = { timeout: 10_000 };

/** The fake's SSE reply to a POST, split into events. */
async function upstreamEvents(path: string, body: object, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const res = await fetch(`${fake.url}${path}`, {
    method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200);
  const events = new SseSplitter(1 << 20).push(Buffer.from(await res.arrayBuffer()));
  assert.ok(events.every((e) => !Buffer.isBuffer(e)));
  return events as SseEvent[];
}

/** Splits a stream where the proxy starts holding: at the first event that carries a tool call. */
function splitAtToolCall(adapter: EndpointAdapter, events: SseEvent[]) {
  const at = events.findIndex((e) => e.data !== undefined && adapter.parseStreamEvent(e.event, e.data)?.events.some((c) => c.type === 'tool-call'));
  assert.ok(at >= 0);
  return { prefix: events.slice(0, at), held: events.slice(at) };
}

/** Serves `bytes` as the fake's next SSE answer, runs the SDK call, and puts the fake back. */
async function served<T>(bytes: Buffer, call: () => Promise<T>): Promise<T> {
  fake.setHandler((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.end(bytes);
    return true;
  });
  try {
    return await call();
  } finally {
    fake.setHandler(undefined);
  }
}

function rewrite(adapter: EndpointAdapter, prefix: SseEvent[], held: SseEvent[], blocked: Map<number, string>) {
  const out = adapter.rewriteToolCalls!(held, blocked);
  return { out, bytes: Buffer.concat([...prefix.map((e) => e.raw), ...out]) };
}

/** How many of `out` are byte-for-byte one of the held events. */
function unchanged(out: Buffer[], held: SseEvent[]): Buffer[] {
  return out.filter((b) => held.some((h) => h.raw.equals(b)));
}

// ---- OpenAI chat completions ----

const chatRequest = {
  model: 'gpt-4o', stream: true as const, stream_options: { include_usage: true },
  messages: [{ role: 'user' as const, content: ASK }],
  tools: ['lookup_order', 'refund'].map((name) => ({ type: 'function' as const, function: { name, parameters: PARAMS } })),
};

function chatCalls(message: OpenAI.ChatCompletionMessage) {
  return (message.tool_calls ?? []).map((c) => {
    assert.equal(c.type, 'function');
    return { id: c.id, name: c.function.name, arguments: c.function.arguments };
  });
}

async function chatSetup() {
  const events = await upstreamEvents('/v1/chat/completions', chatRequest);
  const original = await served(Buffer.concat(events.map((e) => e.raw)), () => openai.chat.completions.stream(chatRequest).finalChatCompletion());
  const calls = chatCalls(original.choices[0].message);
  assert.deepEqual(calls.map((c) => c.name), ['lookup_order', 'refund']);
  return { ...splitAtToolCall(openaiChat, events), calls };
}

const finalChat = (bytes: Buffer) => served(bytes, () => openai.chat.completions.stream(chatRequest).finalChatCompletion());

test('openai.chat: blocking the second call keeps the first byte for byte and adds the refusal as content', TIMEOUT, async () => {
  const { prefix, held, calls } = await chatSetup();
  const { out, bytes } = rewrite(openaiChat, prefix, held, new Map([[1, REFUSED[1]]]));
  const final = await finalChat(bytes);
  const choice = final.choices[0];
  assert.deepEqual(chatCalls(choice.message), [calls[0]]);
  assert.equal(choice.message.content, REFUSED[1]);
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.ok(final.usage && final.usage.completion_tokens > 0);
  // Call 0's chunks, the usage chunk and [DONE] pass untouched; call 1's chunks are gone; only the
  // finishing chunk is rewritten.
  const callOneChunks = held.filter((h) => /"tool_calls":\[\{"index":1/.test(h.data ?? '')).length;
  assert.ok(callOneChunks > 1);
  assert.equal(out.length, held.length - callOneChunks);
  assert.equal(unchanged(out, held).length, out.length - 1);
  assert.equal(out.at(-1)!.toString(), 'data: [DONE]\n\n');
  assert.ok(out.at(-2)!.equals(held.at(-2)!.raw));
  assert.match(held.at(-2)!.data!, /"choices":\[\],"usage":\{/);
});

test('openai.chat: blocking the first call renumbers the second to index 0', TIMEOUT, async () => {
  const { prefix, held, calls } = await chatSetup();
  const { out, bytes } = rewrite(openaiChat, prefix, held, new Map([[0, REFUSED[0]]]));
  for (const b of out) {
    for (const m of b.toString().matchAll(/"tool_calls":\[\{"index":(\d+)/g)) assert.equal(m[1], '0');
  }
  const choice = (await finalChat(bytes)).choices[0];
  assert.deepEqual(chatCalls(choice.message), [calls[1]]);
  assert.equal(choice.message.content, REFUSED[0]);
  assert.equal(choice.finish_reason, 'tool_calls');
});

test('openai.chat: blocking both calls finishes with stop and both refusals', TIMEOUT, async () => {
  const { prefix, held } = await chatSetup();
  const { out, bytes } = rewrite(openaiChat, prefix, held, new Map([[1, REFUSED[1]], [0, REFUSED[0]]]));
  const choice = (await finalChat(bytes)).choices[0];
  assert.equal(choice.message.tool_calls, undefined);
  assert.equal(choice.message.content, `${REFUSED[0]} ${REFUSED[1]}`);
  assert.equal(choice.finish_reason, 'stop');
  assert.equal(choice.message.role, 'assistant');
  assert.ok(out.every((b) => !b.includes('tool_calls"')));
  assert.ok(out.at(-1)!.equals(held.at(-1)!.raw));
});

test('openai.chat: a stream cut before its finish carries the refusal on its last chunk', () => {
  const chunk = (delta: object) => ({ raw: Buffer.from(`data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`) });
  const held = [
    chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'refund', arguments: '' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }),
  ].map((h) => ({ ...h, data: h.raw.toString().slice(6, -2) }));
  const out = openaiChat.rewriteToolCalls!(held, new Map([[0, 'no.']])).map((b) => JSON.parse(b.toString().slice(6)));
  assert.deepEqual(out, [
    { id: 'c', choices: [{ index: 0, delta: { role: 'assistant', content: null }, finish_reason: null }] },
    { id: 'c', choices: [{ index: 0, delta: { content: 'no.' }, finish_reason: null }] },
  ]);
});

// ---- Anthropic messages ----

const messagesRequest = {
  model: 'claude-opus-4-5', max_tokens: 256,
  messages: [{ role: 'user' as const, content: ASK }],
  tools: ['lookup_order', 'refund'].map((name) => ({ name, input_schema: PARAMS as Anthropic.Tool.InputSchema })),
};

function anthropicCalls(message: Anthropic.Message) {
  return message.content.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, input: b.input }));
}

async function anthropicSetup() {
  const events = await upstreamEvents('/v1/messages', { ...messagesRequest, stream: true }, { 'anthropic-version': '2023-06-01' });
  const original = await served(Buffer.concat(events.map((e) => e.raw)), () => anthropic.messages.stream(messagesRequest).finalMessage());
  const calls = anthropicCalls(original);
  assert.deepEqual(calls.map((c) => c.name), ['lookup_order', 'refund']);
  return { ...splitAtToolCall(anthropicMessages, events), calls };
}

const finalMessage = (bytes: Buffer) => served(bytes, () => anthropic.messages.stream(messagesRequest).finalMessage());

test('anthropic.messages: blocking the second tool_use turns its block into refusal text', TIMEOUT, async () => {
  const { prefix, held, calls } = await anthropicSetup();
  const { out, bytes } = rewrite(anthropicMessages, prefix, held, new Map([[1, REFUSED[1]]]));
  const final = await finalMessage(bytes);
  assert.deepEqual(anthropicCalls(final), [calls[0]]);
  assert.deepEqual(final.content[1], { type: 'text', text: REFUSED[1] });
  assert.equal(final.stop_reason, 'tool_use');
  // Everything but block 1's start (rewritten) and its deltas (dropped) passes untouched, plus one
  // added text delta; every event keeps its `event:` line.
  const blockOneDeltas = held.filter((h) => h.event === 'content_block_delta' && /"index":1/.test(h.data!)).length;
  assert.equal(out.length, held.length - blockOneDeltas + 1);
  assert.equal(unchanged(out, held).length, out.length - 2);
  assert.ok(out.every((b) => b.toString().startsWith('event: ')));
  assert.ok(out.at(-1)!.equals(held.at(-1)!.raw));
  assert.ok(out.at(-2)!.equals(held.at(-2)!.raw));
});

test('anthropic.messages: blocking both ends the turn as end_turn with both refusals', TIMEOUT, async () => {
  const { prefix, held } = await anthropicSetup();
  const { out, bytes } = rewrite(anthropicMessages, prefix, held, new Map([[0, REFUSED[0]], [1, REFUSED[1]]]));
  const final = await finalMessage(bytes);
  assert.deepEqual(final.content, REFUSED.map((text) => ({ type: 'text', text })));
  assert.equal(final.stop_reason, 'end_turn');
  assert.ok(final.usage.output_tokens > 0);
  assert.ok(out.at(-1)!.equals(held.at(-1)!.raw));
  assert.ok(out.some((b) => b.equals(held.find((h) => h.event === 'ping')!.raw)));
});

// ---- OpenAI Responses API ----

const responsesRequest = {
  model: 'gpt-4o', input: ASK,
  tools: ['lookup_order', 'refund'].map((name) => ({ type: 'function' as const, name, parameters: PARAMS, strict: false })),
};

function responseCalls(response: OpenAI.Responses.Response) {
  return response.output.filter((i) => i.type === 'function_call').map((i) => ({ call_id: i.call_id, name: i.name, arguments: i.arguments }));
}

async function responsesSetup() {
  const events = await upstreamEvents('/v1/responses', { ...responsesRequest, stream: true });
  const original = await served(Buffer.concat(events.map((e) => e.raw)), () => openai.responses.stream(responsesRequest).finalResponse());
  const calls = responseCalls(original);
  assert.deepEqual(calls.map((c) => c.name), ['lookup_order', 'refund']);
  return { ...splitAtToolCall(openaiResponses, events), calls };
}

const finalResponse = (bytes: Buffer) => served(bytes, () => openai.responses.stream(responsesRequest).finalResponse());

/** The sequence numbers of a stream, which must count up by one from the first. */
function assertSequence(bytes: Buffer) {
  const numbers = [...bytes.toString().matchAll(/"sequence_number":(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(numbers, numbers.map((_, i) => numbers[0] + i));
}

// The SDK adds `parsed` to every output_text part it finalizes.
function refusalItem(k: number, text: string) {
  return { type: 'message', id: `msg_warden_${k}`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [], parsed: null }] };
}

test('openai.responses: blocking the second call makes it an assistant message', TIMEOUT, async () => {
  const { prefix, held, calls } = await responsesSetup();
  const { out, bytes } = rewrite(openaiResponses, prefix, held, new Map([[1, REFUSED[1]]]));
  assertSequence(bytes);
  const final = await finalResponse(bytes);
  assert.deepEqual(responseCalls(final), [calls[0]]);
  assert.deepEqual(final.output[1], refusalItem(1, REFUSED[1]));
  assert.equal(final.output_text, REFUSED[1]);
  assert.equal(final.status, 'completed');
  // Call 0's events come before any change, so they are byte for byte the upstream's.
  const callZero = held.filter((h) => /"output_index":0/.test(h.data!));
  assert.ok(callZero.length > 2);
  for (const [i, h] of callZero.entries()) assert.ok(out[i].equals(h.raw));
  assert.ok(out.every((b) => b.toString().startsWith('event: response.')));
});

test('openai.responses: blocking both leaves two messages and no function call', TIMEOUT, async () => {
  const { prefix, held } = await responsesSetup();
  const { bytes } = rewrite(openaiResponses, prefix, held, new Map([[0, REFUSED[0]], [1, REFUSED[1]]]));
  assertSequence(bytes);
  const events: OpenAI.Responses.ResponseStreamEvent[] = [];
  const final = await served(bytes, async () => {
    const stream = openai.responses.stream(responsesRequest);
    for await (const ev of stream) events.push(ev);
    return stream.finalResponse();
  });
  assert.deepEqual(final.output, [refusalItem(0, REFUSED[0]), refusalItem(1, REFUSED[1])]);
  assert.equal(final.output_text, REFUSED.join(''));
  assert.deepEqual(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta), REFUSED);
  assert.ok(!events.some((e) => e.type.startsWith('response.function_call_arguments')));
});
