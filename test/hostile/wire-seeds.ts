// Realistic wire bodies for the mutation fuzzer: one of each thing an adapter reads, from each API.
import type { Json } from '../../proxy/providers/types.ts';

const chatTool = { type: 'function', function: { name: 'lookup_order', description: 'd', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } };

export const REQUESTS: Json[] = [
  {
    model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, max_tokens: 50, n: 1, logprobs: true, tools: [chatTool],
    tool_choice: { type: 'function', function: { name: 'lookup_order' } },
    messages: [
      { role: 'system', content: 'be nice' },
      { role: 'user', content: [{ type: 'text', text: 'where is ORD-123456?' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_order', arguments: '{"order_id":"ORD-123456"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"status":"shipped"}' },
    ],
  },
  {
    model: 'gpt-4o', instructions: 'be nice', stream: true, max_output_tokens: 40, tools: [{ type: 'function', name: 'lookup_order', parameters: {} }],
    tool_choice: { type: 'function', name: 'lookup_order' },
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'hi' }] },
      { type: 'function_call', call_id: 'call_1', name: 'lookup_order', arguments: '{}' },
      { type: 'function_call_output', call_id: 'call_1', output: [{ type: 'input_text', text: 'ok' }] },
    ],
  },
  {
    model: 'claude-sonnet-4', max_tokens: 100, stream: true, system: [{ type: 'text', text: 'be nice' }],
    tools: [{ name: 'lookup_order', input_schema: { type: 'object' } }], tool_choice: { type: 'tool', name: 'lookup_order' },
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: [{ type: 'text', text: 'checking' }, { type: 'tool_use', id: 'toolu_1', name: 'lookup_order', input: { order_id: 'x' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'shipped' }], is_error: false }] },
    ],
  },
];

export const RESPONSES: Json[] = [
  {
    id: 'chatcmpl-1', model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp', usage: { prompt_tokens: 5, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 1 } },
    choices: [{ index: 0, finish_reason: 'tool_calls', logprobs: { content: [{ token: 'a', logprob: -0.1 }] }, message: { role: 'assistant', content: 'x', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_order', arguments: '{}' } }] } }],
  },
  {
    id: 'resp_1', model: 'gpt-4o', status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, usage: { input_tokens: 3, output_tokens: 4, input_tokens_details: { cached_tokens: 0 } },
    output: [{ type: 'message', id: 'msg_1', role: 'assistant', content: [{ type: 'output_text', text: 'hi', annotations: [] }] }, { type: 'function_call', call_id: 'c', name: 'n', arguments: '{}' }],
  },
  {
    id: 'msg_1', type: 'message', role: 'assistant', model: 'claude', stop_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3 },
    content: [{ type: 'text', text: 'hi' }, { type: 'tool_use', id: 'toolu_1', name: 'lookup_order', input: { a: 1 } }],
  },
];

/** [event name, data] pairs as each API streams them. */
export const EVENTS: [string | undefined, Json][] = [
  [undefined, { id: 'c', model: 'gpt-4o', choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, logprobs: { content: [{ logprob: -1 }] } }] }],
  [undefined, { id: 'c', model: 'gpt-4o', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', function: { name: 'lookup_order', arguments: '{"a' } }] } }] }],
  [undefined, { id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 1, completion_tokens: 2 } }],
  ['message_start', { type: 'message_start', message: { id: 'msg_1', model: 'claude', usage: { input_tokens: 5, output_tokens: 1 } } }],
  ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'lookup_order', input: {} } }],
  ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"a"' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hi' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 1 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }],
  ['message_stop', { type: 'message_stop' }],
  ['response.created', { type: 'response.created', sequence_number: 0, response: { id: 'resp_1', model: 'gpt-4o' } }],
  ['response.output_item.added', { type: 'response.output_item.added', sequence_number: 1, output_index: 0, item: { type: 'function_call', call_id: 'c', name: 'lookup_order', arguments: '' } }],
  ['response.function_call_arguments.delta', { type: 'response.function_call_arguments.delta', sequence_number: 2, output_index: 0, delta: '{}' }],
  ['response.output_item.done', { type: 'response.output_item.done', sequence_number: 3, output_index: 0, item: { type: 'function_call', call_id: 'c', name: 'lookup_order', arguments: '{}' } }],
  ['response.output_text.delta', { type: 'response.output_text.delta', sequence_number: 4, item_id: 'm', output_index: 1, content_index: 0, delta: 'hi' }],
  ['response.completed', { type: 'response.completed', sequence_number: 5, response: { id: 'resp_1', model: 'gpt-4o', status: 'completed', output: [{ type: 'function_call', call_id: 'c', name: 'lookup_order', arguments: '{}' }], usage: { input_tokens: 1, output_tokens: 1 } } }],
];
