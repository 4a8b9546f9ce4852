// The sanitize stages on their own: continue when nothing matches, rewrite (mask, hash, allow per
// recipient) with counts in the record, short-circuit on a blocked class (403 whole, a reply mid
// stream), monitor mode only recording, the request side (tool results always, prompts and the
// model's earlier turns when asked, never a recipient's allowances), the stream channels' hold-back and
// release at each close, the record reusing what the channels let out, and a fault at build for a
// pattern that bypassed the loader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Policy } from '../../policies/types.ts';
import { sanitizeConfig } from '../../policies/sanitize.ts';
import type { Request, Response, StreamEvent } from '../../proxy/canonical.ts';
import { SensitiveInputError, SensitiveOutputError } from '../../proxy/errors.ts';
import { openaiChat } from '../../proxy/providers/openai-chat.ts';
import type { CallContext, Outcome, Stage } from '../../proxy/stage.ts';
import { createSanitize } from '../../proxy/stages/sanitize.ts';
import { testCall, testPolicy, testRequest } from '../helpers/policy.ts';

function setup(raw: Record<string, unknown> = {}, overrides: Partial<Policy> = {}) {
  const policy = testPolicy({ sanitize: sanitizeConfig(raw), ...overrides });
  const { request, response } = createSanitize(policy);
  const call = (headers: Record<string, string> = {}): CallContext => ({ ...testCall(policy), adapter: openaiChat, headers });
  return { policy, request: request!, response: response!, call };
}

const onResponse = (s: Stage, call: CallContext, res: Response) => s.onResponse!(call, res) as Outcome<Response>;
const onRequest = (s: Stage, call: CallContext, req: Request) => s.onRequest!(call, req) as Outcome<Request>;

/** Runs events through the stage's stream hook; returns what it let out, flattened. */
function stream(s: Stage, call: CallContext, events: StreamEvent[]): StreamEvent[] | { reply: string } {
  const out: StreamEvent[] = [];
  for (const ev of events) {
    const r = s.onStreamEvent!(call, ev);
    if (r.kind === 'reply') return { reply: r.error.code };
    if (r.kind === 'continue') out.push(ev);
    else if (Array.isArray(r.value)) out.push(...r.value);
    else if (r.value) out.push(r.value as StreamEvent);
  }
  return out;
}

const textOf = (events: StreamEvent[], type: 'text' | 'tool-call' = 'text') =>
  events.map((e) => (e.type === 'text' && type === 'text' ? e.text : e.type === 'tool-call' && type === 'tool-call' ? e.argumentsDelta : '')).join('');

test('continue: a response without sensitive data passes untouched and leaves no decision', () => {
  const { response, call } = setup();
  const c = call();
  assert.deepEqual(onResponse(response, c, { text: 'Order ORD-123456 ships on 2024-05-01.', toolCalls: [] }), { kind: 'continue' });
  assert.deepEqual(c.decisions, []);
});

test('rewrite: text and tool-call arguments are masked, arguments stay JSON; the record gets counts, not data', () => {
  const { response, call } = setup({ actions: { email: 'hash' } });
  const c = call();
  const out = onResponse(response, c, {
    text: 'Card 4242 4242 4242 4242 and ann@example.com',
    toolCalls: [{ id: 'c1', name: 'pay', arguments: '{"card":4242424242424242,"who":"ann@example.com"}' }],
  });
  assert.equal(out.kind, 'rewrite');
  const res = (out as { value: Response }).value;
  assert.match(res.text, /^Card <CARD \*\*\*\*4242> and <EMAIL:[0-9a-f]{8}>$/);
  assert.deepEqual(Object.keys(JSON.parse(res.toolCalls[0].arguments)), ['card', 'who']);
  assert.equal(JSON.parse(res.toolCalls[0].arguments).card, '<CARD ****4242>');
  assert.equal((out as { action?: string }).action, 'redacted:4');
  assert.deepEqual(c.decisions, [{ stage: 'sanitize', decision: 'redacted', detail: { where: 'response', counts: { credit_card: 2, email: 2 } } }]);
  assert.ok(!JSON.stringify(c.decisions).includes('ann@'));
});

test('recipients: an allowed class passes for that recipient and is recorded as allowed; others get the defaults', () => {
  const { response, call } = setup({ recipients: { internal: { allow: ['email'] } } });
  const res = { text: 'ann@example.com', toolCalls: [] };
  const internal = call({ 'x-warden-recipient': 'internal' });
  assert.equal(onResponse(response, internal, res).kind, 'continue');
  assert.deepEqual(internal.decisions, [{ stage: 'sanitize', decision: 'allowed', detail: { where: 'response', recipient: 'internal', counts: { email: 1 } } }]);
  assert.equal((onResponse(response, call({ 'x-warden-recipient': 'stranger' }), res) as { value: Response }).value.text, '<EMAIL>');
});

