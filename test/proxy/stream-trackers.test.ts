// Stream trackers end a stalled stream as a finished, truncated answer (and, for Anthropic, continue
// it by prefill). Each stream is a real one from the fake upstream (or hand-written in the exact wire
// format), cut after k events; the cut stream plus what the tracker adds is served from a local
// server and read by the official SDK, which must finish cleanly with exactly the text sent before
// the cut and the provider's "cut short" finish reason.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { SseSplitter } from '../../proxy/http/sse.ts';
import { anthropicMessages } from '../../proxy/providers/anthropic-messages.ts';
import { openaiChat } from '../../proxy/providers/openai-chat.ts';
import { openaiResponses } from '../../proxy/providers/openai-responses.ts';
import type { Json, StreamTracker } from '../../proxy/providers/types.ts';

interface Ev {
  event?: string;
  data: string;
  json?: Json;
  raw: Buffer;
}

const NOTE = { partial: true, reason: 'upstream stalled', request_id: 'req-test' };

let fake: FakeUpstream;
let server: Server;
let base = '';
const served = new Map<string, Buffer>();

before(async () => {
  fake = await startFakeUpstream();
  // Serves each test's bytes as an SSE body under /s/{id}/, whatever path the SDK appends.
  server = createServer((req, res) => {
    req.resume();
    const bytes = served.get((req.url ?? '').split('/')[2] ?? '');
    if (!bytes) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_test' });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await fake.close();
});

/** Splits SSE bytes into their data events, as Warden's relay does. */
function parse(bytes: Buffer | string): Ev[] {
  const splitter = new SseSplitter(1 << 20);
  const out: Ev[] = [];
  for (const p of splitter.push(Buffer.from(bytes))) {
    if (Buffer.isBuffer(p) || p.data === undefined) continue;
    let json: Json | undefined;
    try {
      json = JSON.parse(p.data);
    } catch {
      json = undefined;
    }
    out.push({ event: p.event, data: p.data, json, raw: p.raw });
  }
  return out;
}

/** A stream from the fake upstream. */
async function capture(path: string, body: Json): Promise<Ev[]> {
  const res = await fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return parse(Buffer.from(await res.arrayBuffer()));
}

function observe(tracker: StreamTracker, evs: readonly Ev[]): void {
  for (const e of evs) tracker.observe(e.event, e.json);
}

/** The first k events as the client got them, then what the tracker closes with (observed too, as the relay does). */
function cutAndClose(tracker: StreamTracker, evs: readonly Ev[], k: number): { bytes: Buffer; closing: Ev[] } {
  observe(tracker, evs.slice(0, k));
  const close = tracker.close(NOTE);
  const closing = parse(close);
  observe(tracker, closing);
  assert.equal(tracker.finished, true, 'the tracker sees its own closing events as the end');
  assert.equal(tracker.close(NOTE).length, 0, 'a finished stream gets nothing more');
  return { bytes: Buffer.concat([...evs.slice(0, k).map((e) => e.raw), close]), closing };
}

function serve(bytes: Buffer): string {
  const id = String(served.size);
  served.set(id, bytes);
  return `${base}/s/${id}`;
}

const openai = (bytes: Buffer) => new OpenAI({ apiKey: 'sk-test', baseURL: `${serve(bytes)}/v1`, maxRetries: 0 });
const anthropic = (bytes: Buffer) => new Anthropic({ apiKey: 'sk-ant-test', baseURL: serve(bytes), maxRetries: 0 });

describe('openai chat completions', () => {
  const tools = [{ type: 'function' as const, function: { name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }];
  const streams: [string, Json][] = [
    ['text', { model: 'gpt-4o', messages: [{ role: 'user', content: 'one two three four five' }] }],
    ['text with usage', { model: 'gpt-4o', messages: [{ role: 'user', content: 'one two three' }], stream_options: { include_usage: true } }],
    ['tool call', { model: 'gpt-4o', tools, messages: [{ role: 'user', content: 'find it [[call lookup_order {"order_id":"ORD-123456","note":"a longer argument"}]]' }] }],
  ];
  for (const [name, body] of streams) {
    test(`${name}: every cut ends as a finished completion the SDK reads`, async () => {
      const evs = await capture('/v1/chat/completions', body);
      for (let k = 0; k <= evs.length; k++) {
        const tracker = openaiChat.streamTracker!();
        const { bytes, closing } = cutAndClose(tracker, evs, k);
        const sent = evs.slice(0, k).flatMap((e) => (e.json ? (e.json.choices as Json[]) : []));
        const text = sent.map((c) => (c.delta as Json)?.content ?? '').join('');
        const args = sent.flatMap((c) => ((c.delta as Json)?.tool_calls as Json[] | undefined) ?? []).map((t) => (t.function as Json)?.arguments ?? '').join('');
        const finish = sent.find((c) => typeof c.finish_reason === 'string')?.finish_reason ?? 'length';

        const final = await openai(bytes).chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], tools: body.tools ? tools : undefined }).finalChatCompletion();
        const choice = final.choices[0];
        assert.equal(choice.finish_reason, finish, `k=${k}`);
        assert.equal(choice.message.content ?? '', text, `k=${k}`);
        assert.equal(choice.message.tool_calls?.[0]?.type === 'function' ? choice.message.tool_calls[0].function.arguments : '', args, `k=${k}`);
        // Nothing Warden adds carries content: the client never gets a byte twice.
        for (const e of closing.filter((c) => c.json)) {
          const delta = ((e.json!.choices as Json[])[0].delta ?? {}) as Json;
          assert.ok(!delta.tool_calls && !delta.content, `k=${k}: ${e.data}`);
          assert.deepEqual(e.json!.warden, NOTE);
          assert.equal(e.json!.id, k > 0 ? evs[0].json!.id : 'chatcmpl-warden-partial');
        }
        if (k < evs.length) assert.equal(closing.at(-1)?.data, '[DONE]');
      }
    });
  }

  test('the plain create({ stream: true }) iterator ends on the closing chunk', async () => {
    const evs = await capture('/v1/chat/completions', streams[0][1]);
    const { bytes } = cutAndClose(openaiChat.streamTracker!(), evs, 4);
    const chunks = [];
    for await (const chunk of await openai(bytes).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true })) chunks.push(chunk);
    assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'length');
    assert.deepEqual((chunks.at(-1) as unknown as Json).warden, NOTE);
    assert.equal(chunks.length, 5, 'the four chunks sent, then the closing one');
  });

  test('no continuation: chat has no assistant prefill', () => {
    assert.equal(openaiChat.streamTracker!().continuation, undefined);
  });
});

