// The stream contract extension sanitization rests on: a stream hook may turn one event into several
// or end the stream with a reply; providers mark where a channel closes (text-end, tool-call-end) and
// write released text as wire events of their own before the close; events Warden adds renumber the
// Responses API's sequence numbers; and request messages can have their text rewritten in place.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StreamEvent } from '../../proxy/canonical.ts';
import { SensitiveOutputError } from '../../proxy/errors.ts';
import { wireEvents } from '../../proxy/http/stream-events.ts';
import { runStreamEvent, type Pipeline } from '../../proxy/pipeline.ts';
import { anthropicMessages } from '../../proxy/providers/anthropic-messages.ts';
import { openaiChat } from '../../proxy/providers/openai-chat.ts';
import { openaiResponses } from '../../proxy/providers/openai-responses.ts';
import { CONTINUE, reply, rewrite } from '../../proxy/stage.ts';
import { testCall, testPolicy } from '../helpers/policy.ts';

const call = () => testCall(testPolicy());
const text = (t: string, index = 0): StreamEvent => ({ type: 'text', index, text: t });

test('runStreamEvent: a stage may return several events, each seen by later stages; a reply ends the stream', () => {
  const seen: string[] = [];
  const p: Pipeline = { stages: [
    { name: 'split', onStreamEvent: (_c, ev) => (ev.type === 'text' ? rewrite([text('a'), text('b')]) : CONTINUE) },
    { name: 'watch', onStreamEvent: (_c, ev) => (seen.push(ev.type === 'text' ? ev.text : ev.type), CONTINUE) },
  ] };
  assert.deepEqual(runStreamEvent(p, call(), text('ab')), [text('a'), text('b')]);
  assert.deepEqual(seen, ['a', 'b']);
  const err = new SensitiveOutputError(['email']);
  const c = call();
  assert.deepEqual(runStreamEvent({ stages: [{ name: 'stop', onStreamEvent: () => reply(err) }] }, c, text('x')), { reply: err });
  assert.deepEqual(c.decisions, [{ stage: 'stop', decision: 'reply', detail: { hook: 'onStreamEvent', code: 'WARDEN_ERR_SENSITIVE_OUTPUT' } }]);
  const untouched = text('x');
  const out = runStreamEvent({ stages: [{ name: 'pass', onStreamEvent: () => CONTINUE }] }, call(), untouched);
  assert.equal((out as StreamEvent[])[0], untouched, 'events nobody changes are passed as they are');
});

test('anthropic: content_block_stop closes the block\'s channel; text released there becomes a delta before the stop', () => {
  const parsed = anthropicMessages.parseStreamEvent('content_block_stop', JSON.stringify({ type: 'content_block_stop', index: 2 }))!;
  assert.deepEqual(parsed.events, [{ type: 'text-end', index: 2 }, { type: 'tool-call-end', index: 2 }]);
  const out = anthropicMessages.writeStreamEvents!(parsed, [text('tail', 2), ...parsed.events]);
  assert.deepEqual(out, [{ type: 'content_block_delta', index: 2, delta: { type: 'text_delta', text: 'tail' } }, { type: 'content_block_stop', index: 2 }]);
  const tool = anthropicMessages.writeStreamEvents!(parsed, [{ type: 'tool-call', index: 2, argumentsDelta: '"}' }, ...parsed.events]);
  assert.deepEqual(tool[0], { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '"}' } });
  // A text block that starts with text has it rewritten in place.
  const start = anthropicMessages.parseStreamEvent('content_block_start', JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: 'hi ann@' } }))!;
  assert.deepEqual(anthropicMessages.writeStreamEvents!(start, [text('hi ')]), [{ type: 'content_block_start', index: 0, content_block: { type: 'text', text: 'hi ' } }]);
});

