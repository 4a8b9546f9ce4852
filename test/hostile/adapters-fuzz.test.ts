// Fuzzing every provider adapter with JSON an agent or an upstream could send: parsing a request may
// refuse it only with InvalidRequestError (a 400), and nothing else an adapter does with a request, a
// response or a stream event (write-back, tool-call rewrites, stall trackers, logprobs) may throw at
// all: a TypeError there would be a 500 for an agent, or a broken stream.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InvalidRequestError } from '../../proxy/errors.ts';
import { providers } from '../../proxy/providers/index.ts';
import type { EndpointAdapter, HeldEvent, Json } from '../../proxy/providers/types.ts';
import { isResponse, textOf, textValue, tryParse } from '../../proxy/tools/mcp-wire.ts';
import { mutatedFrom, WIRE_WORDS, wireJson, wireObject } from '../helpers/hostile-arbitraries.ts';
import { EVENTS, REQUESTS, RESPONSES } from './wire-seeds.ts';

const RUNS = 1_000;
const adapters = [...new Set([...providers.openai.endpoints, ...providers.anthropic.endpoints].map((e) => e.adapter))];

const REQUEST_KEYS = ['model', 'messages', 'input', 'instructions', 'system', 'tools', 'functions', 'function_call', 'tool_choice', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'max_output_tokens', 'n', 'logprobs', 'mcp_servers'];
const RESPONSE_KEYS = ['id', 'model', 'choices', 'usage', 'system_fingerprint', 'output', 'status', 'incomplete_details', 'content', 'stop_reason', 'type', 'role'];
const EVENT_KEYS = ['type', 'index', 'delta', 'content_block', 'message', 'usage', 'choices', 'model', 'id', 'response', 'output_index', 'item', 'sequence_number', 'item_id', 'content_index'];

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Random bodies (naming a model half the time, so parsing gets past its first check), and realistic ones with traps planted deep. */
const requestBody = fc.oneof(
  fc.tuple(wireObject(REQUEST_KEYS), fc.boolean()).map(([b, named]) => (named ? { ...b, model: 'gpt-4o' } : b)),
  mutatedFrom(REQUESTS).filter(isObject),
);
const responseBody = fc.oneof(wireObject(RESPONSE_KEYS), mutatedFrom(RESPONSES).filter(isObject));
const eventName = fc.option(fc.constantFrom(...WIRE_WORDS), { nil: undefined });
/** A stream event's data: mostly event-shaped objects, sometimes any JSON value at all (null, arrays, strings). */
const eventData = fc.oneof({ weight: 4, arbitrary: wireObject(EVENT_KEYS) }, { weight: 1, arbitrary: wireJson });
/** [event name, data]: random, or a real event with traps planted. */
const streamEvent: fc.Arbitrary<[string | undefined, unknown]> = fc.oneof(
  fc.tuple(eventName, eventData),
  // A mutation may replace the whole pair; then the replacement is the data.
  mutatedFrom(EVENTS).map((pair: unknown): [string | undefined, unknown] => {
    if (!Array.isArray(pair) || pair.length !== 2) return [undefined, pair];
    return [typeof pair[0] === 'string' ? pair[0] : undefined, pair[1]];
  }),
);