describe('anthropic messages: close', () => {
  const tools = [{ name: 'lookup_order', input_schema: { type: 'object' as const, properties: { order_id: { type: 'string' } } } }];
  const streams: [string, Json][] = [
    ['text', { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'one two three four five' }] }],
    ['tool use', { model: 'claude-sonnet-4-5', max_tokens: 100, tools, messages: [{ role: 'user', content: 'find [[call lookup_order {"order_id":"ORD-123456","note":"some more input"}]]' }] }],
  ];
  for (const [name, body] of streams) {
    test(`${name}: every cut ends as a finished message the SDK reads`, async () => {
      const evs = await capture('/v1/messages', body);
      for (let k = 0; k <= evs.length; k++) {
        const tracker = anthropicMessages.streamTracker!();
        const { bytes, closing } = cutAndClose(tracker, evs, k);
        const sent = evs.slice(0, k).map((e) => e.json!);
        const text = sent.filter((e) => e.type === 'content_block_delta').map((e) => (e.delta as Json).text ?? '').join('');
        const delta = sent.find((e) => e.type === 'message_delta');
        const start = sent.find((e) => e.type === 'message_start');

        const final = await anthropic(bytes).messages.stream({ model: 'claude-opus-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
        assert.equal(final.stop_reason, delta ? (delta.delta as Json).stop_reason : 'max_tokens', `k=${k}`);
        assert.equal(final.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), text, `k=${k}`);
        const usage = delta?.usage ?? ((start?.message as Json | undefined)?.usage) ?? { output_tokens: 0 };
        assert.equal(final.usage.output_tokens, (usage as Json).output_tokens, `k=${k}`);
        if (name === 'tool use' && sent.some((e) => e.type === 'content_block_start')) {
          const block = final.content[0];
          assert.equal(block.type, 'tool_use', `k=${k}`);
        }
        for (const e of closing) {
          assert.ok(e.json!.type !== 'content_block_delta' && e.json!.type !== 'content_block_start', `k=${k}: ${e.data}`);
          assert.equal(e.event, e.json!.type);
        }
        if (k < evs.length) {
          assert.equal(closing.at(-1)!.json!.type, 'message_stop');
          assert.equal(closing.filter((e) => e.json!.warden !== undefined).length, 1, `k=${k}: one closing event carries the note`);
        }
      }
    });
  }
});

