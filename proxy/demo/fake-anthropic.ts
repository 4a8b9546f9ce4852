// The fake upstream's Anthropic side: messages (JSON and SSE), count_tokens, models, and Anthropic's
// error shape. Field names, event order and ids follow what api.anthropic.com sends and what the
// @anthropic-ai/sdk MessageStream accumulates.
import type { OutgoingHttpHeaders } from 'node:http';
import type { FakeProvider, FakeReply, FakeTurn, JsonBody } from './fake-upstream.ts';
import { fragments, randomId, sendEvents, sendJson, sse, textOf, wordPieces, writeJson, type Exchange } from './fake-sse.ts';

// Aliases the real API serves as a dated snapshot; any other name is served as asked.
const SNAPSHOTS = new Map([
  ['claude-sonnet-4-5', 'claude-sonnet-4-5-20250929'], ['claude-haiku-4-5', 'claude-haiku-4-5-20251001'],
  ['claude-opus-4-5', 'claude-opus-4-5-20251101'], ['claude-opus-4-1', 'claude-opus-4-1-20250805'],
  ['claude-opus-4-0', 'claude-opus-4-20250514'], ['claude-sonnet-4-0', 'claude-sonnet-4-20250514'],
  ['claude-3-7-sonnet-latest', 'claude-3-7-sonnet-20250219'], ['claude-3-5-haiku-latest', 'claude-3-5-haiku-20241022'],
]);
const MODELS = new Map([...new Set(SNAPSHOTS.values())].map((id) => [id, {
  type: 'model', id, display_name: id.replace(/-\d{8}$/, ''), created_at: `${id.slice(-8, -4)}-${id.slice(-4, -2)}-${id.slice(-2)}T00:00:00Z`,
}]));

const ERRORS: Record<number, { type: string; message(model: string): string }> = {
  400: { type: 'invalid_request_error', message: () => 'messages: at least one message is required' },
  401: { type: 'authentication_error', message: () => 'invalid x-api-key' },
  403: { type: 'permission_error', message: () => 'Your API key does not have permission to use the specified resource.' },
  404: { type: 'not_found_error', message: (m) => `model: ${m}` },
  413: { type: 'request_too_large', message: () => 'Request exceeds the maximum allowed number of bytes.' },
  429: { type: 'rate_limit_error', message: () => 'This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.' },
  500: { type: 'api_error', message: () => 'Internal server error' },
  529: { type: 'overloaded_error', message: () => 'Overloaded' },
};

