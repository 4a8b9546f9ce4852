// The fake upstream's OpenAI side: chat completions and the Responses API (JSON and SSE), embeddings,
// models, and OpenAI's error shape. Field names, event order and ids follow what api.openai.com sends
// and what the openai SDK's stream accumulators expect.
import type { OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FakeProvider, FakeReply, FakeTurn, JsonBody } from './fake-upstream.ts';
import { HEX, fragments, nowSeconds, randomId, sendEvents, sendJson, sse, textOf, wordPieces, writeJson, type Exchange } from './fake-sse.ts';

// Aliases the real API serves as a dated snapshot; any other name is served as asked.
const SNAPSHOTS = new Map([
  ['gpt-4o', 'gpt-4o-2024-08-06'], ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18'], ['gpt-4-turbo', 'gpt-4-turbo-2024-04-09'],
  ['gpt-4.1', 'gpt-4.1-2025-04-14'], ['gpt-4.1-mini', 'gpt-4.1-mini-2025-04-14'], ['gpt-4.1-nano', 'gpt-4.1-nano-2025-04-14'],
  ['gpt-5', 'gpt-5-2025-08-07'], ['gpt-5-mini', 'gpt-5-mini-2025-08-07'], ['gpt-5-nano', 'gpt-5-nano-2025-08-07'],
  ['o1', 'o1-2024-12-17'], ['o3', 'o3-2025-04-16'], ['o3-mini', 'o3-mini-2025-01-31'], ['o4-mini', 'o4-mini-2025-04-16'],
  ['gpt-3.5-turbo', 'gpt-3.5-turbo-0125'],
]);
const MODELS = new Map([...SNAPSHOTS.keys(), ...SNAPSHOTS.values(), 'text-embedding-3-small', 'text-embedding-3-large']
  .map((id) => [id, { id, object: 'model', created: 1_715_367_049, owned_by: 'system' }]));
const FINGERPRINT = 'fp_fake01';
const EMBEDDING_DIMENSIONS = 8;

const ERRORS: Record<number, { type: string; param: string | null; code: string | null; message(model: string): string }> = {
  400: { type: 'invalid_request_error', param: 'messages[0].content', code: 'string_above_max_length',
    message: () => "Invalid 'messages[0].content': string too long. Expected a string with maximum length 10485760, but got a string with length 10485761 instead." },
  401: { type: 'invalid_request_error', param: null, code: 'invalid_api_key',
    message: () => 'Incorrect API key provided: sk-fake*****************1234. You can find your API key at https://platform.openai.com/account/api-keys.' },
  403: { type: 'request_forbidden', param: null, code: 'unsupported_country_region_territory', message: () => 'Country, region, or territory not supported' },
  404: { type: 'invalid_request_error', param: null, code: 'model_not_found', message: (m) => `The model \`${m}\` does not exist or you do not have access to it.` },
  429: { type: 'requests', param: null, code: 'rate_limit_exceeded',
    message: (m) => `Rate limit reached for ${m} in organization org-fake on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more.` },
  500: { type: 'server_error', param: null, code: null, message: () => 'The server had an error while processing your request. Sorry about that!' },
};
const OVERLOADED = { type: 'server_error', param: null, code: null, message: () => 'The server is overloaded or not ready yet.' };

function headers(ex: Exchange, stream: boolean): OutgoingHttpHeaders {
  return {
    'x-request-id': ex.requestId,
    'openai-version': '2020-10-01',
    'openai-organization': 'org-fake',
    'openai-processing-ms': String(Math.round(performance.now() - ex.startedAt)),
    ...(stream ? { 'content-type': 'text/event-stream; charset=utf-8' } : {}),
  };
}

export const OPENAI: FakeProvider = {
  newRequestId: () => `req_${randomId(32, HEX)}`,
  badJsonMessage: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
  error(ex, status, message, model = 'gpt-4o') {
    const canned = ERRORS[status] ?? (status >= 500 ? OVERLOADED : { ...ERRORS[400], param: null, code: null, message: () => `Request failed with status ${status}.` });
    const error = message === undefined
      ? { message: canned.message(model), type: canned.type, param: canned.param, code: canned.code }
      : { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null };
    const retry = ex.scenario.retryAfter === undefined ? {} : { 'retry-after': ex.scenario.retryAfter };
    writeJson(ex.res, status, { ...headers(ex, false), ...retry }, { error });
  },
};

