// Sanitization end to end: a real sidecar between the official SDKs and a scripted upstream whose
// streams cut secrets across events (text and tool-call arguments alike). For each API (OpenAI chat,
// OpenAI Responses, Anthropic messages) the SDK's accumulated result is redacted and well formed, the
// raw bytes never hold a piece of a secret (closing events and final outputs included), recipients
// change what is redacted, a blocked class ends the call, and the record and metrics say what
// happened without the data.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditRecords } from '../helpers/audit.ts';
import { script, sse } from '../helpers/scripted.ts';
import { sanitizingSidecar } from './setup.ts';
import { anthropicStream, chatStream, responsesStream } from './wire-events.ts';

const TEXT = ['Reach maria.gon', 'zalez@acme-co', 'rp.com, card 4242 42', '42 4242 4242, key AKIAIOSF', 'ODNN7EXAMPLE now.'];
const ARGS = ['{"email":"maria.', 'gonzalez@acme-corp', '.com","card":4242424', '242424242,"note":"ok"}'];
// Pieces of the secrets that must never reach the agent.
const FRAGMENTS = ['maria', 'gonzalez', 'acme-co', '4242 42', '4242424', 'AKIAIOSF', 'ODNN7'];
const SANITIZED = /^Reach <EMAIL>, card <CARD \*\*\*\*4242>, key <AWS_KEY:[0-9a-f]{8}> now\.$/;
const ARGS_SANITIZED = { email: '<EMAIL>', card: '<CARD ****4242>', note: 'ok' };

const ctx = sanitizingSidecar('s.yaml', `sanitize:
  actions: { aws_key: hash }
  recipients:
    internal: { allow: [email] }
    customer: { actions: { credit_card: block } }
`);