function refusesOnlyWith400<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof InvalidRequestError, `${what} threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return undefined;
  }
}

function heldEvent(event: string | undefined, data: unknown): HeldEvent {
  const text = JSON.stringify(data);
  return { raw: Buffer.from(`${event === undefined ? '' : `event: ${event}\n`}data: ${text}\n\n`), event, data: text };
}

for (const adapter of adapters) {
  // Embeddings have no streams: their stream hooks throw by design and are never called.
  const streams = adapter.name !== 'openai.embeddings';

  describe(`adapter ${adapter.name}`, () => {
    test('parseRequest refuses only with InvalidRequestError, and what it parses writes back', () => {
      fc.assert(fc.property(requestBody, (body) => {
        const req = refusesOnlyWith400('parseRequest', () => adapter.parseRequest(body));
        if (req) JSON.stringify(adapter.writeRequest(body, req));
      }), { numRuns: RUNS });
    });

    test('parseResponse and writeResponse never throw', () => {
      fc.assert(fc.property(responseBody, (body) => {
        const res = adapter.parseResponse(body);
        JSON.stringify(adapter.writeResponse(body, res));
        if (adapter.logprobs) {
          adapter.logprobs.ofResponse(body);
          adapter.logprobs.asked(body);
          adapter.logprobs.strip(structuredClone(body));
        }
      }), { numRuns: RUNS });
    });

    // Endpoints without it (embeddings) have nothing to fuzz here, so the test is not registered.
    if (streams) test('parseStreamEvent never throws on JSON of any shape, and what it parses writes back', () => {
      fc.assert(fc.property(streamEvent, ([event, data]) => {
        const text = JSON.stringify(data);
        adapter.isTerminal(event, text);
        const parsed = adapter.parseStreamEvent(event, text);
        if (parsed) {
          JSON.stringify(adapter.writeStreamEvent(parsed, parsed.events));
          adapter.logprobs?.ofEvent(parsed.data);
          adapter.logprobs?.stripEvent(structuredClone(parsed.data));
        }
      }), { numRuns: RUNS });
    });

    // Endpoints without it (embeddings) have nothing to fuzz here, so the test is not registered.
    if (streams) test('parseStreamEvent refuses data that is not JSON only with a SyntaxError (the caller passes it through)', () => {
      fc.assert(fc.property(eventName, fc.string({ maxLength: 30 }), (event, data) => {
        adapter.isTerminal(event, data);
        try {
          adapter.parseStreamEvent(event, data);
        } catch (err) {
          assert.ok(err instanceof SyntaxError, `${(err as Error).name}: ${(err as Error).message}`);
        }
      }), { numRuns: RUNS });
    });

    // Endpoints without it (embeddings) have nothing to fuzz here, so the test is not registered.
    if (adapter.rewriteToolCalls) test('rewriteToolCalls takes any held tail and any blocked set', () => {
      const held = fc.array(streamEvent.map(([e, d]) => heldEvent(e, d)), { maxLength: 8 });
      const blocked = fc.array(fc.tuple(fc.integer({ min: -1, max: 4 }), fc.string({ maxLength: 10 })), { maxLength: 3 }).map((e) => new Map(e));
      fc.assert(fc.property(held, blocked, (h, b) => {
        for (const out of adapter.rewriteToolCalls!(h, b)) assert.ok(Buffer.isBuffer(out));
      }), { numRuns: RUNS });
    });

    // Endpoints without it (embeddings) have nothing to fuzz here, so the test is not registered.
    if (adapter.streamTracker) test('a stream tracker follows any events and can always close or continue the stream', () => {
      const events = fc.array(streamEvent, { maxLength: 10 });
      fc.assert(fc.property(events, requestBody, events, (seen, body, more) => {
        const tracker = adapter.streamTracker!();
        for (const [event, data] of seen) tracker.observe(event, isObject(data) ? data : undefined);
        const next = tracker.continuation?.(body);
        for (const [event, data] of next ? more : []) next!.splice(event, JSON.stringify(data));
        assert.ok(Buffer.isBuffer(tracker.close({ reason: 'fuzz' })));
      }), { numRuns: RUNS / 2 });
    });
  });
}

test('the MCP wire readers take any JSON-RPC message, however malformed', () => {
  const message = fc.oneof(mutatedFrom([
    { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: '{"a":1}' }], structuredContent: { a: 1 }, isError: false } },
    { jsonrpc: '2.0', id: 2, result: { tools: [{ name: 'search_customers', inputSchema: { type: 'object' } }] } },
    { jsonrpc: '2.0', id: 3, error: { code: -32000, message: 'x' } },
  ]), wireJson);
  fc.assert(fc.property(message, (m) => {
    isResponse(m as Json);
    if (isObject(m) && isObject(m.result)) {
      assert.equal(typeof textOf(m.result), 'string');
      textValue(m.result);
    }
    tryParse(Buffer.from(JSON.stringify(m)));
  }), { numRuns: RUNS });
});

test('every model endpoint is fuzzed', () => {
  assert.deepEqual(adapters.map((a: EndpointAdapter) => a.name).sort(), ['anthropic.messages', 'openai.chat', 'openai.embeddings', 'openai.responses']);
});