function served(model: string): string {
  return SNAPSHOTS.get(model) ?? model;
}

function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools.map((t) => t?.function?.name ?? t?.name ?? t?.custom?.name).filter((n) => typeof n === 'string');
}

function toolChoice(choice: any): FakeTurn['toolChoice'] {
  if (choice === 'none' || choice === 'required') return choice;
  const name = choice?.function?.name ?? choice?.name;
  return typeof name === 'string' ? { name } : 'auto';
}

function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/** Reads a chat completions request. */
export function chatTurn(body: JsonBody): FakeTurn | string {
  const messages = body.messages;
  if (typeof body.model !== 'string') return 'you must provide a model parameter';
  if (!Array.isArray(messages)) return "Missing required parameter: 'messages'.";
  if (messages.length === 0) return "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.";
  const texts = messages.map((m) => textOf(m?.content));
  const lastUser = messages.findLastIndex((m) => m?.role === 'user');
  return {
    model: served(body.model), texts, messages: messages.length,
    lastUser: lastUser < 0 ? '' : texts[lastUser],
    toolResult: messages.at(-1)?.role === 'tool' ? texts.at(-1) : undefined,
    tools: toolNames(body.tools), toolChoice: toolChoice(body.tool_choice),
    maxTokens: asNumber(body.max_completion_tokens ?? body.max_tokens),
  };
}

/** Reads a Responses API request: `input` is a string or a list of items, `instructions` a message. */
export function responsesTurn(body: JsonBody): FakeTurn | string {
  if (typeof body.model !== 'string') return "Missing required parameter: 'model'.";
  const items: any[] = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : Array.isArray(body.input) ? body.input : [];
  const texts = typeof body.instructions === 'string' ? [body.instructions] : [];
  let lastUser = '';
  for (const item of items) {
    const text = textOf(item?.type === 'function_call_output' ? item.output : item?.content);
    texts.push(text);
    if (item?.role === 'user') lastUser = text;
  }
  return {
    model: served(body.model), texts, messages: texts.length, lastUser,
    toolResult: items.at(-1)?.type === 'function_call_output' ? texts.at(-1) : undefined,
    tools: toolNames(body.tools), toolChoice: toolChoice(body.tool_choice), maxTokens: asNumber(body.max_output_tokens),
  };
}

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// Stand-ins for the other candidates a real model weighs; top_logprobs is at most 20.
const ALTERNATIVES = [' the', ' a', ' and', ' of', ' to', ' in', ' is', ' it', ' that', ' for', ' on', ' with', ' as', ' was', ' at', ' by', ' this', ' be', ' or'];

/** A token's logprob entry: a fixed logprob if the scenario set one, else a confident one from its hash. */
function logprobEntry(token: string, top: number, fixed: number | undefined) {
  const logprob = fixed ?? -(hash(token) % 1000) / 5000;
  const bytes = Array.from(Buffer.from(token));
  const topLogprobs = Array.from({ length: Math.min(top, 20) }, (_, j) => (j === 0
    ? { token, logprob, bytes }
    : { token: ALTERNATIVES[j - 1], logprob: Math.round((logprob - j) * 1e4) / 1e4, bytes: Array.from(Buffer.from(ALTERNATIVES[j - 1])) }));
  return { token, logprob, bytes, top_logprobs: topLogprobs };
}

