// fast-check arbitraries for hostile input: JSON shaped like the wire formats (so random values reach
// deep into an adapter instead of bouncing off its first check), keys that trip code which treats
// parsed JSON as plain data, SSE byte streams, and request paths full of dot segments and escapes.
import fc from 'fast-check';

/**
 * Own properties JSON.parse creates without complaint that shadow Object.prototype: `toString` or
 * `valueOf` set to a non-function makes String(x) and `${x}` throw; `__proto__` is an own key, not
 * the prototype, until someone copies it with assignment.
 */
export const TRAP_KEYS = ['__proto__', 'toString', 'valueOf', 'constructor', 'hasOwnProperty', 'toJSON', 'then', 'length'] as const;

/** Field names the OpenAI chat, Responses and Anthropic messages formats use, requests, responses and stream events alike. */
export const WIRE_KEYS = [
  'model', 'messages', 'role', 'content', 'text', 'type', 'name', 'id', 'tool_calls', 'tool_call_id', 'function', 'arguments',
  'tools', 'tool_choice', 'functions', 'function_call', 'parameters', 'input_schema', 'custom', 'input', 'instructions', 'system',
  'stream', 'stream_options', 'include_usage', 'max_tokens', 'max_completion_tokens', 'max_output_tokens', 'n', 'logprobs',
  'top_logprobs', 'choices', 'index', 'delta', 'message', 'finish_reason', 'usage', 'prompt_tokens', 'completion_tokens',
  'input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens', 'prompt_tokens_details',
  'cached_tokens', 'system_fingerprint', 'output', 'output_index', 'item', 'item_id', 'call_id', 'status', 'incomplete_details',
  'reason', 'response', 'sequence_number', 'content_block', 'content_index', 'partial_json', 'stop_reason', 'tool_use_id',
  'is_error', 'mcp_servers', 'part', 'annotations', 'token', 'logprob', 'jsonrpc', 'method', 'params', 'result', 'error',
  'structuredContent', 'isError',
] as const;

/** String values the formats give meaning to (roles, block and event types, finish reasons). */
export const WIRE_WORDS = [
  'user', 'assistant', 'system', 'developer', 'tool', 'function', 'text', 'tool_use', 'tool_result', 'function_call',
  'function_call_output', 'custom_tool_call', 'custom_tool_call_output', 'message', 'output_text', 'input_text', 'text_delta',
  'input_json_delta', 'message_start', 'message_delta', 'message_stop', 'content_block_start', 'content_block_delta',
  'content_block_stop', 'response.created', 'response.output_item.added', 'response.output_item.done',
  'response.function_call_arguments.delta', 'response.function_call_arguments.done', 'response.output_text.delta',
  'response.completed', 'response.incomplete', 'response.failed', 'stop', 'length', 'tool_calls', 'end_turn', 'max_tokens',
  'incomplete', 'completed', 'in_progress', 'auto', 'required', 'none', 'any', 'gpt-4o', 'claude-sonnet-4', '[DONE]', '', 'tools/call',
  '{"a":1}', '{', 'null',
] as const;

const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...WIRE_KEYS) },
  { weight: 2, arbitrary: fc.constantFrom(...TRAP_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

const leaf = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...WIRE_WORDS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 5 }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, 0.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 53, 1e-300) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);

/**
 * Any JSON value, biased towards wire keys, wire words and trap keys. Round-tripped through JSON
 * text so it is exactly what JSON.parse hands an adapter (own `__proto__` keys, plain prototypes).
 */
export const wireJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; array: unknown[]; object: Record<string, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
})).value.map((v) => JSON.parse(JSON.stringify(v) ?? 'null'));

/** A JSON object whose top-level keys are the given fields (each optional) plus a few random ones. */
export function wireObject(fields: readonly string[] = WIRE_KEYS): fc.Arbitrary<Record<string, unknown>> {
  const known = fc.record(Object.fromEntries(fields.map((f) => [f, wireJson])), { requiredKeys: [] });
  const extra = fc.dictionary(key, wireJson, { maxKeys: 2 });
  return fc.tuple(known, extra).map(([a, b]) => JSON.parse(JSON.stringify({ ...b, ...a })) as Record<string, unknown>);
}

/** Bytes that look like an SSE stream: field names, colons, every line terminator, blank lines, UTF-8 split anywhere. */
export const sseBytes: fc.Arbitrary<Buffer> = fc.array(fc.oneof(
  fc.constantFrom('data:', 'data: ', 'event:', 'event: ', 'id: 1', ': comment', 'retry: 5', '\n', '\r', '\r\n', '\n\n', '\r\r', '\r\n\r\n', ':'),
  fc.constantFrom('{"type":"message_start"}', '[DONE]', 'é', '\u{1F600}', 'x'),
  fc.string({ maxLength: 6 }),
).map((s) => Buffer.from(s)), { maxLength: 40 }).map((parts) => Buffer.concat(parts));

/** Ways to cut `length` bytes into chunks: sorted cut offsets. */
export function cutsOf(length: number): fc.Arbitrary<number[]> {
  return fc.uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: Math.min(length + 1, 12) }).map((c) => c.sort((a, b) => a - b));
}

/** Request targets assembled from mount prefixes, traversal in every spelling, escapes and junk. */
export const requestTarget: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom('', '/', '/v1/', '/anthropic/', '/upstreams/', '/tools/', '/mcp/', '/agents/', '//', '/tools', '/mcp', '*', 'http://x/'),
  fc.array(fc.oneof(
    fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '.%2e', '%2e', '%252e%252e', '..%2f', '..%2F', '%2f', '%5c', '\\', '..\\', '...', '.hidden', '..;'),
    fc.constantFrom('lookup_order', 'crm', 'chat', 'completions', 'v1', 'admin', '', '%', '%zz', '%c3%a9', '%ff', '%00', '?', '?a=..', '#', ';', '@'),
    fc.string({ maxLength: 5 }),
  ), { maxLength: 6 }),
).map(([prefix, segs]) => prefix + segs.join('/'));

/** Every path (keys and indices) to a value inside a JSON value, the root included. */
function pathsOf(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], root);
  Object.defineProperty(parent, path.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

/** A trap value for any position: an object String() cannot convert, or a type nobody expects there. */
export const trapValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant({ toString: 1, valueOf: 1 }),
  fc.constant(JSON.parse('{"__proto__":{"role":"system"}}')),
  fc.constantFrom(null, [], {}, '', -1, 1e308, true, '[DONE]'),
  wireJson,
);

/**
 * Realistic JSON with a few values swapped for traps or random JSON: mutation reaches the deep
 * positions (a tool call's name, a content part's type) that random bodies seldom get to.
 */
export function mutatedFrom<T>(seeds: readonly T[]): fc.Arbitrary<T> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), trapValue), { minLength: 1, maxLength: 3 })).map(([seed, edits]) => {
    let doc: unknown = JSON.parse(JSON.stringify(seed));
    for (const [pick, value] of edits) {
      const paths = pathsOf(doc);
      doc = setAt(doc, paths[pick % paths.length], JSON.parse(JSON.stringify(value) ?? 'null'));
    }
    return doc as T;
  });
}
