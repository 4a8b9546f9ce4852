// Sanitization with the tool guard in the pipeline: the relay holds streamed tool calls back until
// they are judged, and the events it holds are the sanitized ones (released tails and inserted
// events included). An allowed call reaches each SDK with redacted arguments; a refused one becomes
// refusal text; the Responses API's sequence numbers still count up by one.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { script, sse } from '../helpers/scripted.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';
import { anthropicStream, chatStream, responsesStream } from './wire-events.ts';

const TEXT = ['Saving ann.l', 'ee@example.com now'];
const ARGS = ['{"email":"ann.l', 'ee@example', '.com"}'];

let fake: FakeUpstream;
let warden: Sidecar;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  fake = await startFakeUpstream();
  warden = await startWarden(tempFile('g.yaml', policyFor(fake.url, `sanitize: {}
tools:
  save_contact: { args: { type: object, required: [email] } }
`)));
  openai = new OpenAI({ baseURL: `${warden.trafficUrl}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 10_000 });
  anthropic = new Anthropic({ baseURL: `${warden.trafficUrl}/anthropic`, apiKey: 'sk-ant-test', maxRetries: 0, timeout: 10_000 });
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

const serve = (events: string[]) => script(fake, (_req, _n, res) => sse(res, events));
const fn = (name: string) => ({ type: 'function' as const, function: { name, parameters: { type: 'object' } } });

for (const [tool, allowed] of [['save_contact', true], ['delete_all', false]] as const) {
  test(`openai chat, ${allowed ? 'an allowed' : 'a refused'} call: judged after sanitization, parsed by the SDK`, async () => {
    serve(chatStream(TEXT, ARGS, tool));
    const final = await openai.chat.completions.stream({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }], tools: [fn(tool)] }).finalChatCompletion();
    const m = final.choices[0].message;
    assert.ok((m.content ?? '').startsWith('Saving <EMAIL> now'));
    if (allowed) assert.deepEqual(JSON.parse((m.tool_calls![0] as { function: { arguments: string } }).function.arguments), { email: '<EMAIL>' });
    else assert.match(m.content ?? '', /delete_all was refused/);
  });

  test(`openai responses, ${allowed ? 'an allowed' : 'a refused'} call: sequence numbers count up by one`, async () => {
    serve(responsesStream(TEXT, ARGS, tool));
    const body = { model: 'gpt-4o', stream: true as const, input: 'x', tools: [{ type: 'function' as const, name: tool, parameters: { type: 'object' }, strict: false }] };
    const final = await openai.responses.stream(body).finalResponse();
    assert.ok(final.output_text.startsWith('Saving <EMAIL> now'));
    const call = final.output.find((o) => o.type === 'function_call') as { arguments: string } | undefined;
    if (allowed) assert.deepEqual(JSON.parse(call!.arguments), { email: '<EMAIL>' });
    else assert.equal(call, undefined);
    serve(responsesStream(TEXT, ARGS, tool));
    const raw = await (await fetch(`${warden.trafficUrl}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).text();
    assert.ok(!raw.includes('ann.l') && !raw.includes('ee@example'));
    const seq = [...raw.matchAll(/"sequence_number":(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(seq, seq.map((_, i) => i));
  });

  test(`anthropic, ${allowed ? 'an allowed' : 'a refused'} call: tool input redacted or replaced by refusal text`, async () => {
    serve(anthropicStream(TEXT, ARGS, tool));
    const final = await anthropic.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'x' }], tools: [{ name: tool, input_schema: { type: 'object' } }] }).finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Saving <EMAIL> now');
    const use = final.content.find((b) => b.type === 'tool_use') as { input: unknown } | undefined;
    if (allowed) assert.deepEqual(use!.input, { email: '<EMAIL>' });
    else assert.match((final.content[1] as { text: string }).text, /delete_all was refused/);
  });
}