test('short-circuit: a blocked class refuses the whole response (403) and notes a sensitive_output violation', () => {
  const { response, call } = setup({ actions: { private_key: 'block' } });
  const c = call();
  const key = `-----BEGIN PRIVATE KEY-----\n${'A1b2C3d4'.repeat(10)}\n-----END PRIVATE KEY-----`;
  const out = onResponse(response, c, { text: `here: ${key}`, toolCalls: [] });
  assert.equal(out.kind, 'reply');
  const err = (out as { error: SensitiveOutputError }).error;
  assert.ok(err instanceof SensitiveOutputError);
  assert.equal(err.status, 403);
  assert.equal(err.code, 'WARDEN_ERR_SENSITIVE_OUTPUT');
  assert.ok(!err.message.includes('A1b2'));
  assert.deepEqual(c.violations.map((v) => [v.kind, v.action]), [['sensitive_output', 'block']]);
});

test('monitor mode: a blocked class passes and is only recorded (the rule would have blocked)', () => {
  const { response, call } = setup({ action: 'block' }, { mode: 'monitor' });
  const c = call();
  assert.equal(onResponse(response, c, { text: 'ann@example.com', toolCalls: [] }).kind, 'continue');
  assert.deepEqual(c.violations.map((v) => [v.kind, v.rule, v.action]), [['sensitive_output', 'block', 'log']]);
});