const tools = [{ type: 'function' as const, function: { name: 'save_contact', parameters: { type: 'object' } } }];
const openai = (headers: Record<string, string> = {}) => new OpenAI({ baseURL: `${ctx.warden.trafficUrl}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 10_000, defaultHeaders: headers });
const anthropic = (headers: Record<string, string> = {}) => new Anthropic({ baseURL: `${ctx.warden.trafficUrl}/anthropic`, apiKey: 'sk-ant-test', maxRetries: 0, timeout: 10_000, defaultHeaders: headers });

function serve(events: string[]): void {
  script(ctx.fake, (_req, _n, res) => sse(res, events));
}

/** The raw SSE bytes the agent gets for a request, and the x-warden headers. */
async function raw(path: string, body: object, headers: Record<string, string> = {}): Promise<{ text: string; status: number; actions: string | null }> {
  const res = await fetch(`${ctx.warden.trafficUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return { text: await res.text(), status: res.status, actions: res.headers.get('x-warden-actions') };
}

function noFragments(text: string): void {
  for (const f of FRAGMENTS) assert.ok(!text.includes(f), `the stream holds "${f}":\n${text}`);
}

function dataOf(text: string): Record<string, any>[] {
  return text.split('\n\n').map((e) => /^data: (.*)$/m.exec(e)?.[1]).filter((d): d is string => d !== undefined && d !== '[DONE]').map((d) => JSON.parse(d));
}

const chatBody = { model: 'gpt-4o', stream: true as const, messages: [{ role: 'user' as const, content: 'save it' }], tools };

test('openai chat stream: the SDK gets redacted text and arguments, and no byte of a secret', async () => {
  serve(chatStream(TEXT, ARGS));
  const final = await openai().chat.completions.stream(chatBody).finalChatCompletion();
  const message = final.choices[0].message;
  assert.match(message.content ?? '', SANITIZED);
  assert.equal(message.tool_calls?.length, 1);
  const call = message.tool_calls![0];
  assert.equal(call.type, 'function');
  assert.deepEqual(JSON.parse((call as { function: { arguments: string } }).function.arguments), ARGS_SANITIZED);
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  serve(chatStream(TEXT, ARGS));
  noFragments((await raw('/v1/chat/completions', chatBody)).text);
});

test('openai responses stream: deltas, .done events and the final output agree, redacted; sequence numbers stay increasing', async () => {
  const body = { model: 'gpt-4o', stream: true as const, input: 'save it', tools: [{ type: 'function' as const, name: 'save_contact', parameters: { type: 'object' }, strict: false }] };
  serve(responsesStream(TEXT, ARGS));
  const final = await openai().responses.stream(body).finalResponse();
  assert.match(final.output_text, SANITIZED);
  const call = final.output.find((o) => o.type === 'function_call');
  assert.deepEqual(JSON.parse((call as { arguments: string }).arguments), ARGS_SANITIZED);
  serve(responsesStream(TEXT, ARGS));
  const { text } = await raw('/v1/responses', body);
  noFragments(text);
  const events = dataOf(text);
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(deltas, events.find((e) => e.type === 'response.output_text.done')!.text);
  assert.equal(deltas, events.find((e) => e.type === 'response.completed')!.response.output[0].content[0].text);
  const args = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta).join('');
  assert.equal(args, events.find((e) => e.type === 'response.function_call_arguments.done')!.arguments);
  const seq = events.map((e) => e.sequence_number);
  assert.deepEqual(seq, seq.map((_, i) => i), 'sequence numbers count up by one, inserted events included');
});

test('anthropic stream: held text is released before content_block_stop; text and tool input are redacted', async () => {
  const body = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'save it' }], tools: [{ name: 'save_contact', input_schema: { type: 'object' as const } }] };
  serve(anthropicStream(TEXT, ARGS));
  const final = await anthropic().messages.stream(body).finalMessage();
  const text = final.content.find((b) => b.type === 'text');
  assert.match((text as { text: string }).text, SANITIZED);
  const use = final.content.find((b) => b.type === 'tool_use');
  assert.deepEqual((use as { input: unknown }).input, ARGS_SANITIZED);
  serve(anthropicStream(TEXT, ARGS));
  const out = await raw('/anthropic/v1/messages', { ...body, stream: true });
  noFragments(out.text);
  // Every delta of a block comes before its stop.
  const events = dataOf(out.text);
  const stop = events.findIndex((e) => e.type === 'content_block_stop' && e.index === 0);
  assert.ok(events.slice(stop).every((e) => !(e.type === 'content_block_delta' && e.index === 0)));
});

test('whole responses: each SDK reads redacted text; x-warden-actions says redacted:N', async () => {
  ctx.fake.setHandler(undefined);
  const said = 'mail maria.gonzalez@acme-corp.com or call (212) 736-5000';
  const chat = await openai().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: said }] }).withResponse();
  assert.equal(chat.data.choices[0].message.content, 'You said: mail <EMAIL> or call <PHONE>');
  assert.match(chat.response.headers.get('x-warden-actions') ?? '', /redacted:2/);
  const resp = await openai().responses.create({ model: 'gpt-4o', input: said });
  assert.equal(resp.output_text, 'You said: mail <EMAIL> or call <PHONE>');
  const msg = await anthropic().messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: said }] });
  assert.equal((msg.content[0] as { text: string }).text, 'You said: mail <EMAIL> or call <PHONE>');
});

test('recipients: internal may see emails (still recorded), a customer gets cards refused: 403 whole, in band when streaming', async () => {
  serve(chatStream(TEXT, ARGS));
  const internal = await openai({ 'x-warden-recipient': 'internal' }).chat.completions.stream(chatBody).finalChatCompletion();
  assert.match(internal.choices[0].message.content ?? '', /^Reach maria\.gonzalez@acme-corp\.com, card <CARD \*\*\*\*4242>/);
  ctx.fake.setHandler(undefined);
  await assert.rejects(
    openai({ 'x-warden-recipient': 'customer' }).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'pay 4242 4242 4242 4242' }] }),
    (err: InstanceType<typeof OpenAI.APIError>) => err.status === 403 && (err.error as { code?: string })?.code === 'WARDEN_ERR_SENSITIVE_OUTPUT',
  );
  serve(chatStream(TEXT, ARGS));
  const out = await raw('/v1/chat/completions', chatBody, { 'x-warden-recipient': 'customer' });
  noFragments(out.text);
  assert.match(out.text, /WARDEN_ERR_SENSITIVE_OUTPUT/);
  assert.ok(!out.text.includes('[DONE]'), 'the stream ends with the error, not as a finished answer');
});

