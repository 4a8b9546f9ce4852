// The fake upstream, called directly by the official SDKs: whatever it sends, JSON or SSE, the SDKs'
// parsers and stream accumulators must take, and its scenarios must fail the way the real APIs fail.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fakeEmbedding, fakeReplyFor, startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../../proxy/demo/fake-upstream.ts';

let fake: FakeUpstream;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  fake = await startFakeUpstream();
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'x', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'x', maxRetries: 0 });
});
after(() => fake.close());

/** Polls until `check` holds; the bounded wait these tests use instead of sleeps. */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 2))) {
    if (check()) return;
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function raw(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${fake.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

const ask = (content: string) => ({ model: 'gpt-4o', messages: [{ role: 'user' as const, content }] });
const lookupTool = { type: 'function' as const, function: { name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } };
const ARGS = '{"order_id":"ORD-123456","notes":["a",{"b":"é😀"}]}';

test('chat completion: the reply, the served snapshot, usage and request id are as documented', async () => {
  const body = ask('What is   the\nreturn window?');
  const { data, response } = await openai.chat.completions.create(body).withResponse();
  const expected = fakeReplyFor('/v1/chat/completions', body);
  assert.equal(data.choices[0].message.content, 'You said: What is the return window?');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(data.model, 'gpt-4o-2024-08-06');
  assert.equal(data.system_fingerprint, 'fp_fake01');
  assert.match(data.id, /^chatcmpl-\w{29}$/);
  assert.deepEqual([data.usage?.prompt_tokens, data.usage?.completion_tokens, data.usage?.total_tokens], [expected.inputTokens, 7, expected.inputTokens + 7]);
  assert.equal(expected.inputTokens, Math.ceil(body.messages[0].content.length / 4) + 3);
  assert.match(String(response.headers.get('x-request-id')), /^req_[0-9a-f]{32}$/);
  const last = fake.requests.at(-1)!;
  assert.deepEqual([last.method, last.path, JSON.parse(last.body.toString()).model], ['POST', '/v1/chat/completions', 'gpt-4o']);
});

test('chat stream: one delta per word that concatenate to the reply; usage only when asked', async () => {
  const plain = await collect(await openai.chat.completions.create({ ...ask('one two three'), stream: true }));
  assert.deepEqual(plain[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
  assert.equal(plain.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'You said: one two three');
  assert.equal(plain.length, 1 + 5 + 1);
  assert.ok(plain.every((c) => !('usage' in c)));
  const chunks = await collect(await openai.chat.completions.create({ ...ask('one two three'), stream: true, stream_options: { include_usage: true } }));
  const usage = chunks.at(-1)!;
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage?.completion_tokens, 5);
  assert.equal(usage.usage?.prompt_tokens, fakeReplyFor('/v1/chat/completions', ask('one two three')).inputTokens);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
  assert.equal(chunks.at(-2)!.choices[0].finish_reason, 'stop');
});

test('streamed tool calls, assembled by the SDK, carry the marker\'s arguments exactly', async () => {
  const final = await openai.chat.completions.stream({
    ...ask(`check [[call lookup_order ${ARGS}]] and [[call lookup_order {"order_id":"ORD-000001"}]]`), tools: [lookupTool],
  }).finalChatCompletion();
  const calls = final.choices[0].message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(calls.map((c) => [c.function.name, c.function.arguments]), [['lookup_order', ARGS], ['lookup_order', '{"order_id":"ORD-000001"}']]);
  assert.ok(calls.every((c) => /^call_\w{24}$/.test(c.id)));
});

test('tool_choice forces a call; a tool result is quoted back; none forbids calls', async () => {
  const forced = await openai.chat.completions.create({ ...ask('hello'), tools: [lookupTool], tool_choice: { type: 'function', function: { name: 'lookup_order' } } });
  const call = forced.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
  assert.deepEqual([call.function.name, call.function.arguments, forced.choices[0].message.content], ['lookup_order', '{}', null]);
  const none = await openai.chat.completions.create({ ...ask('[[call lookup_order {}]]'), tools: [lookupTool], tool_choice: 'none' });
  assert.equal(none.choices[0].message.content, 'You said: [[call lookup_order {}]]');
  const answered = await openai.chat.completions.create({
    model: 'gpt-4o', tools: [lookupTool], messages: [
      { role: 'user', content: '[[call lookup_order {}]]' },
      { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: call.function }] },
      { role: 'tool', tool_call_id: call.id, content: '{"status": "shipped"}' },
    ],
  });
  assert.equal(answered.choices[0].message.content, 'Tool said: {"status": "shipped"}');
});

test('logprobs: one entry per token in JSON and stream; logprob= fixes them', async () => {
  const json = await openai.chat.completions.create({ ...ask('hi'), logprobs: true, top_logprobs: 3 });
  const content = json.choices[0].logprobs!.content!;
  assert.deepEqual(content.map((t) => t.token), ['You', ' said:', ' hi']);
  assert.ok(content.every((t) => t.logprob <= 0 && t.top_logprobs.length === 3 && t.top_logprobs[0].token === t.token));
  const stream = await openai.chat.completions.create({ ...ask('hi'), logprobs: true, stream: true }, { headers: { 'x-fake-scenario': 'logprob=-2.5' } });
  const tokens = (await collect(stream)).flatMap((c) => c.choices[0].logprobs?.content ?? []);
  assert.deepEqual(tokens.map((t) => [t.token, t.logprob]), [['You', -2.5], [' said:', -2.5], [' hi', -2.5]]);
});

test('words=N sets the length; max tokens cut it with the provider\'s own finish reason', async () => {
  const long = await openai.chat.completions.create(ask('a b'), { headers: { 'x-fake-scenario': 'words=9' } });
  assert.equal(long.choices[0].message.content, 'You said: a b You said: a b You');
  const cut = await openai.chat.completions.create({ ...ask('a b c d'), max_completion_tokens: 3 });
  assert.deepEqual([cut.choices[0].message.content, cut.choices[0].finish_reason, cut.usage?.completion_tokens], ['You said: a', 'length', 3]);
  const claude = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 2, messages: [{ role: 'user', content: 'a b' }] });
  assert.equal(claude.stop_reason, 'max_tokens');
  const resp = await openai.responses.create({ model: 'gpt-4o', input: 'x', max_output_tokens: 16 }, { headers: { 'x-fake-scenario': 'words=40' } });
  assert.deepEqual([resp.status, resp.incomplete_details?.reason, resp.usage?.output_tokens], ['incomplete', 'max_output_tokens', 16]);
});

