// Usage and cost per call equal the upstream's reported usage times the policy's price table, for
// streamed and whole responses of every provider shape; /metrics and /usage show them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;

const PRICES = {
  'gpt-4o': { pin: 'gpt-4o-2024-11-20', in: 2.5, out: 10 },
  'claude-sonnet-4-5': { pin: 'claude-sonnet-4-5-20250929', in: 3, out: 15 },
};

before(async () => {
  fake = await startFakeUpstream();
  const models = Object.entries(PRICES).map(([m, p]) => `  ${m}: { pin: ${p.pin}, price: { inputPerMTok: ${p.in}, outputPerMTok: ${p.out} } }`).join('\n');
  warden = await startWarden(tempFile('m.yaml', policyFor(fake.url, `models:\n${models}\n`)));
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

async function post(base: string, path: string, body: object, task?: string) {
  const res = await request(`${base}${path}`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...(task ? { 'x-warden-task': task } : {}) },
  });
  return { headers: res.headers, text: await res.body.text() };
}

async function taskUsage(task: string) {
  const res = await request(`${warden.adminUrl}/usage?task=${task}`);
  return (await res.body.json()) as { calls: number; inputTokens: number; outputTokens: number; costUsd: number };
}

/** The usage the fake reports for this body (asked directly, with usage on for streams). */
async function upstreamUsage(path: string, body: Record<string, unknown>): Promise<{ input: number; output: number }> {
  const direct = path.startsWith('/anthropic') ? path.slice('/anthropic'.length) : path;
  const withUsage = body.stream && path.includes('chat') ? { ...body, stream_options: { include_usage: true } } : body;
  const { text } = await post(fake.url, direct, withUsage);
  if (!body.stream) {
    const j = JSON.parse(text);
    return { input: j.usage.prompt_tokens ?? j.usage.input_tokens, output: j.usage.completion_tokens ?? j.usage.output_tokens };
  }
  const datas = text.split('\n\n').map((e) => /^data: (.*)$/m.exec(e)?.[1]).filter((d) => d && d !== '[DONE]').map((d) => JSON.parse(d!));
  let input = 0;
  let output = 0;
  for (const d of datas) {
    const u = d.usage ?? d.message?.usage ?? d.response?.usage;
    if (!u) continue;
    input = u.prompt_tokens ?? u.input_tokens ?? input;
    output = u.completion_tokens ?? u.output_tokens ?? output;
  }
  return { input, output };
}

const CASES: [string, string, string, Record<string, unknown>][] = [
  ['openai chat', '/v1/chat/completions', 'gpt-4o', { model: 'gpt-4o', messages: [{ role: 'user', content: 'How long is the return window for shoes?' }] }],
  ['openai chat streamed (usage asked by Warden)', '/v1/chat/completions', 'gpt-4o', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'Tell me about the refund policy please' }] }],
  ['openai responses', '/v1/responses', 'gpt-4o', { model: 'gpt-4o', input: 'Where is my parcel?' }],
  ['openai responses streamed', '/v1/responses', 'gpt-4o', { model: 'gpt-4o', input: 'Where is my parcel now?', stream: true }],
  ['anthropic messages', '/anthropic/v1/messages', 'claude-sonnet-4-5', { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Summarise the ticket for me' }] }],
  ['anthropic messages streamed', '/anthropic/v1/messages', 'claude-sonnet-4-5', { model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Summarise the long ticket for me' }] }],
];

const expectedCost: Record<string, number> = {};
const expectedTokens: Record<string, { input: number; output: number }> = {};

for (const [name, path, alias, body] of CASES) {
  test(`${name}: tokens and cost match the upstream's usage × the price table`, async () => {
    const task = `task-${name.replace(/\W+/g, '-')}`;
    const got = await post(warden.trafficUrl, path, body, task);
    const pinned = PRICES[alias as keyof typeof PRICES];
    const usage = await upstreamUsage(path, { ...body, model: pinned.pin });
    assert.ok(usage.input > 0 && usage.output > 0, 'the fake reports usage');
    const cost = (usage.input * pinned.in + usage.output * pinned.out) / 1e6;
    const t = await taskUsage(task);
    assert.deepEqual({ calls: t.calls, inputTokens: t.inputTokens, outputTokens: t.outputTokens }, { calls: 1, inputTokens: usage.input, outputTokens: usage.output });
    assert.ok(Math.abs(t.costUsd - cost) < 1e-12, `cost ${t.costUsd} vs ${cost}`);
    expectedCost[pinned.pin] = (expectedCost[pinned.pin] ?? 0) + cost;
    const tok = (expectedTokens[pinned.pin] ??= { input: 0, output: 0 });
    tok.input += usage.input;
    tok.output += usage.output;
    if (body.stream && path.includes('chat')) {
      assert.doesNotMatch(got.text, /"usage":\{/, 'the usage chunk Warden asked for is not shown to the client');
      const chunks = got.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
      assert.ok(chunks.length > 0 && chunks.every((c) => c.choices.length > 0), 'every chunk has a choice, as without usage asked');
      assert.match(String(got.headers['x-warden-actions']), /usage-requested/);
    }
  });
}

test('/metrics shows the same tokens and cost per served model', async () => {
  const text = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  for (const [model, cost] of Object.entries(expectedCost)) {
    const m = new RegExp(`^warden_cost_usd_total\\{model="${model}"\\} (\\S+)$`, 'm').exec(text);
    assert.ok(m, `cost line for ${model}`);
    assert.ok(Math.abs(Number(m[1]) - cost) < 1e-9, `${model}: ${m[1]} vs ${cost}`);
    const input = new RegExp(`^warden_tokens_total\\{model="${model}",direction="input"\\} (\\S+)$`, 'm').exec(text);
    assert.equal(Number(input?.[1]), expectedTokens[model].input);
    const output = new RegExp(`^warden_tokens_total\\{model="${model}",direction="output"\\} (\\S+)$`, 'm').exec(text);
    assert.equal(Number(output?.[1]), expectedTokens[model].output);
  }
  for (const name of ['warden_requests_total', 'warden_request_duration_seconds_bucket', 'warden_upstream_duration_seconds_bucket',
    'warden_time_to_first_byte_seconds_bucket', 'warden_overhead_seconds_bucket', 'warden_process_resident_memory_bytes']) {
    assert.match(text, new RegExp(`^${name}`, 'm'), name);
  }
  assert.match(text, /^warden_requests_total\{route="openai",model="gpt-4o",status="200"\} \d+$/m);
});

test('the official openai SDK streams with its usual loop over choices[0] while Warden asks for usage', async () => {
  const agent = new OpenAI({ apiKey: 'sk-test', baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
  const stream = await agent.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0].delta.content ?? '';
  assert.ok(text.length > 0);
  const direct = new OpenAI({ apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 0 });
  let expected = '';
  for await (const chunk of await direct.chat.completions.create({ model: PRICES['gpt-4o'].pin, stream: true, messages: [{ role: 'user', content: 'Say hello' }] })) {
    expected += chunk.choices[0].delta.content ?? '';
  }
  assert.equal(text, expected);
});