test('requests: tool results are redacted before the provider; prompts, and the assistant turns the agent resends, only with prompts: true', () => {
  const req = testRequest({
    messages: openaiChat.parseRequest({
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Escalate to ops@corp.example.com' },
        { role: 'user', content: [{ type: 'text', text: 'my card is 4242 4242 4242 4242' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
        { role: 'assistant', content: 'noted ann@example.com', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"email":"ann@example.com"}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: '{"ssn":"536-22-1234"}' },
      ],
    }).messages,
  });
  const off = setup();
  const c = off.call();
  const out = onRequest(off.request, c, req);
  assert.equal(out.kind, 'rewrite');
  const wire = openaiChat.writeRequest({ model: 'gpt-4o' }, (out as { value: Request }).value).messages as any[];
  assert.equal(wire[3].content, '{"ssn":"<SSN>"}');
  assert.equal(wire[0].content, 'Escalate to ops@corp.example.com');
  assert.equal(wire[2].content, 'noted ann@example.com');
  assert.equal(wire[2].tool_calls[0].function.arguments, '{"email":"ann@example.com"}');
  assert.equal((out as { action?: string }).action, 'redacted-request:1');
  const on = setup({ prompts: true });
  const wire2 = openaiChat.writeRequest({ model: 'gpt-4o' }, (onRequest(on.request, on.call(), req) as { value: Request }).value).messages as any[];
  assert.equal(wire2[0].content, 'Escalate to <EMAIL>');
  assert.deepEqual(wire2[1].content, [{ type: 'text', text: 'my card is <CARD ****4242>' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }]);
  // The history is the agent's to write: what it says the model said is sanitized like the rest.
  assert.equal(wire2[2].content, 'noted <EMAIL>');
  assert.deepEqual(wire2[2].tool_calls, [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"email":"<EMAIL>"}' } }]);
  const block = setup({ actions: { us_ssn: 'block' } });
  const refused = onRequest(block.request, block.call(), req);
  assert.ok(refused.kind === 'reply' && refused.error instanceof SensitiveInputError);
});

test('requests: a recipient named by the agent changes nothing on the way up (the provider reads it), and is not recorded there', () => {
  const { request, call } = setup({ recipients: { internal: { allow: ['email'], actions: { us_ssn: 'hash' } } } });
  const req = testRequest({
    messages: openaiChat.parseRequest({ model: 'gpt-4o', messages: [{ role: 'tool', tool_call_id: 'c1', content: '{"who":"ann@example.com","ssn":"536-22-1234"}' }] }).messages,
  });
  const c = call({ 'x-warden-recipient': 'internal' });
  const out = onRequest(request, c, req);
  assert.equal(out.kind, 'rewrite');
  assert.equal((out as { value: Request }).value.messages[0].text, '{"who":"<EMAIL>","ssn":"<SSN>"}');
  assert.deepEqual(c.decisions, [{ stage: 'sanitize', decision: 'redacted', detail: { where: 'request', counts: { email: 1, us_ssn: 1 } } }]);
});

test('requests: history seen before gives the same result and counts on every call (from memory, not rescanned)', () => {
  const { request, call } = setup();
  const long = `${'lorem ipsum dolor sit amet '.repeat(20)} write to ann@example.com`;
  const req = testRequest({ messages: openaiChat.parseRequest({ model: 'gpt-4o', messages: [{ role: 'tool', tool_call_id: 'c1', content: long }] }).messages });
  const runs = [call(), call()].map((c) => ({ out: onRequest(request, c, req) as { value: Request; action?: string }, c }));
  assert.equal(runs[0].out.value.messages[0].text, runs[1].out.value.messages[0].text);
  assert.match(runs[1].out.value.messages[0].text, /write to <EMAIL>$/);
  assert.deepEqual(runs.map((r) => r.out.action), ['redacted-request:1', 'redacted-request:1']);
  assert.deepEqual(runs[1].c.decisions, runs[0].c.decisions);
});

test('streams: each channel holds back only a possible match in progress and releases it before its close', () => {
  const { response, call } = setup();
  const c = call();
  const out = stream(response, c, [
    { type: 'text', index: 0, text: 'Hello, write to ann.' },
    { type: 'text', index: 0, text: 'lee@exam' },
    { type: 'tool-call', index: 1, id: 'c1', name: 'save', argumentsDelta: '{"to":"ann.lee@' },
    { type: 'text', index: 0, text: 'ple.com soon' },
    { type: 'text-end', index: 0 },
    { type: 'tool-call', index: 1, argumentsDelta: 'example.com"}' },
    { type: 'finish', reason: 'tool_calls' },
  ]) as StreamEvent[];
  // The first piece goes out at once, all but the word that may still become an address.
  assert.deepEqual(out[0], { type: 'text', index: 0, text: 'Hello, write to ' });
  assert.equal(textOf(out), 'Hello, write to <EMAIL> soon');
  assert.equal(textOf(out, 'tool-call'), '{"to":"<EMAIL>"}');
  // Released text comes before the close it belongs to.
  const end = out.findIndex((e) => e.type === 'text-end');
  assert.deepEqual(out[end - 1], { type: 'text', index: 0, text: 'soon' });
  assert.deepEqual(out.at(-1), { type: 'finish', reason: 'tool_calls' });
  assert.equal(out.at(-2)!.type, 'tool-call');
  const res = response.onStreamEnd!(c, { text: 'Hello, write to ann.lee@example.com soon', toolCalls: [{ id: 'c1', name: 'save', arguments: '{"to":"ann.lee@example.com"}' }] }) as Response;
  assert.equal(res.text, 'Hello, write to <EMAIL> soon', 'the record keeps what the agent received');
  assert.deepEqual(c.decisions.at(-1), { stage: 'sanitize', decision: 'redacted', detail: { where: 'stream', counts: { email: 2 } } });
  assert.deepEqual(c.actions, ['redacted:2']);
});

test('streams: a closing event that repeats the content (Responses .done) gets it sanitized whole, after the released tail', () => {
  const { response, call } = setup();
  const out = stream(response, call(), [
    { type: 'text', index: 0, text: 'mail ann@exa' },
    { type: 'text', index: 0, text: 'mple.com' },
    { type: 'text-end', index: 0, text: 'mail ann@example.com' },
  ]) as StreamEvent[];
  assert.deepEqual(out, [
    { type: 'text', index: 0, text: 'mail ' },
    { type: 'text', index: 0, text: '' },
    { type: 'text', index: 0, text: '<EMAIL>' },
    { type: 'text-end', index: 0, text: 'mail <EMAIL>' },
  ]);
});

test('streams: a blocked class ends the stream with a reply; the record keeps nothing held', () => {
  const { response, call } = setup({ actions: { credit_card: 'block' } });
  const c = call();
  const out = stream(response, c, [
    { type: 'text', index: 0, text: 'pay with 4242 4242 ' },
    { type: 'text', index: 0, text: '4242 4242 then key AKIA' },
  ]);
  assert.deepEqual(out, { reply: 'WARDEN_ERR_SENSITIVE_OUTPUT' });
  const res = response.onStreamEnd!(c, { text: 'pay with 4242 4242 4242 4242 then key AKIA', toolCalls: [] }) as Response;
  assert.ok(!res.text.includes('AKIA') && !res.text.includes('4242 4242'), res.text);
});

test('streams: a restart (a stalled attempt retried unseen) forgets what the first attempt held', () => {
  const { response, call } = setup();
  const c = call();
  stream(response, c, [{ type: 'text', index: 0, text: 'You said: ann@exa' }]);
  response.onStreamRestart!(c);
  assert.equal(textOf(stream(response, c, [{ type: 'text', index: 0, text: 'Hi' }, { type: 'finish', reason: 'stop' }]) as StreamEvent[]), 'Hi');
});

test('fault: a custom pattern that never went through the loader fails when the stage is built, not per call', () => {
  assert.throws(() => setup({ custom: [{ name: 'loose', pattern: 'X+' }] }), /custom pattern loose can match text of unbounded length/);
});

test('short-circuit: a chat request for several answers is refused in enforce mode (only one could be sanitized), recorded otherwise', () => {
  const { response, call } = setup();
  const req = openaiChat.parseRequest({ model: 'gpt-4o', n: 3, messages: [{ role: 'user', content: 'hi' }] });
  const out = onRequest(response, call(), req);
  assert.ok(out.kind === 'reply' && out.error.status === 400);
  const monitor = setup({}, { mode: 'monitor' });
  const c = monitor.call();
  assert.equal(onRequest(monitor.response, c, req).kind, 'continue');
  assert.deepEqual(c.decisions, [{ stage: 'sanitize', decision: 'unsanitized', detail: { choices: 3 } }]);
});