test('responses: JSON and stream give the same output_text; events are numbered and typed', async () => {
  const json = await openai.responses.create({ model: 'gpt-4o', instructions: 'Be brief.', input: 'Hello there' });
  assert.deepEqual([json.output_text, json.status, json.model, json.object], ['You said: Hello there', 'completed', 'gpt-4o-2024-08-06', 'response']);
  const expected = fakeReplyFor('/v1/responses', { model: 'gpt-4o', instructions: 'Be brief.', input: 'Hello there' });
  assert.deepEqual(json.usage, {
    input_tokens: expected.inputTokens, input_tokens_details: { cached_tokens: 0 },
    output_tokens: 4, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: expected.inputTokens + 4,
  });
  const events = await collect(await openai.responses.create({ model: 'gpt-4o', input: [{ role: 'user', content: 'Hello there' }], stream: true }));
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.deepEqual([...new Set(events.map((e) => e.type))], ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
  const final = await openai.responses.stream({ model: 'gpt-4o', input: 'Hello there' }).finalResponse();
  assert.equal(final.output_text, 'You said: Hello there');
});

test('responses: a function call streams its arguments; a function_call_output is quoted back', async () => {
  const tools = [{ type: 'function' as const, name: 'lookup_order', parameters: null, strict: false }];
  const final = await openai.responses.stream({ model: 'gpt-4o', tools, input: `[[call lookup_order ${ARGS}]]` }).finalResponse();
  const call = final.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
  assert.deepEqual([call.type, call.name, call.arguments], ['function_call', 'lookup_order', ARGS]);
  const answered = await openai.responses.create({ model: 'gpt-4o', tools, input: [
    { role: 'user', content: 'go' }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
    { type: 'function_call_output', call_id: call.call_id, output: 'shipped' },
  ] });
  assert.equal(answered.output_text, 'Tool said: shipped');
});

test('embeddings: deterministic unit vectors, float or base64, with usage', async () => {
  const res = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'bye'] });
  assert.deepEqual(res.data.map((d) => d.embedding), [fakeEmbedding('hello world'), fakeEmbedding('bye')]);
  assert.ok(Math.abs(Math.hypot(...res.data[0].embedding) - 1) < 1e-6);
  assert.deepEqual(res.usage, { prompt_tokens: 3 + 1, total_tokens: 4 });
  const floats = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world', encoding_format: 'float', dimensions: 4 });
  assert.deepEqual(floats.data[0].embedding, fakeEmbedding('hello world', 4));
});