function headers(ex: Exchange, stream: boolean): OutgoingHttpHeaders {
  return {
    'request-id': ex.requestId,
    'anthropic-organization-id': '00000000-0000-4000-8000-00000000fa4e',
    ...(stream ? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' } : {}),
  };
}

export const ANTHROPIC: FakeProvider = {
  newRequestId: () => `req_011C${randomId(20)}`,
  badJsonMessage: 'There was an error parsing the body of your request. Please make sure it is valid JSON.',
  error(ex, status, message, model = 'claude-sonnet-4-5') {
    const canned = ERRORS[status] ?? (status >= 500 ? ERRORS[500] : ERRORS[400]);
    const type = message === undefined ? canned.type : status >= 500 ? 'api_error' : status === 404 ? 'not_found_error' : 'invalid_request_error';
    const retry = ex.scenario.retryAfter === undefined ? {} : { 'retry-after': ex.scenario.retryAfter };
    writeJson(ex.res, status, { ...headers(ex, false), ...retry }, {
      type: 'error', error: { type, message: message ?? canned.message(model) }, request_id: ex.requestId,
    });
  },
};

/** The text of a block list's tool_result blocks; a tool_result's content is a string or text blocks. */
function toolResultText(content: unknown): string | undefined {
  if (!Array.isArray(content)) return undefined;
  const results = content.filter((b) => b?.type === 'tool_result');
  return results.length === 0 ? undefined : results.map((b) => textOf(b.content)).join(' ');
}

/** Reads a messages or count_tokens request; the system prompt counts as a message. */
function readMessages(body: JsonBody): FakeTurn | string {
  const messages = body.messages;
  if (typeof body.model !== 'string') return 'model: Field required';
  if (!Array.isArray(messages)) return 'messages: Field required';
  const texts: string[] = body.system == null ? [] : [textOf(body.system)];
  let lastUser = '';
  let toolResult: string | undefined;
  for (const m of messages) {
    toolResult = toolResultText(m?.content);
    const text = textOf(m?.content);
    texts.push(toolResult === undefined ? text : `${text} ${toolResult}`.trim());
    if (m?.role === 'user' && toolResult === undefined) lastUser = text;
  }
  const choice = body.tool_choice?.type;
  return {
    model: SNAPSHOTS.get(body.model) ?? body.model, texts, messages: texts.length, lastUser,
    toolResult: messages.at(-1)?.role === 'user' ? toolResult : undefined,
    tools: Array.isArray(body.tools) ? body.tools.map((t: JsonBody) => t?.name).filter((n: unknown) => typeof n === 'string') : [],
    toolChoice: choice === 'none' ? 'none' : choice === 'any' ? 'required' : choice === 'tool' ? { name: String(body.tool_choice.name) } : 'auto',
    maxTokens: body.max_tokens,
  };
}

/** Reads a messages request, which must say max_tokens. */
export function messagesTurn(body: JsonBody): FakeTurn | string {
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  return readMessages(body);
}

/** Reads a count_tokens request (no max_tokens, and never a reply cut short). */
export function countTokensTurn(body: JsonBody): FakeTurn | string {
  const turn = readMessages(body);
  return typeof turn === 'string' ? turn : { ...turn, maxTokens: undefined };
}

/** A tool_use input: the call's arguments when they are a JSON object, else {} (input must be one). */
function inputOf(args: string): object {
  try {
    const value = JSON.parse(args);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

const STOP_REASONS = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' } as const;

/** Answers POST /v1/messages. */
export function sendMessage(ex: Exchange, body: JsonBody, reply: FakeReply | undefined): Promise<void> {
  const r = reply!;
  const content: JsonBody[] = r.toolCalls.length > 0
    ? r.toolCalls.map((c) => ({ type: 'tool_use', id: `toolu_01${randomId(22)}`, name: c.name, input: inputOf(c.arguments) }))
    : [{ type: 'text', text: r.text }];
  const usage = {
    input_tokens: r.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, output_tokens: r.outputTokens, service_tier: 'standard',
  };
  const message = {
    id: `msg_01${randomId(22)}`, type: 'message', role: 'assistant', model: r.model, content,
    stop_reason: STOP_REASONS[r.finish], stop_sequence: null, usage,
  };
  if (body.stream !== true) return sendJson(ex, headers(ex, false), message);

  // The real stream reports one output token at the start and the total in message_delta.
  const events = [sse({ type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } }, 'message_start')];
  content.forEach((block, index) => {
    const opening = block.type === 'text' ? { type: 'text', text: '' } : { ...block, input: {} };
    events.push(sse({ type: 'content_block_start', index, content_block: opening }, 'content_block_start'));
    if (index === 0) events.push('event: ping\ndata: {"type": "ping"}\n\n');
    const deltas = block.type === 'text'
      ? wordPieces(block.text).map((text) => ({ type: 'text_delta', text }))
      // Like the real API, a tool's input starts with an empty fragment.
      : ['', ...fragments(JSON.stringify(block.input))].map((partial_json) => ({ type: 'input_json_delta', partial_json }));
    for (const delta of deltas) events.push(sse({ type: 'content_block_delta', index, delta }, 'content_block_delta'));
    events.push(sse({ type: 'content_block_stop', index }, 'content_block_stop'));
  });
  events.push(sse({
    type: 'message_delta', delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { input_tokens: r.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: r.outputTokens },
  }, 'message_delta'));
  events.push(sse({ type: 'message_stop' }, 'message_stop'));
  return sendEvents(ex, headers(ex, true), events);
}

/** Answers POST /v1/messages/count_tokens. */
export function sendTokenCount(ex: Exchange, _body: JsonBody, reply: FakeReply | undefined): Promise<void> {
  return sendJson(ex, headers(ex, false), { input_tokens: reply!.inputTokens });
}

/** Answers GET /v1/models and GET /v1/models/{id} for the Anthropic SDK. */
export function sendAnthropicModels(ex: Exchange): Promise<void> | void {
  const id = ex.rec.path.split('?', 1)[0].slice('/v1/models/'.length);
  const data = [...MODELS.values()];
  if (!id) return sendJson(ex, headers(ex, false), { data, has_more: false, first_id: data[0].id, last_id: data.at(-1)!.id });
  const model = MODELS.get(SNAPSHOTS.get(id) ?? id);
  return model ? sendJson(ex, headers(ex, false), model) : ANTHROPIC.error(ex, 404, undefined, id);
}
