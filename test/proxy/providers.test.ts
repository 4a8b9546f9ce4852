import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accumulate, emptyResponse, finishAccumulation, type Response } from '../../proxy/canonical.ts';
import { anthropicMessages } from '../../proxy/providers/anthropic-messages.ts';
import { findEndpoint, providers } from '../../proxy/providers/index.ts';
import { openaiChat } from '../../proxy/providers/openai-chat.ts';
import { openaiResponses } from '../../proxy/providers/openai-responses.ts';
import type { EndpointAdapter } from '../../proxy/providers/types.ts';
import { InvalidRequestError, UpstreamTimeoutError } from '../../proxy/errors.ts';

function streamOf(adapter: EndpointAdapter, events: [string | undefined, unknown][]): Response {
  const res = emptyResponse();
  for (const [name, data] of events) {
    const parsed = adapter.parseStreamEvent(name, typeof data === 'string' ? data : JSON.stringify(data));
    for (const e of parsed?.events ?? []) accumulate(res, e);
  }
  return finishAccumulation(res);
}

test('endpoints are found by path suffix, and other paths are pass-through', () => {
  assert.equal(findEndpoint(providers.openai, 'POST', '/chat/completions')?.adapter.name, 'openai.chat');
  assert.equal(findEndpoint(providers.openai, 'POST', '/v1/responses')?.adapter.name, 'openai.responses');
  assert.equal(findEndpoint(providers.openai, 'GET', '/models'), undefined);
  assert.equal(findEndpoint(providers.anthropic, 'POST', '/v1/messages')?.adapter.name, 'anthropic.messages');
  assert.equal(findEndpoint(providers.anthropic, 'POST', '/v1/messages/count_tokens'), undefined);
});

test('openai chat: request to canonical and back keeps unknown fields and untouched messages', () => {
  const body = {
    model: 'gpt-4o', temperature: 0.2, future_field: { x: 1 }, stream: true,
    messages: [
      { role: 'system', content: 'be brief', name: 'sys' },
      { role: 'user', content: [{ type: 'text', text: 'hi ' }, { type: 'image_url', image_url: { url: 'data:' } }, { type: 'text', text: 'there' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"id":1}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"ok":true}' },
    ],
    tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
  };
  const req = openaiChat.parseRequest(body);
  assert.equal(req.model, 'gpt-4o');
  assert.equal(req.stream, true);
  assert.equal(req.streamUsage, false);
  assert.equal(req.messages[1].text, 'hi there');
  assert.deepEqual(req.messages[2].toolCalls, [{ id: 'call_1', name: 'lookup', arguments: '{"id":1}' }]);
  assert.deepEqual(req.messages[3].toolResults, [{ toolCallId: 'call_1', content: '{"ok":true}' }]);
  assert.deepEqual(req.tools.map((t) => t.name), ['lookup']);
  const back = openaiChat.writeRequest(body, { ...req, model: 'gpt-4o-2024-11-20', streamUsage: true });
  assert.deepEqual(back, { ...body, model: 'gpt-4o-2024-11-20', stream_options: { include_usage: true } });
  // A stage-made message (no raw) is written in the wire shape; removing all tools removes the field.
  const edited = openaiChat.writeRequest(body, { ...req, tools: [], messages: [...req.messages, { role: 'system', text: 'note' }] });
  assert.deepEqual((edited.messages as unknown[]).at(-1), { role: 'system', content: 'note' });
  assert.equal('tools' in edited, false);
});

test('openai chat: a body without a model, or not an object shape, is a typed 400', () => {
  assert.throws(() => openaiChat.parseRequest({ messages: [] }), InvalidRequestError);
});

test('openai chat: streamed tool-call argument deltas are accumulated by index, usage normalised', () => {
  const res = streamOf(openaiChat, [
    [undefined, { id: 'c', model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'lookup', arguments: '' } }] } }] }],
    [undefined, { id: 'c', model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"order' } }] } }] }],
    [undefined, { id: 'c', model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '_id":"ORD-1"}' } }, { index: 1, id: 'call_b', function: { name: 'other', arguments: '{}' } }] } }] }],
    [undefined, { id: 'c', model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }],
    [undefined, { id: 'c', model: 'gpt-4o-2024-08-06', choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 4 } } }],
    [undefined, '[DONE]'],
  ]);
  assert.deepEqual(res.toolCalls, [{ id: 'call_a', name: 'lookup', arguments: '{"order_id":"ORD-1"}' }, { id: 'call_b', name: 'other', arguments: '{}' }]);
  assert.equal(res.finishReason, 'tool_calls');
  assert.equal(res.systemFingerprint, 'fp_1');
  assert.deepEqual(res.usage, { inputTokens: 10, outputTokens: 5, cachedInputTokens: 4, cacheWriteTokens: 0 });
});

test('openai chat: stream events are rewritten in place, and a dropped usage field goes away', () => {
  const data = { id: 'c', model: 'm', choices: [{ index: 0, delta: { content: 'secret' } }], usage: { prompt_tokens: 1, completion_tokens: 1 } };
  const parsed = openaiChat.parseStreamEvent(undefined, JSON.stringify(data))!;
  const out = openaiChat.writeStreamEvent(parsed, [parsed.events[0], { type: 'text', index: 0, text: '******' }]);
  assert.deepEqual(out, { id: 'c', model: 'm', choices: [{ index: 0, delta: { content: '******' } }] });
});