test('openai chat: text and arguments released at the finish ride on the finishing chunk, one entry per call index', () => {
  const data = { id: 'c', model: 'm', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"x' } }] }, finish_reason: 'tool_calls', logprobs: { content: [] } }] };
  const parsed = openaiChat.parseStreamEvent(undefined, JSON.stringify(data))!;
  const out = openaiChat.writeStreamEvent(parsed, [text('tail'), { type: 'tool-call', index: 0, argumentsDelta: '"x' }, { type: 'tool-call', index: 0, argumentsDelta: '"}' }, { type: 'finish', reason: 'tool_calls' }]) as any;
  assert.deepEqual(out.choices[0].delta, { tool_calls: [{ index: 0, function: { arguments: '"x"}' } }], content: 'tail' });
  assert.equal(out.choices[0].finish_reason, 'tool_calls');
  assert.equal(out.choices[0].logprobs, null, 'logprobs of changed text are dropped: they would disclose it');
});

test('openai responses: .done events and the final output carry their content as end events, written back where changed', () => {
  const done = { type: 'response.output_text.done', sequence_number: 7, item_id: 'msg_1', output_index: 0, content_index: 0, text: 'mail ann@example.com', logprobs: [] };
  const parsed = openaiResponses.parseStreamEvent('response.output_text.done', JSON.stringify(done))!;
  assert.deepEqual(parsed.events, [{ type: 'text-end', index: 0, text: 'mail ann@example.com' }]);
  const out = openaiResponses.writeStreamEvents!(parsed, [text('<EMAIL>'), { type: 'text-end', index: 0, text: 'mail <EMAIL>' }]);
  assert.deepEqual(out, [
    { type: 'response.output_text.delta', sequence_number: 7, item_id: 'msg_1', output_index: 0, content_index: 0, delta: '<EMAIL>', logprobs: [] },
    { ...done, text: 'mail <EMAIL>' },
  ]);
  const final = {
    type: 'response.completed', sequence_number: 20,
    response: { id: 'r', status: 'completed', output: [
      { type: 'message', id: 'msg_1', content: [{ type: 'output_text', text: 'mail ann@example.com', annotations: [] }] },
      { type: 'function_call', id: 'fc_1', call_id: 'c1', name: 'f', arguments: '{"to":"ann@example.com"}' },
    ] },
  };
  const fin = openaiResponses.parseStreamEvent('response.completed', JSON.stringify(final))!;
  const ends = fin.events.filter((e) => e.type === 'text-end' || e.type === 'tool-call-end');
  assert.deepEqual(ends, [{ type: 'text-end', index: 0, text: 'mail ann@example.com' }, { type: 'tool-call-end', index: 1, arguments: '{"to":"ann@example.com"}' }]);
  const written = openaiResponses.writeStreamEvent(fin, fin.events.map((e) => (e.type === 'text-end' ? { ...e, text: 'mail <EMAIL>' } : e.type === 'tool-call-end' ? { ...e, arguments: '{"to":"<EMAIL>"}' } : e))) as any;
  assert.equal(written.response.output[0].content[0].text, 'mail <EMAIL>');
  assert.equal(written.response.output[1].arguments, '{"to":"<EMAIL>"}');
});

test('wireEvents: an added event takes the next sequence number and every later event shifts after it', () => {
  const numbering = { added: 0 };
  const ev = (data: object) => ({ raw: Buffer.from(`event: x\ndata: ${JSON.stringify(data)}\n\n`), event: (data as { type: string }).type, data: JSON.stringify(data) });
  const done = { type: 'response.output_text.done', sequence_number: 5, item_id: 'm', output_index: 0, content_index: 0, text: 'ab', logprobs: [] };
  const parsed = openaiResponses.parseStreamEvent(done.type, JSON.stringify(done))!;
  const out = wireEvents(openaiResponses, ev(done), parsed, [text('b'), ...parsed.events], true, numbering);
  assert.deepEqual(out.map((e) => JSON.parse(e.data!).sequence_number), [5, 6]);
  assert.deepEqual(out.map((e) => e.event), ['response.output_text.delta', 'response.output_text.done']);
  const later = { type: 'response.content_part.done', sequence_number: 6, item_id: 'm', output_index: 0, content_index: 0, part: { type: 'output_text', text: 'ab' } };
  const p2 = openaiResponses.parseStreamEvent(later.type, JSON.stringify(later))!;
  assert.equal(JSON.parse(wireEvents(openaiResponses, ev(later), p2, p2.events, false, numbering)[0].data!).sequence_number, 7);
  // Nothing added, nothing changed: the very bytes go through.
  const fresh = ev(later);
  assert.equal(wireEvents(openaiResponses, fresh, p2, p2.events, false, { added: 0 })[0], fresh);
});

test('request text rewritten in place: chat parts, Responses instructions and string input, Anthropic system and tool results', () => {
  const upper = (t: string) => t.toUpperCase();
  const chat = openaiChat.parseRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'x' } }], name: 'u' }] });
  const m = openaiChat.mapMessageText!(chat.messages[0], upper);
  assert.deepEqual(m.raw, { role: 'user', content: [{ type: 'text', text: 'HI' }, { type: 'image_url', image_url: { url: 'x' } }], name: 'u' });
  assert.equal(openaiChat.mapMessageText!(chat.messages[0], (t) => t), chat.messages[0], 'unchanged text keeps the message');

  const body = { model: 'm', instructions: 'be kind', input: 'hello' };
  const req = openaiResponses.parseRequest(body);
  const mapped = { ...req, messages: req.messages.map((x) => openaiResponses.mapMessageText!(x, upper)) };
  assert.deepEqual(openaiResponses.writeRequest(body, mapped), { model: 'm', instructions: 'BE KIND', input: [{ role: 'user', content: 'HELLO' }] });
  const out = openaiResponses.parseRequest({ model: 'm', input: [{ type: 'function_call_output', call_id: 'c', output: 'secret' }] });
  assert.deepEqual(openaiResponses.mapMessageText!(out.messages[0], (t, kind) => `${kind}:${t}`).raw, { type: 'function_call_output', call_id: 'c', output: 'tool-result:secret' });

  const anth = { model: 'm', system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: [
    { type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'res' }] }, { type: 'text', text: 'ask' },
  ] }] };
  const a = anthropicMessages.parseRequest(anth);
  const am = { ...a, messages: a.messages.map((x) => anthropicMessages.mapMessageText!(x, (t, kind) => `${kind}:${t}`)) };
  const wire = anthropicMessages.writeRequest(anth, am) as any;
  assert.equal(wire.system, 'text:sys');
  assert.deepEqual(wire.messages[0].content, [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'tool-result:res' }] }, { type: 'text', text: 'text:ask' }]);
  assert.equal(am.messages[1].toolResults![0].content, 'tool-result:res', 'the canonical message follows its wire object');
});