test('models: list and retrieve, in each SDK\'s shape; an unknown model is a 404', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o') && ids.includes('gpt-4o-2024-08-06'));
  assert.equal((await openai.models.retrieve('gpt-4o-mini')).object, 'model');
  await assert.rejects(openai.models.retrieve('nope'), OpenAI.NotFoundError);
  const claude = [];
  for await (const m of anthropic.models.list()) claude.push(m.id);
  assert.ok(claude.includes('claude-haiku-4-5-20251001'));
  assert.equal((await anthropic.models.retrieve('claude-haiku-4-5')).id, 'claude-haiku-4-5-20251001');
});

const claudeAsk = (content: string) => ({ model: 'claude-haiku-4-5', max_tokens: 256, messages: [{ role: 'user' as const, content }] });

test('anthropic messages: JSON and streamed text, the dated model, usage and request id', async () => {
  const body = { ...claudeAsk('Summarise my ticket'), system: 'You are terse.' };
  const msg = await anthropic.messages.create(body);
  const expected = fakeReplyFor('/v1/messages', body);
  assert.deepEqual(msg.content, [{ type: 'text', text: 'You said: Summarise my ticket' }]);
  assert.deepEqual([msg.model, msg.stop_reason, msg.usage.input_tokens, msg.usage.output_tokens], ['claude-haiku-4-5-20251001', 'end_turn', expected.inputTokens, 5]);
  assert.equal(expected.inputTokens, Math.ceil(('Summarise my ticket'.length + 'You are terse.'.length) / 4) + 6);
  assert.match(String(msg._request_id), /^req_011C\w{20}$/);
  const stream = anthropic.messages.stream(body);
  const types = (await collect(stream)).map((e) => e.type);
  const final = await stream.finalMessage();
  assert.deepEqual(final.content, msg.content);
  assert.equal(final.usage.output_tokens, 5);
  assert.deepEqual(types, ['message_start', 'content_block_start', ...Array(5).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
});

test('anthropic tool_use: streamed input JSON parsed by the SDK; tool_result quoted back; count_tokens', async () => {
  const tools = [{ name: 'lookup_order', input_schema: { type: 'object' as const } }];
  const final = await anthropic.messages.stream({ ...claudeAsk(`[[call lookup_order ${ARGS}]]`), tools }).finalMessage();
  const use = final.content[0] as Anthropic.ToolUseBlock;
  assert.deepEqual([final.stop_reason, use.type, use.name, use.input], ['tool_use', 'tool_use', 'lookup_order', JSON.parse(ARGS)]);
  assert.match(use.id, /^toolu_01\w{22}$/);
  const forced = await anthropic.messages.create({ ...claudeAsk('hi'), tools, tool_choice: { type: 'tool', name: 'lookup_order' } });
  assert.deepEqual((forced.content[0] as Anthropic.ToolUseBlock).input, {});
  const answered = await anthropic.messages.create({ ...claudeAsk('x'), tools, messages: [
    { role: 'user', content: 'go' }, { role: 'assistant', content: [use] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: 'shipped' }] }] },
  ] });
  assert.deepEqual(answered.content, [{ type: 'text', text: 'Tool said: shipped' }]);
  const count = await anthropic.messages.countTokens({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(count.input_tokens, Math.ceil(5 / 4) + 3);
});