describe('openai responses', () => {
  const tools = [{ type: 'function' as const, name: 'lookup_order', strict: false, parameters: { type: 'object', properties: { order_id: { type: 'string' } } } }];
  const streams: [string, Json][] = [
    ['text', { model: 'gpt-4o', input: 'one two three four five' }],
    ['function call', { model: 'gpt-4o', tools, input: 'find [[call lookup_order {"order_id":"ORD-123456","note":"longer arguments here"}]]' }],
  ];
  for (const [name, body] of streams) {
    test(`${name}: every cut ends as an incomplete response the SDK reads`, async () => {
      const evs = await capture('/v1/responses', body);
      for (let k = 0; k <= evs.length; k++) {
        const tracker = openaiResponses.streamTracker!();
        const { bytes, closing } = cutAndClose(tracker, evs, k);
        const sent = evs.slice(0, k).map((e) => e.json!);
        const text = sent.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
        const args = sent.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta).join('');
        const completed = sent.some((e) => e.type === 'response.completed');

        const final = await openai(bytes).responses.stream({ model: 'gpt-4o', input: 'x', tools: body.tools ? tools : undefined }).finalResponse();
        assert.equal(final.status, completed ? 'completed' : 'incomplete', `k=${k}`);
        if (!completed) assert.deepEqual(final.incomplete_details, { reason: 'max_output_tokens' });
        assert.equal(final.output_text, text, `k=${k}`);
        const call = final.output.find((i) => i.type === 'function_call');
        assert.equal(call?.type === 'function_call' ? call.arguments : '', args, `k=${k}`);
        if (k > 0) assert.equal(final.id, (evs[0].json!.response as Json).id);

        const all = parse(bytes).map((e) => e.json!);
        const numbers = all.map((e) => e.sequence_number);
        if (k > 0) assert.deepEqual(numbers, numbers.map((_, i) => i), `k=${k}: sequence numbers run on`);
        for (const e of closing) {
          assert.ok(!String(e.json!.type).endsWith('.delta') && e.json!.type !== 'response.output_item.added', `k=${k}: ${e.data}`);
          assert.equal(e.event, e.json!.type);
        }
        if (k < evs.length) {
          const last = closing.at(-1)!.json!;
          assert.equal(last.type, 'response.incomplete');
          assert.deepEqual(last.warden, NOTE);
        }
      }
    });
  }

  test('no continuation: the Responses API has no assistant prefill', () => {
    assert.equal(openaiResponses.streamTracker!().continuation, undefined);
  });
});

type Block = { text: string[] } | { tool: string; json: string[] };

/** An Anthropic stream in the exact wire format api.anthropic.com (and the fake) sends. */
function anthropicWire(blocks: Block[], outputTokens: number, stop = 'end_turn'): Ev[] {
  const ev = (data: Json) => `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
  const usage = { input_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const out = [ev({
    type: 'message_start',
    message: { id: `msg_01${Math.random().toString(36).slice(2, 12)}`, type: 'message', role: 'assistant', model: 'claude-opus-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
  })];
  blocks.forEach((b, index) => {
    const opening = 'text' in b ? { type: 'text', text: '' } : { type: 'tool_use', id: `toolu_01test${index}`, name: b.tool, input: {} };
    out.push(ev({ type: 'content_block_start', index, content_block: opening }));
    if (index === 0) out.push('event: ping\ndata: {"type": "ping"}\n\n');
    const deltas = 'text' in b ? b.text.map((text) => ({ type: 'text_delta', text })) : ['', ...b.json].map((partial_json) => ({ type: 'input_json_delta', partial_json }));
    for (const delta of deltas) out.push(ev({ type: 'content_block_delta', index, delta }));
    out.push(ev({ type: 'content_block_stop', index }));
  });
  out.push(ev({ type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { ...usage, output_tokens: outputTokens } }));
  out.push(ev({ type: 'message_stop' }));
  return parse(out.join(''));
}

/** The index just after the n-th event of a type (1-based). */
function justAfter(evs: readonly Ev[], type: string, n = 1): number {
  let seen = 0;
  const i = evs.findIndex((e) => e.json?.type === type && ++seen === n);
  assert.ok(i >= 0, `no ${type} #${n}`);
  return i + 1;
}