test('tool results bound for the model are redacted before they reach the provider; the record and metrics keep counts, not data', async () => {
  ctx.fake.setHandler(undefined);
  const before = ctx.fake.requests.length;
  const res = await openai().chat.completions.create({
    model: 'gpt-4o', tools,
    messages: [
      { role: 'user', content: 'look me up (my email is maria.gonzalez@acme-corp.com)' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'save_contact', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_9', content: '{"ssn":"536-22-1234","email":"maria.gonzalez@acme-corp.com"}' },
    ],
  }).withResponse();
  const sent = JSON.parse(ctx.fake.requests.slice(before).at(-1)!.body.toString());
  assert.equal(sent.messages[2].content, '{"ssn":"<SSN>","email":"<EMAIL>"}');
  assert.equal(sent.messages[0].content, 'look me up (my email is maria.gonzalez@acme-corp.com)', 'prompts are left alone unless prompts: true');
  assert.match(res.response.headers.get('x-warden-actions') ?? '', /redacted-request:2/);
  const id = res.response.headers.get('x-warden-request-id');
  const record = auditRecords(ctx.dataDir).find((r) => r.request_id === id)!;
  assert.ok(record.decisions.some((d: any) => d.stage === 'sanitize' && d.decision === 'redacted' && d.detail.where === 'request' && d.detail.counts.us_ssn === 1));
  assert.ok(!JSON.stringify(record.request).includes('536-22-1234'), 'the record keeps the redacted request');
  // Streamed calls are recorded with what the agent received (an internal recipient saw the email).
  const streamed = auditRecords(ctx.dataDir).filter((r) => r.decisions?.some((d: any) => d.stage === 'sanitize' && d.detail?.where === 'stream' && d.detail.recipient !== 'internal'));
  assert.ok(streamed.length >= 3);
  for (const r of streamed) noFragments(JSON.stringify(r.response ?? ''));
  const metrics = await (await fetch(`${ctx.warden.adminUrl}/metrics`)).text();
  assert.match(metrics, /warden_redactions_total\{detector="email"\} [1-9]/);
  assert.match(metrics, /warden_redactions_total\{detector="us_ssn"\} [1-9]/);
  assert.match(metrics, /warden_violations_total\{kind="sensitive_output",action="block"\} [1-9]/);
});

test('a request naming a recipient still has its tool results sanitized with the defaults: the provider reads them, not the recipient', async () => {
  ctx.fake.setHandler(undefined);
  const before = ctx.fake.requests.length;
  await openai({ 'x-warden-recipient': 'internal' }).chat.completions.create({
    model: 'gpt-4o', tools,
    messages: [
      { role: 'user', content: 'who is the contact?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_7', type: 'function', function: { name: 'save_contact', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_7', content: '{"email":"maria.gonzalez@acme-corp.com"}' },
    ],
  });
  const sent = JSON.parse(ctx.fake.requests.slice(before).at(-1)!.body.toString());
  assert.equal(sent.messages[2].content, '{"email":"<EMAIL>"}', 'internal may read emails in answers, but it does not read the request');
});

test('/status is yellow while hash tokens use a random per-process key (this policy hashes aws_key without hashKeyEnv)', async () => {
  const status = await (await fetch(`${ctx.warden.adminUrl}/status`)).json() as { state: string; reasons: string[] };
  assert.equal(status.state, 'yellow');
  assert.ok(status.reasons.some((r) => /^sanitize: hash tokens use a random key made at start \(sanitize\.hashKeyEnv is not set\)/.test(r)), status.reasons.join('\n'));
});