test('request tool-call arguments rewritten in place: chat tool_calls, Responses function_call items, Anthropic tool_use input, canonical messages', () => {
  const tag = (t: string, kind: string) => (kind === 'tool-call' ? t.replace('ann@example.com', '<EMAIL>') : t);
  const chat = openaiChat.parseRequest({ model: 'm', messages: [{ role: 'assistant', content: 'ok', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"to":"ann@example.com"}' } }] }] });
  const cm = openaiChat.mapMessageText!(chat.messages[0], tag);
  assert.deepEqual(cm.raw, { role: 'assistant', content: 'ok', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"to":"<EMAIL>"}' } }] });
  assert.equal(cm.toolCalls![0].arguments, '{"to":"<EMAIL>"}');

  const resp = openaiResponses.parseRequest({ model: 'm', input: [{ type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"to":"ann@example.com"}' }] });
  const rm = openaiResponses.mapMessageText!(resp.messages[0], tag);
  assert.deepEqual(rm.raw, { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"to":"<EMAIL>"}' });

  const anth = anthropicMessages.parseRequest({ model: 'm', messages: [{ role: 'assistant', content: [{ type: 'text', text: 'ok' }, { type: 'tool_use', id: 't1', name: 'f', input: { to: 'ann@example.com' } }] }] });
  const am = anthropicMessages.mapMessageText!(anth.messages[0], tag);
  assert.deepEqual((am.raw as any).content[1], { type: 'tool_use', id: 't1', name: 'f', input: { to: '<EMAIL>' } });

  const made = openaiChat.mapMessageText!({ role: 'assistant', text: '', toolCalls: [{ id: 'c2', name: 'f', arguments: '{"to":"ann@example.com"}' }] }, tag);
  assert.equal(made.toolCalls![0].arguments, '{"to":"<EMAIL>"}');
});