/** Blocks open and close in order 0, 1, …, every delta lands in an open block, and there is one message. */
function assertConsistent(evs: readonly Ev[]): void {
  let next = 0;
  const open = new Set<number>();
  for (const { json: j, data } of evs) {
    const index = j?.index as number;
    if (j?.type === 'content_block_start') {
      assert.equal(index, next++, data);
      open.add(index);
    } else if (j?.type === 'content_block_delta') assert.ok(open.has(index), data);
    else if (j?.type === 'content_block_stop') assert.ok(open.delete(index), data);
    else if (j?.type === 'message_delta' || j?.type === 'message_stop') assert.equal(open.size, 0, data);
  }
  assert.equal(evs.filter((e) => e.json?.type === 'message_start').length, 1);
  assert.equal(evs.filter((e) => e.json?.type === 'message_stop').length, 1);
}

/**
 * Runs a stall: the client's first k events, then the continuation spliced in (each spliced event
 * observed, as the relay does), up to `upTo` of its events.
 */
function stallAndContinue(tracker: StreamTracker, body: Json, client: Buffer[], contEvs: readonly Ev[], upTo = contEvs.length) {
  const cont = tracker.continuation!(body);
  assert.ok(cont, 'the stream can be continued');
  for (const e of contEvs.slice(0, upTo)) {
    const bytes = cont.splice(e.event, e.data);
    if (!bytes) continue;
    observe(tracker, parse(bytes));
    client.push(bytes);
  }
  return cont;
}

function start(evs: readonly Ev[], k: number): { tracker: StreamTracker; client: Buffer[] } {
  const tracker = anthropicMessages.streamTracker!();
  observe(tracker, evs.slice(0, k));
  return { tracker, client: evs.slice(0, k).map((e) => e.raw) };
}