type ErrorClass = abstract new (...args: any[]) => any;
const OPENAI_ERRORS: [number, ErrorClass, string, string | null][] = [
  [400, OpenAI.BadRequestError, 'invalid_request_error', 'string_above_max_length'],
  [401, OpenAI.AuthenticationError, 'invalid_request_error', 'invalid_api_key'],
  [403, OpenAI.PermissionDeniedError, 'request_forbidden', 'unsupported_country_region_territory'],
  [404, OpenAI.NotFoundError, 'invalid_request_error', 'model_not_found'],
  [429, OpenAI.RateLimitError, 'requests', 'rate_limit_exceeded'],
  [500, OpenAI.InternalServerError, 'server_error', null],
  [503, OpenAI.InternalServerError, 'server_error', null],
  [529, OpenAI.InternalServerError, 'server_error', null],
];
const ANTHROPIC_ERRORS: [number, ErrorClass, string][] = [
  [400, Anthropic.BadRequestError, 'invalid_request_error'],
  [401, Anthropic.AuthenticationError, 'authentication_error'],
  [403, Anthropic.PermissionDeniedError, 'permission_error'],
  [404, Anthropic.NotFoundError, 'not_found_error'],
  [429, Anthropic.RateLimitError, 'rate_limit_error'],
  [500, Anthropic.InternalServerError, 'api_error'],
  [503, Anthropic.ServiceUnavailableError, 'api_error'],
  [529, Anthropic.OverloadedError, 'overloaded_error'],
];

async function caught(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected an error');
}

test('status scenarios raise each SDK\'s error class, with the real error shape and Retry-After', async () => {
  for (const [status, cls, type, code] of OPENAI_ERRORS) {
    const headers = { 'x-fake-scenario': `status=${status};retry-after=2` };
    for (const call of [openai.chat.completions.create(ask('x'), { headers }), openai.chat.completions.create({ ...ask('x'), stream: true }, { headers })]) {
      const err = await caught(call);
      assert.ok(err instanceof cls, `${status}: ${err}`);
      assert.deepEqual([err.status, err.type, err.code, err.headers.get('retry-after')], [status, type, code, '2']);
      assert.match(String(err.headers.get('x-request-id')), /^req_/);
    }
  }
  for (const [status, cls, type] of ANTHROPIC_ERRORS) {
    const err = await caught(anthropic.messages.create(claudeAsk('x'), { headers: { 'x-fake-scenario': `status=${status};retry-after=2` } }));
    assert.ok(err instanceof cls, `${status}: ${err}`);
    assert.deepEqual([err.status, err.type, err.headers.get('retry-after')], [status, type, '2']);
    assert.equal(err.error.request_id, err.requestID);
  }
});

test('malformed JSON, unknown paths and bad scenarios get 400/404 in the provider\'s shape', async () => {
  const o = await raw('/v1/chat/completions', '{"model": "gpt-4o", "messages": [');
  assert.deepEqual([o.status, o.json.error.type, o.json.error.code], [400, 'invalid_request_error', null]);
  assert.match(String(o.headers.get('x-request-id')), /^req_/);
  const a = await raw('/v1/messages', 'nope', { 'anthropic-version': '2023-06-01' });
  assert.deepEqual([a.status, a.json.type, a.json.error.type, a.json.request_id], [400, 'error', 'invalid_request_error', a.headers.get('request-id')]);
  const missing = await raw('/v1/messages', JSON.stringify({ model: 'claude-haiku-4-5', messages: [] }));
  assert.deepEqual([missing.status, missing.json.error.message], [400, 'max_tokens: Field required']);
  const lost = await raw('/v1/nothing', '{}');
  assert.deepEqual([lost.status, lost.json.error.message], [404, 'Invalid URL (POST /v1/nothing)']);
  const lostClaude = await raw('/v1/nothing', '{}', { 'anthropic-version': '2023-06-01' });
  assert.deepEqual([lostClaude.status, lostClaude.json.error.type], [404, 'not_found_error']);
  const bad = await raw('/v1/chat/completions', JSON.stringify(ask('x')), { 'x-fake-scenario': 'words=many' });
  assert.deepEqual([bad.status, bad.json.error.message], [400, 'x-fake-scenario: bad value for words: "many"']);
});