function chatUsage(r: FakeReply) {
  return {
    prompt_tokens: r.inputTokens, completion_tokens: r.outputTokens, total_tokens: r.inputTokens + r.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

/** Answers POST /v1/chat/completions. */
export function sendChat(ex: Exchange, body: JsonBody, reply: FakeReply | undefined): Promise<void> {
  const r = reply!;
  const id = `chatcmpl-${randomId(29)}`;
  const created = nowSeconds();
  const calls = r.toolCalls.map((c) => ({ id: `call_${randomId(24)}`, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  const top = Number(body.top_logprobs) || 0;
  const logprobs = body.logprobs === true ? (piece: string) => logprobEntry(piece, top, ex.scenario.logprob) : undefined;
  if (body.stream === true) return sendEvents(ex, headers(ex, true), chatChunks(id, created, r, calls, body.stream_options?.include_usage === true, logprobs));
  const message = calls.length > 0
    ? { role: 'assistant', content: null, tool_calls: calls, refusal: null, annotations: [] }
    : { role: 'assistant', content: r.text, refusal: null, annotations: [] };
  return sendJson(ex, headers(ex, false), {
    id, object: 'chat.completion', created, model: r.model,
    choices: [{ index: 0, message, logprobs: logprobs ? { content: wordPieces(r.text).map(logprobs), refusal: null } : null, finish_reason: r.finish }],
    usage: chatUsage(r), service_tier: 'default', system_fingerprint: FINGERPRINT,
  });
}

function chatChunks(id: string, created: number, r: FakeReply, calls: JsonBody[], withUsage: boolean, logprobs?: (piece: string) => object): string[] {
  // Every chunk shares its envelope, so it is rendered once; with usage on, each chunk says usage: null.
  const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(r.model)},"service_tier":"default","system_fingerprint":"${FINGERPRINT}","choices":`;
  const tail = withUsage ? ',"usage":null}\n\n' : '}\n\n';
  const chunk = (delta: object, lp: object | null = null, finish: string | null = null) =>
    `${head}[${JSON.stringify({ index: 0, delta, logprobs: lp, finish_reason: finish })}]${tail}`;
  const out: string[] = [];
  if (calls.length > 0) {
    calls.forEach((call, index) => {
      const opening = [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }];
      out.push(chunk(index === 0 ? { role: 'assistant', content: null, tool_calls: opening, refusal: null } : { tool_calls: opening }));
      for (const piece of fragments(call.function.arguments)) out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
    });
  } else {
    out.push(chunk({ role: 'assistant', content: '', refusal: null }));
    for (const piece of wordPieces(r.text)) out.push(chunk({ content: piece }, logprobs ? { content: [logprobs(piece)], refusal: null } : null));
  }
  out.push(chunk({}, null, r.finish));
  if (withUsage) out.push(`${head}[],"usage":${JSON.stringify(chatUsage(r))}}\n\n`);
  out.push('data: [DONE]\n\n');
  return out;
}

function responseObject(body: JsonBody, id: string, createdAt: number, r: FakeReply, status: string, output: JsonBody[], done: boolean) {
  return {
    id, object: 'response', created_at: createdAt, status, background: false, completed_at: done ? nowSeconds() : null, error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null, max_tool_calls: body.max_tool_calls ?? null,
    model: r.model, output, parallel_tool_calls: body.parallel_tool_calls ?? true, previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null, reasoning: { effort: null, summary: null }, safety_identifier: body.safety_identifier ?? null,
    service_tier: 'default', store: body.store ?? true, temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' }, verbosity: 'medium' }, tool_choice: body.tool_choice ?? 'auto', tools: body.tools ?? [],
    top_logprobs: body.top_logprobs ?? 0, top_p: body.top_p ?? 1, truncation: body.truncation ?? 'disabled',
    usage: done ? {
      input_tokens: r.inputTokens, input_tokens_details: { cached_tokens: 0 },
      output_tokens: r.outputTokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: r.inputTokens + r.outputTokens,
    } : null,
    user: body.user ?? null, metadata: body.metadata ?? {},
  };
}

/** Answers POST /v1/responses. */
export function sendResponse(ex: Exchange, body: JsonBody, reply: FakeReply | undefined): Promise<void> {
  const r = reply!;
  const id = `resp_${randomId(48, HEX)}`;
  const createdAt = nowSeconds();
  const status = r.finish === 'length' ? 'incomplete' : 'completed';
  const output: JsonBody[] = r.toolCalls.length > 0
    ? r.toolCalls.map((c) => ({ id: `fc_${randomId(48, HEX)}`, type: 'function_call', status: 'completed', arguments: c.arguments, call_id: `call_${randomId(24)}`, name: c.name }))
    : [{ id: `msg_${randomId(48, HEX)}`, type: 'message', status, content: [{ type: 'output_text', annotations: [], logprobs: [], text: r.text }], role: 'assistant' }];
  const final = responseObject(body, id, createdAt, r, status, output, true);
  if (body.stream !== true) return sendJson(ex, headers(ex, false), final);

  let sequence = 0;
  const event = (type: string, fields: object) => sse({ type, sequence_number: sequence++, ...fields }, type);
  const pending = responseObject(body, id, createdAt, r, 'in_progress', [], false);
  const events = [event('response.created', { response: pending }), event('response.in_progress', { response: pending })];
  output.forEach((item, output_index) => {
    const item_id = item.id;
    if (item.type === 'message') {
      const part = item.content[0];
      events.push(event('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } }));
      events.push(event('response.content_part.added', { item_id, output_index, content_index: 0, part: { ...part, text: '' } }));
      for (const delta of wordPieces(part.text)) events.push(event('response.output_text.delta', { item_id, output_index, content_index: 0, delta, logprobs: [] }));
      events.push(event('response.output_text.done', { item_id, output_index, content_index: 0, text: part.text, logprobs: [] }));
      events.push(event('response.content_part.done', { item_id, output_index, content_index: 0, part }));
    } else {
      events.push(event('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', arguments: '' } }));
      for (const delta of fragments(item.arguments)) events.push(event('response.function_call_arguments.delta', { item_id, output_index, delta }));
      events.push(event('response.function_call_arguments.done', { item_id, output_index, arguments: item.arguments }));
    }
    events.push(event('response.output_item.done', { output_index, item }));
  });
  events.push(event(status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final }));
  return sendEvents(ex, headers(ex, true), events);
}

/** The fake's embedding of an input: a deterministic unit vector of float32-exact values. */
export function fakeEmbedding(input: string | number[], dimensions = EMBEDDING_DIMENSIONS): number[] {
  let state = hash(typeof input === 'string' ? input : input.join(',')) | 1;
  const vector: number[] = [];
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const x = (state >>> 0) / 2 ** 31 - 1;
    vector.push(x);
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  return vector.map((x) => Math.fround(x / norm));
}

const isTokens = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((n) => typeof n === 'number');

/** Answers POST /v1/embeddings; tokens are ceil(characters / 4) per text, or the length of a token array. */
export function sendEmbeddings(ex: Exchange, body: JsonBody): Promise<void> | void {
  const input = body.input;
  const inputs: unknown[] = typeof input === 'string' || isTokens(input) ? [input] : Array.isArray(input) ? input : [];
  const dimensions = body.dimensions ?? EMBEDDING_DIMENSIONS;
  if (typeof body.model !== 'string') return OPENAI.error(ex, 400, 'you must provide a model parameter');
  if (inputs.length === 0 || !inputs.every((i) => typeof i === 'string' || isTokens(i))) {
    return OPENAI.error(ex, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
  }
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 3072) return OPENAI.error(ex, 400, `Invalid 'dimensions': ${dimensions}.`);
  const base64 = body.encoding_format === 'base64';
  let tokens = 0;
  const data = (inputs as (string | number[])[]).map((item, index) => {
    tokens += typeof item === 'string' ? Math.ceil(item.length / 4) : item.length;
    const vector = fakeEmbedding(item, dimensions);
    return { object: 'embedding', index, embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector };
  });
  return sendJson(ex, headers(ex, false), { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

/** Answers GET /v1/models and GET /v1/models/{id}. */
export function sendOpenAIModels(ex: Exchange): Promise<void> | void {
  const id = ex.rec.path.split('?', 1)[0].slice('/v1/models/'.length);
  if (!id) return sendJson(ex, headers(ex, false), { object: 'list', data: [...MODELS.values()] });
  const model = MODELS.get(id);
  return model ? sendJson(ex, headers(ex, false), model) : OPENAI.error(ex, 404, undefined, id);
}