async function finalOf(client: Buffer[]) {
  const bytes = Buffer.concat(client);
  assertConsistent(parse(bytes));
  return anthropic(bytes).messages.stream({ model: 'claude-opus-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
}

const textOf = (m: Anthropic.Message) => m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
const deltasOf = (evs: readonly Ev[]) => evs.filter((e) => e.json?.type === 'content_block_delta').map((e) => (e.json!.delta as Json).text ?? '').join('');
const outputTokensOf = (evs: readonly Ev[]) => (evs.find((e) => e.json?.type === 'message_delta')!.json!.usage as Json).output_tokens as number;

describe('anthropic messages: continue by prefill', () => {
  const body: Json = { model: 'claude-sonnet-4-5', max_tokens: 200, temperature: 0.2, messages: [{ role: 'user', content: 'one two three four five six seven' }] };

  test('cut mid-text against the fake: the body prefills the text so far and the splice reads as one message', async () => {
    const evs = await capture('/v1/messages', body);
    const k = justAfter(evs, 'content_block_delta', 4);
    const prefix = deltasOf(evs.slice(0, k));
    assert.equal(prefix, 'You said: one two');
    const { tracker, client } = start(evs, k);
    const cont = tracker.continuation!(body)!;
    assert.deepEqual(cont.body, { ...body, stream: true, messages: [...(body.messages as Json[]), { role: 'assistant', content: prefix }] });
    assert.deepEqual(body.messages, [{ role: 'user', content: 'one two three four five six seven' }], 'the original body is left as it was');

    // The fake answers the continuation body (it ignores the prefill, so its text is simply appended).
    const contEvs = await capture('/v1/messages', cont.body);
    stallAndContinue(tracker, body, client, contEvs);
    assert.equal(tracker.finished, true);
    const final = await finalOf(client);
    assert.equal(textOf(final), prefix + deltasOf(contEvs));
    assert.equal(final.content.length, 1, 'the text carries on in the open block');
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 1 + outputTokensOf(contEvs), 'the first call\'s count plus the continuation\'s');
    assert.equal(final.usage.input_tokens, (evs[0].json!.message as any).usage.input_tokens + (contEvs[0].json!.message as any).usage.input_tokens);
  });

  const whitespace: [string, string[], number, string[], string][] = [
    ['a space repeated', ['Hello', ' there, ', 'my', ' friend.'], 2, [' my', ' friend.'], 'Hello there, my friend.'],
    ['a space not repeated', ['Hello', ' there, ', 'my', ' friend.'], 2, ['my friend.'], 'Hello there, my friend.'],
    ['a space alone in the first delta', ['Hello', ' there, ', 'my'], 2, [' ', 'my friend.'], 'Hello there, my friend.'],
    ['more spaces than were cut', ['Hello', ' there, ', 'my'], 2, ['  my'], 'Hello there,  my'],
    ['blank lines', ['Title:', '\n\n', 'Body'], 2, ['\n\nBody text.'], 'Title:\n\nBody text.'],
  ];
  for (const [name, pieces, cutAfter, contPieces, expected] of whitespace) {
    test(`a prefix ending in whitespace (${name}): the prefill is trimmed and nothing is sent twice or lost`, async () => {
      const evs = anthropicWire([{ text: pieces }], 9);
      const k = justAfter(evs, 'content_block_delta', cutAfter);
      const { tracker, client } = start(evs, k);
      const prefix = pieces.slice(0, cutAfter).join('');
      const cont = tracker.continuation!(body)!;
      assert.deepEqual((cont.body.messages as Json[]).at(-1), { role: 'assistant', content: prefix.trimEnd() });
      stallAndContinue(tracker, body, client, anthropicWire([{ text: contPieces }], 4));
      const final = await finalOf(client);
      assert.equal(textOf(final), expected);
      assert.ok(textOf(final).startsWith(prefix), 'the client\'s text is a prefix of the answer');
      assert.equal(final.usage.output_tokens, 1 + 4);
    });
  }

  test('the client\'s block was already closed: the continuation opens the next one', async () => {
    const evs = anthropicWire([{ text: ['Hello', ' there'] }], 3);
    const { tracker, client } = start(evs, justAfter(evs, 'content_block_stop'));
    stallAndContinue(tracker, body, client, anthropicWire([{ text: [' and', ' more.'] }], 2, 'max_tokens'));
    const final = await finalOf(client);
    assert.deepEqual(final.content.map((b) => (b.type === 'text' ? b.text : b.type)), ['Hello there', ' and more.']);
    assert.equal(final.stop_reason, 'max_tokens', 'the stop reason is the continuation\'s');
  });

  test('the continuation\'s later blocks are shifted past the client\'s', async () => {
    const evs = anthropicWire([{ text: ['Let', ' me', ' check'] }], 3);
    const { tracker, client } = start(evs, justAfter(evs, 'content_block_delta', 3));
    const contEvs = anthropicWire([{ text: [' that', ' order.'] }, { tool: 'lookup_order', json: ['{"order_', 'id":"ORD-1"}'] }], 12, 'tool_use');
    stallAndContinue(tracker, body, client, contEvs);
    const final = await finalOf(client);
    assert.equal(final.content.length, 2);
    assert.deepEqual(final.content[0], { type: 'text', text: 'Let me check that order.' });
    assert.equal(final.content[1].type, 'tool_use');
    assert.deepEqual(final.content[1].type === 'tool_use' && final.content[1].input, { order_id: 'ORD-1' });
    assert.equal(final.stop_reason, 'tool_use');
    // After a tool_use block, a further stall could not be continued, only closed.
    assert.equal(tracker.continuation!(body), undefined);
  });

  test('a continuation that starts with a tool_use closes the client\'s open text block first', async () => {
    const evs = anthropicWire([{ text: ['Checking'] }], 3);
    const { tracker, client } = start(evs, justAfter(evs, 'content_block_delta'));
    stallAndContinue(tracker, body, client, anthropicWire([{ tool: 'lookup_order', json: ['{}'] }], 5, 'tool_use'));
    const final = await finalOf(client);
    assert.deepEqual(final.content.map((b) => b.type), ['text', 'tool_use']);
    assert.equal(textOf(final), 'Checking');
  });

  const story = anthropicWire([{ text: ['Once', ' upon', ' a', ' time'] }], 4);
  const firstCont = anthropicWire([{ text: [' a', ' time', ' there', ' was'] }], 4);
  const firstPart = justAfter(firstCont, 'content_block_delta', 2);

  test('a second stall inside the continuation can be closed', async () => {
    const { tracker, client } = start(story, justAfter(story, 'content_block_delta', 2));
    stallAndContinue(tracker, body, client, firstCont, firstPart);
    const closing = tracker.close(NOTE);
    observe(tracker, parse(closing));
    assert.equal(tracker.finished, true);
    const final = await finalOf([...client, closing]);
    assert.equal(textOf(final), 'Once upon a time');
    assert.equal(final.stop_reason, 'max_tokens');
  });

  test('a second stall inside the continuation can be continued from everything the client has', async () => {
    const { tracker, client } = start(story, justAfter(story, 'content_block_delta', 2));
    stallAndContinue(tracker, body, client, firstCont, firstPart);
    const second = tracker.continuation!(body)!;
    assert.deepEqual((second.body.messages as Json[]).at(-1), { role: 'assistant', content: 'Once upon a time' });
    stallAndContinue(tracker, body, client, anthropicWire([{ text: [' there', ' was', ' a', ' fox.'] }], 6));
    const final = await finalOf(client);
    assert.equal(textOf(final), 'Once upon a time there was a fox.');
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 1 + 6, 'the stalled continuation never reported its count');
  });

  test('the request\'s own assistant prefill is extended, not repeated', () => {
    const evs = anthropicWire([{ text: [' forty', ' two '] }], 3);
    for (const [own, extended] of [
      ['The answer is', 'The answer is forty two'],
      [[{ type: 'text', text: 'The answer is' }], [{ type: 'text', text: 'The answer is forty two' }]],
    ]) {
      const withPrefill = { ...body, messages: [...(body.messages as Json[]), { role: 'assistant', content: own }] };
      const { tracker } = start(evs, justAfter(evs, 'content_block_delta', 2));
      const cont = tracker.continuation!(withPrefill)!;
      assert.equal((cont.body.messages as Json[]).length, 2);
      assert.deepEqual((cont.body.messages as Json[]).at(-1), { role: 'assistant', content: extended });
    }
  });

  test('no continuation inside a tool_use, before any text, with thinking on, or once the message ended', async () => {
    const tools = [{ name: 'lookup_order', input_schema: { type: 'object' } }];
    const toolBody = { ...body, tools, messages: [{ role: 'user', content: 'find [[call lookup_order {"order_id":"ORD-123456"}]]' }] };
    const toolEvs = await capture('/v1/messages', toolBody);
    const mixed = anthropicWire([{ text: ['Let', ' me', ' look.'] }, { tool: 'lookup_order', json: ['{"order_', 'id":"1"}'] }], 9, 'tool_use');
    const text = anthropicWire([{ text: ['Hi', ' there'] }], 2);
    const cases: [string, Ev[], number, Json][] = [
      ['mid tool input (fake)', toolEvs, justAfter(toolEvs, 'content_block_delta', 2), toolBody],
      ['tool_use started after text', mixed, justAfter(mixed, 'content_block_start', 2), body],
      ['tool_use closed after text', mixed, justAfter(mixed, 'content_block_stop', 2), body],
      ['after message_start only', text, 1, body],
      ['text block opened, no text yet', text, justAfter(text, 'content_block_start'), body],
      ['extended thinking on', text, justAfter(text, 'content_block_delta'), { ...body, thinking: { type: 'enabled', budget_tokens: 1024 } }],
      ['after message_delta', text, justAfter(text, 'message_delta'), body],
      ['after message_stop', text, text.length, body],
    ];
    for (const [name, evs, k, reqBody] of cases) {
      const { tracker } = start(evs, k);
      assert.equal(tracker.continuation!(reqBody), undefined, name);
    }
  });
});