test('stall-after: the client gets the first events, aborts, and the fake records the close', async () => {
  const closed = new Promise<RecordedRequest>((resolve) => (fake.onClientClose = resolve));
  const controller = new AbortController();
  const stream = await openai.chat.completions.create({ ...ask('a b c d e f'), stream: true }, { signal: controller.signal, headers: { 'x-fake-scenario': 'stall-after=3' } });
  const got: string[] = [];
  try {
    for await (const chunk of stream) {
      got.push(chunk.choices[0].delta.content ?? '');
      if (got.length === 3) controller.abort();
    }
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIUserAbortError, String(err));
  }
  assert.deepEqual(got, ['', 'You', ' said:']);
  const rec = await closed;
  fake.onClientClose = undefined;
  assert.equal(rec.clientClosed, true);
  assert.equal(rec, fake.requests.at(-1));
});

test('reset-after: a socket destroyed mid-stream is an error in both SDKs, not a clean end', async () => {
  const headers = { 'x-fake-scenario': 'reset-after=2' };
  await assert.rejects(async () => collect(await openai.chat.completions.create({ ...ask('a b c'), stream: true }, { headers })));
  await assert.rejects(anthropic.messages.stream(claudeAsk('a b c'), { headers }).finalMessage());
  await assert.rejects(openai.chat.completions.create(ask('a b c'), { headers }), OpenAI.APIConnectionError);
  assert.equal(fake.requests.at(-1)!.clientClosed, false, 'a reset by the fake is not the client\'s close');
});

test('beforeEvent gates each event: the client has event k before event k+1 is released', async () => {
  const gates: (() => void)[] = [];
  fake.beforeEvent = (i) => new Promise<void>((resolve) => (gates[i] = resolve));
  try {
    const res = await fetch(`${fake.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...ask('one two'), stream: true }),
    });
    let text = '';
    let ended = false;
    void (async () => {
      for await (const chunk of res.body!) text += Buffer.from(chunk).toString();
      ended = true;
    })();
    const events = () => text.split('\n\n').length - 1;
    let k = 0;
    for (; ; k++) {
      await waitFor(() => gates[k] !== undefined || ended, `the fake to wait on event ${k}`);
      if (ended) break;
      assert.equal(events(), k);
      gates[k]();
      await waitFor(() => events() === k + 1, `event ${k}`);
    }
    assert.equal(k, 1 + 4 + 1 + 1, 'role, four words, finish and [DONE]');
    assert.ok(text.endsWith('data: [DONE]\n\n'));
  } finally {
    fake.beforeEvent = undefined;
  }
});

test('a raw handler takes precedence; delays and event delays still deliver the whole reply', async () => {
  fake.setHandler((req, res) => {
    if (!req.path.startsWith('/v1/custom')) return false;
    res.end('custom');
    return true;
  });
  try {
    assert.equal(await (await fetch(`${fake.url}/v1/custom?x=1`)).text(), 'custom');
    assert.equal(fake.requests.at(-1)!.path, '/v1/custom?x=1');
    const slow = await collect(await openai.chat.completions.create({ ...ask('a b'), stream: true }, { headers: { 'x-fake-scenario': 'delay-ms=5; event-delay-ms=1' } }));
    assert.equal(slow.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'You said: a b');
  } finally {
    fake.setHandler(undefined);
  }
});

test('recordBodies: false drops bodies once answered; close() ends stalled streams at once', { timeout: 5_000 }, async () => {
  const lean = await startFakeUpstream({ recordBodies: false });
  const res = await fetch(`${lean.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(ask('hi')) });
  assert.equal(res.status, 200);
  await res.text();
  await waitFor(() => lean.requests[0]?.body.length === 0, 'the body to be dropped');
  const stalled = await fetch(`${lean.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-fake-scenario': 'stall-after=1' }, body: JSON.stringify({ ...ask('hi'), stream: true }) });
  const reading = stalled.text().catch((err: Error) => err);
  await lean.close();
  assert.ok((await reading) instanceof Error, 'the stalled stream was cut');
});
