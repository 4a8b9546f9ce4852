// The official SDKs pointed at Warden get exactly what they get from the same fake upstream directly.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let direct: { openai: OpenAI; anthropic: Anthropic };
let via: { openai: OpenAI; anthropic: Anthropic };

// Fields the fake draws fresh for every response; everything else must match exactly.
const VOLATILE = new Set(['id', 'created', 'created_at', 'request_id', '_request_id', 'item_id', 'completed_at']);
function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, VOLATILE.has(k) ? '<volatile>' : normalize(v)]));
  }
  return value;
}

function clients(openaiBase: string, anthropicBase: string) {
  return {
    openai: new OpenAI({ baseURL: openaiBase, apiKey: 'sk-agent', maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: anthropicBase, apiKey: 'sk-ant-agent', maxRetries: 0 }),
  };
}

before(async () => {
  fake = await startFakeUpstream();
  warden = await startWarden(tempFile('passthrough.yaml', policyFor(fake.url, 'usage: { streamUsage: client }\n')));
  direct = clients(`${fake.url}/v1`, fake.url);
  via = clients(`${warden.trafficUrl}/v1`, `${warden.trafficUrl}/anthropic`);
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

async function both<T>(fn: (c: typeof direct) => Promise<T>): Promise<[unknown, unknown]> {
  return [normalize(await fn(direct)), normalize(await fn(via))];
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const ev of stream) out.push(ev);
  return out;
}

const chat = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'What is the return window?' }] };

test('openai chat.completions.create, not streamed', async () => {
  const [a, b] = await both((c) => c.openai.chat.completions.create(chat));
  assert.deepEqual(b, a);
});

test('openai chat.completions.create, streamed (with and without usage)', async () => {
  const [a, b] = await both(async (c) => collect(await c.openai.chat.completions.create({ ...chat, stream: true })));
  assert.deepEqual(b, a);
  assert.ok((a as unknown[]).length > 3);
  const [u1, u2] = await both(async (c) => collect(await c.openai.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } })));
  assert.deepEqual(u2, u1);
});

test('openai streamed tool call, assembled by the SDK', async () => {
  const req = {
    model: 'gpt-4o', stream: true as const,
    messages: [{ role: 'user' as const, content: 'check [[call lookup_order {"order_id":"ORD-123456"}]]' }],
    tools: [{ type: 'function' as const, function: { name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }],
  };
  const [a, b] = await both((c) => c.openai.chat.completions.stream(req).finalChatCompletion());
  assert.deepEqual(b, a);
  const call = (b as OpenAI.ChatCompletion).choices[0].message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
  assert.equal(JSON.parse(call.function.arguments).order_id, 'ORD-123456');
});

test('openai responses.create, streamed and not', async () => {
  const [a, b] = await both((c) => c.openai.responses.create({ model: 'gpt-4o', input: 'Hello there' }));
  assert.deepEqual(b, a);
  const [s1, s2] = await both(async (c) => collect(await c.openai.responses.create({ model: 'gpt-4o', input: 'Hello there', stream: true })));
  assert.deepEqual(s2, s1);
});

test('anthropic messages.create and messages.stream', async () => {
  const req = { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user' as const, content: 'Summarise my ticket' }] };
  const [a, b] = await both((c) => c.anthropic.messages.create(req));
  assert.deepEqual(b, a);
  const [s1, s2] = await both(async (c) => {
    const stream = c.anthropic.messages.stream(req);
    const events = await collect(stream);
    return { events, final: await stream.finalMessage() };
  });
  assert.deepEqual(s2, s1);
});

for (const status of [400, 401, 429, 500]) {
  test(`upstream ${status} reaches both SDKs identically (status, body, Retry-After)`, async () => {
    const headers = { 'x-fake-scenario': `status=${status};retry-after=2` };
    const caught = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        return err as InstanceType<typeof OpenAI.APIError>;
      }
      assert.fail('expected an error');
    };
    for (const pick of [
      (c: typeof direct) => c.openai.chat.completions.create(chat, { headers }),
      (c: typeof direct) => c.anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }, { headers }),
    ]) {
      const a = await caught(() => pick(direct));
      const b = await caught(() => pick(via));
      assert.equal(b.constructor, a.constructor);
      assert.equal(b.status, status);
      assert.deepEqual(normalize(b.error), normalize(a.error));
      if (status === 429) assert.equal(b.headers?.get('retry-after'), '2');
    }
  });
}
