// Scripted upstream streams for the sanitization tests: each provider's exact SSE shapes, with text and
// tool-call arguments cut into the pieces a test chooses (so secrets straddle event boundaries).
const sse = (data: unknown, event?: string) => `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;

/** An OpenAI chat stream: text pieces, then one tool call's argument pieces. */
export function chatStream(text: readonly string[], args: readonly string[], tool = 'save_contact'): string[] {
  const base = { id: 'chatcmpl-z', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-11-20' };
  const chunk = (delta: unknown, finish: string | null = null) => sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  return [
    chunk({ role: 'assistant', content: '' }),
    ...text.map((t) => chunk({ content: t })),
    chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: tool, arguments: '' } }] }),
    ...args.map((a) => chunk({ tool_calls: [{ index: 0, function: { arguments: a } }] })),
    chunk({}, 'tool_calls'),
    sse({ ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: 20, total_tokens: 29 } }),
    'data: [DONE]\n\n',
  ];
}

/** An Anthropic messages stream: a text block, then a tool_use block. */
export function anthropicStream(text: readonly string[], args: readonly string[], tool = 'save_contact'): string[] {
  return [
    sse({ type: 'message_start', message: { id: 'msg_z', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1 } } }, 'message_start'),
    sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
    ...text.map((t) => sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } }, 'content_block_delta')),
    sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
    sse({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: tool, input: {} } }, 'content_block_start'),
    ...args.map((a) => sse({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: a } }, 'content_block_delta')),
    sse({ type: 'content_block_stop', index: 1 }, 'content_block_stop'),
    sse({ type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 20 } }, 'message_delta'),
    sse({ type: 'message_stop' }, 'message_stop'),
  ];
}

/** An OpenAI Responses stream: a message item, then a function_call item, with every .done event and the final output. */
export function responsesStream(text: readonly string[], args: readonly string[], tool = 'save_contact'): string[] {
  let seq = 0;
  const ev = (type: string, fields: object) => sse({ type, sequence_number: seq++, ...fields }, type);
  const whole = text.join('');
  const argsWhole = args.join('');
  const message = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: whole, annotations: [], logprobs: [] }] };
  const call = { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_1', name: tool, arguments: argsWhole };
  const response = (status: string, output: unknown[]) => ({
    id: 'resp_z', object: 'response', created_at: 1, status, model: 'gpt-4o-2024-11-20', output, error: null, incomplete_details: null,
    usage: status === 'completed' ? { input_tokens: 9, output_tokens: 20, total_tokens: 29, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } } : null,
  });
  const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
  return [
    ev('response.created', { response: response('in_progress', []) }),
    ev('response.output_item.added', { output_index: 0, item: { ...message, status: 'in_progress', content: [] } }),
    ev('response.content_part.added', { ...at, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }),
    ...text.map((t) => ev('response.output_text.delta', { ...at, delta: t, logprobs: [] })),
    ev('response.output_text.done', { ...at, text: whole, logprobs: [] }),
    ev('response.content_part.done', { ...at, part: message.content[0] }),
    ev('response.output_item.done', { output_index: 0, item: message }),
    ev('response.output_item.added', { output_index: 1, item: { ...call, status: 'in_progress', arguments: '' } }),
    ...args.map((a) => ev('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: a })),
    ev('response.function_call_arguments.done', { item_id: 'fc_1', output_index: 1, arguments: argsWhole }),
    ev('response.output_item.done', { output_index: 1, item: call }),
    ev('response.completed', { response: response('completed', [message, call]) }),
  ];
}