test('openai responses: input items, instructions and stream events map to the canonical call', () => {
  const body = { model: 'gpt-4o', instructions: 'be kind', input: [
    { role: 'user', content: [{ type: 'input_text', text: 'hello' }] },
    { type: 'function_call', call_id: 'fc_1', name: 'lookup', arguments: '{}' },
    { type: 'function_call_output', call_id: 'fc_1', output: '{"status":"shipped"}' },
  ], stream: true };
  const req = openaiResponses.parseRequest(body);
  assert.deepEqual(req.messages.map((m) => m.role), ['system', 'user', 'assistant', 'tool']);
  assert.equal(req.streamUsage, true);
  assert.deepEqual(openaiResponses.writeRequest(body, { ...req, model: 'pinned' }), { ...body, model: 'pinned' });
  assert.deepEqual(openaiResponses.writeRequest({ model: 'x', input: 'hi' }, openaiResponses.parseRequest({ model: 'x', input: 'hi' })), { model: 'x', input: 'hi' });
  const res = streamOf(openaiResponses, [
    ['response.created', { type: 'response.created', response: { id: 'resp_1', model: 'gpt-4o-2024-08-06', status: 'in_progress' } }],
    ['response.output_text.delta', { type: 'response.output_text.delta', output_index: 0, delta: 'Hi ' }],
    ['response.output_text.delta', { type: 'response.output_text.delta', output_index: 0, delta: 'you' }],
    ['response.output_item.added', { type: 'response.output_item.added', output_index: 1, item: { type: 'function_call', call_id: 'fc_2', name: 'lookup', arguments: '' } }],
    ['response.function_call_arguments.delta', { type: 'response.function_call_arguments.delta', output_index: 1, delta: '{"a":1}' }],
    ['response.completed', { type: 'response.completed', response: { id: 'resp_1', model: 'gpt-4o-2024-08-06', status: 'completed', output: [], usage: { input_tokens: 7, output_tokens: 3, input_tokens_details: { cached_tokens: 0 } } } }],
  ]);
  assert.equal(res.text, 'Hi you');
  assert.deepEqual(res.toolCalls, [{ id: 'fc_2', name: 'lookup', arguments: '{"a":1}' }]);
  assert.equal(res.finishReason, 'completed');
  assert.deepEqual(res.usage, { inputTokens: 7, outputTokens: 3, cachedInputTokens: 0, cacheWriteTokens: 0 });
});

test('anthropic: system, tool_use and tool_result map both ways; cache tokens count as input', () => {
  const body = { model: 'claude-sonnet-4-5', max_tokens: 100, system: [{ type: 'text', text: 'rules', cache_control: { type: 'ephemeral' } }], messages: [
    { role: 'user', content: 'find ORD-1' },
    { role: 'assistant', content: [{ type: 'thinking', thinking: '…', signature: 's' }, { type: 'tool_use', id: 'tu_1', name: 'lookup', input: { id: 'ORD-1' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: 'shipped' }] }] },
  ] };
  const req = anthropicMessages.parseRequest(body);
  assert.deepEqual(req.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  assert.equal(req.messages[0].text, 'rules');
  assert.deepEqual(req.messages[2].toolCalls, [{ id: 'tu_1', name: 'lookup', arguments: '{"id":"ORD-1"}' }]);
  assert.deepEqual(req.messages[3].toolResults, [{ toolCallId: 'tu_1', content: 'shipped', isError: false }]);
  assert.equal(req.maxOutputTokens, 100);
  assert.deepEqual(anthropicMessages.writeRequest(body, { ...req, model: 'claude-sonnet-4-5-20250929' }), { ...body, model: 'claude-sonnet-4-5-20250929' });
  const res = anthropicMessages.parseResponse({ id: 'msg', model: 'm', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn',
    usage: { input_tokens: 10, output_tokens: 3, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 } });
  assert.deepEqual(res.usage, { inputTokens: 130, outputTokens: 3, cachedInputTokens: 100, cacheWriteTokens: 20 });
});

test('anthropic: streamed tool_use input deltas and split usage accumulate', () => {
  const res = streamOf(anthropicMessages, [
    ['message_start', { type: 'message_start', message: { id: 'msg_1', model: 'claude-sonnet-4-5-20250929', usage: { input_tokens: 12, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me look.' } }],
    ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'tu_9', name: 'lookup', input: {} } }],
    ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"id":' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"ORD-2"}' } }],
    ['ping', { type: 'ping' }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 30 } }],
    ['message_stop', { type: 'message_stop' }],
  ]);
  assert.equal(res.text, 'Let me look.');
  assert.deepEqual(res.toolCalls, [{ id: 'tu_9', name: 'lookup', arguments: '{"id":"ORD-2"}' }]);
  assert.deepEqual(res.usage, { inputTokens: 12, outputTokens: 30, cachedInputTokens: 0, cacheWriteTokens: 0 });
  assert.equal(res.finishReason, 'tool_use');
});

test('errors render in each provider\'s own shape with a warden_ type and a stable code', () => {
  const err = new UpstreamTimeoutError('openai', 'first token', 100);
  assert.deepEqual(JSON.parse(providers.openai.errorBody(err)), {
    error: { message: err.message, type: 'warden_upstream_timeout', param: null, code: 'WARDEN_ERR_UPSTREAM_TIMEOUT' },
  });
  assert.deepEqual(JSON.parse(providers.anthropic.errorBody(err)), {
    type: 'error', error: { type: 'warden_upstream_timeout', message: err.message, code: 'WARDEN_ERR_UPSTREAM_TIMEOUT' },
  });
  assert.match(providers.anthropic.streamErrorEvent(err), /^event: error\ndata: \{"type":"error"/);
  assert.match(providers.openai.streamErrorEvent(err), /^data: \{"error":/);
});
