// Context windowing through the sidecar, with the official openai SDK: a 300-turn conversation with
// tool calls on a model limited to 16k tokens. Every request that reaches the upstream is checked
// independently: its size by tiktoken, the turn-1 instruction verbatim, no orphaned tool call or
// result by the providers' rules, and a fact from turn 3 recalled when turn 290 asks for it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { get_encoding } from 'tiktoken';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

type Msg = OpenAI.Chat.Completions.ChatCompletionMessageParam;
const LIMIT = 16_000;
const enc = get_encoding('o200k_base');

let fake: FakeUpstream;
let warden: Sidecar;
let client: OpenAI;
const dataDir = tempDataDir();
const POLICY = `models:
  gpt-4o-mini: { contextTokens: ${LIMIT} }
context:
  reserveOutputTokens: 1000
  preserve: [{ role: user, pattern: "\\\\b(always|never|must|do not)\\\\b" }]
  toolResults: { keepLast: 2 }
`;

before(async () => {
  fake = await startFakeUpstream();
  warden = await startWarden(tempFile('ctx.yaml', policyFor(fake.url, POLICY, 'ctx-agent')), false, dataDir);
  client = new OpenAI({ baseURL: `${warden.trafficUrl}/v1`, apiKey: 'k', maxRetries: 0 });
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [{ type: 'function', function: { name: 'lookup_order', description: 'Look an order up', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }];

/** OpenAI's own count for a chat request: 3 per message, the content, 3 for the reply; tools and calls by their JSON. */
function tokensOf(body: { messages: any[]; tools?: unknown[] }): number {
  let n = 3;
  for (const m of body.messages) {
    n += 3 + enc.encode(typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? '')).length;
    for (const c of m.tool_calls ?? []) n += 3 + enc.encode(c.function.name).length + enc.encode(c.function.arguments).length;
  }
  return n + (body.tools ? enc.encode(JSON.stringify(body.tools)).length : 0);
}

/** The providers' rule, checked independently: each tool call answered right after it, each result answering one. */
function orphans(messages: any[]): string[] {
  const problems: string[] = [];
  messages.forEach((m, i) => {
    if (m.role === 'assistant' && m.tool_calls?.length) {
      const answered = new Set<string>();
      for (let j = i + 1; j < messages.length && messages[j].role === 'tool'; j++) answered.add(messages[j].tool_call_id);
      const isLast = i === messages.length - 1;
      for (const c of m.tool_calls) if (!answered.has(c.id) && !isLast) problems.push(`call ${c.id} at ${i} has no result`);
    }
    if (m.role === 'tool') {
      let j = i - 1;
      while (j >= 0 && messages[j].role === 'tool') j--;
      if (!(messages[j]?.role === 'assistant' && messages[j].tool_calls?.some((c: any) => c.id === m.tool_call_id))) problems.push(`result ${m.tool_call_id} at ${i} answers no call`);
    }
  });
  return problems;
}

const FILLER = ['The parcel tracking page shows nothing new since Tuesday, and the courier hotline keeps me on hold.',
  'I also wanted to ask about the warranty terms for the blender I bought last spring, which now rattles.',
  'My neighbour received a similar package yesterday, so I wonder whether the depot is simply overloaded.',
  'Could you also check whether the loyalty points from my March purchase were credited to the account?'];

test('300 turns on a 16k model: every request fits, keeps turn 1 verbatim, has no orphans, and turn 290 recalls turn 3', async () => {
  const session = { 'x-warden-session': 'long-conversation' };
  const messages: Msg[] = [{ role: 'system', content: 'You are a support agent for an online shop.' }];
  const instruction = 'Please always answer in French, whatever language I write in.';
  let checked = 0;
  let summarizerCalls = 0;
  let withSummary = 0;
  for (let turn = 1; turn <= 300; turn++) {
    let content = `${FILLER[turn % FILLER.length]} ${FILLER[(turn + 1) % FILLER.length]} (turn ${turn})`;
    if (turn === 1) content = instruction;
    if (turn === 3) content = 'My order number is ORD-314159 and it still has not arrived.';
    if (turn === 290) content = 'What was my order number again? I need the order number for the form.';
    if (turn % 10 === 5) content += ` [[call lookup_order {"order_id":"ORD-${100000 + turn}"}]]`;
    messages.push({ role: 'user', content });
    const seen = fake.requests.length;
    const answer = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: TOOLS }, { headers: session })).choices[0].message;
    messages.push(answer);
    if (answer.tool_calls?.length) {
      const call = answer.tool_calls[0] as { id: string };
      const result = { order_id: `ORD-${100000 + turn}`, status: 'in transit', events: Array.from({ length: 12 }, (_, k) => ({ at: `2026-11-${10 + (k % 15)}T0${k % 10}:1${k % 6}:00Z`, where: `Depot ${k * 7 + turn}`, note: 'scanned at sorting facility' })) };
      messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify(result) });
      messages.push((await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: TOOLS }, { headers: session })).choices[0].message);
    }
    for (const r of fake.requests.slice(seen)) {
      const body = JSON.parse(r.body.toString());
      if (String(body.messages[0]?.content).startsWith('[warden summarizer]')) {
        summarizerCalls++;
        continue;
      }
      if (body.messages.some((m: any) => m.role === 'system' && String(m.content).startsWith('[warden summary]'))) withSummary++;
      const size = tokensOf(body);
      assert.ok(size <= LIMIT, `turn ${turn}: ${size} tokens sent, over the ${LIMIT} limit`);
      assert.ok(body.messages.some((m: any) => m.content === instruction), `turn ${turn}: the turn-1 instruction is there verbatim`);
      assert.deepEqual(orphans(body.messages), [], `turn ${turn}`);
      if (turn === 290) {
        const note = body.messages.find((m: any) => m.role === 'system' && String(m.content).startsWith('[warden memory]'));
        assert.match(String(note?.content), /ORD-314159/, 'turn 290: the order number from turn 3 is recalled from memory');
        assert.ok(!body.messages.some((m: any) => m.role === 'user' && String(m.content).includes('ORD-314159')), 'turn 3 itself is long out of the window');
      }
      checked++;
    }
  }
  const whole = tokensOf({ messages: messages as any[], tools: TOOLS });
  assert.ok(whole > 3 * LIMIT, `the whole conversation (${whole} tokens) is far beyond the limit`);
  assert.ok(checked >= 330);
  // Tier 2: one summarizer call per window slide (counted here, at the upstream, against the slides
  // Warden reports), each summary then reused by every request until the next slide.
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  const slides = Number(/^warden_context_actions_total\{action="summary-written"\} (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(summarizerCalls > 0, 'the window slid and was summarized');
  assert.equal(summarizerCalls, slides, 'one summarizer call per slide');
  assert.ok(withSummary > summarizerCalls * 10, `${summarizerCalls} summarizer calls served ${withSummary} requests carrying a summary`);
  // Warden's own calls leave audit records like the agent's.
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  const summaryRecords = () => (db.prepare("SELECT count(*) AS n FROM records WHERE json_extract(body, '$.purpose') = 'context-summary'").get() as { n: number }).n;
  await waitFor(() => summaryRecords() === summarizerCalls, 5_000, 'a record per summarizer call');
  db.close();
  assert.match(metrics, /^warden_context_actions_total\{action="context-trimmed"\} \d+$/m);
  assert.match(metrics, /^warden_context_actions_total\{action="memory-recalled"\} \d+$/m);
});

test('memory survives a restart of the sidecar, and erasing a session removes it from recall', async () => {
  const dir = tempDataDir();
  const policy = tempFile('small.yaml', policyFor(fake.url, `models:\n  gpt-4o-mini: { contextTokens: 2000 }\ncontext: { reserveOutputTokens: 200 }\n`, 'restart-agent'));
  const session = { 'x-warden-session': 'restart' };
  const messages: Msg[] = [{ role: 'system', content: 'Support agent.' }, { role: 'user', content: 'Hello.' }];
  let w = await startWarden(policy, false, dir);
  let c = new OpenAI({ baseURL: `${w.trafficUrl}/v1`, apiKey: 'k', maxRetries: 0 });
  messages.push({ role: 'user', content: 'The gate code for the delivery is 4471#.' });
  for (let i = 0; i < 40; i++) {
    messages.push((await c.chat.completions.create({ model: 'gpt-4o-mini', messages }, { headers: session })).choices[0].message);
    messages.push({ role: 'user', content: `${FILLER[i % FILLER.length]} (${i})` });
  }
  await w.shutdown();

  // Erasure takes the admin token, read when the sidecar starts.
  process.env.WARDEN_ADMIN_TOKEN = 'erase-token-Vb8nQ2';
  try {
    w = await startWarden(policy, false, dir);
  } finally {
    delete process.env.WARDEN_ADMIN_TOKEN;
  }
  c = new OpenAI({ baseURL: `${w.trafficUrl}/v1`, apiKey: 'k', maxRetries: 0 });
  const ask = async () => {
    await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [...messages, { role: 'user', content: 'What is the gate code for the delivery?' }] }, { headers: session });
    return JSON.stringify(JSON.parse(fake.requests.at(-1)!.body.toString()).messages);
  };
  try {
    assert.match(await ask(), /\[warden memory\][^"]*4471#/, 'recalled after the restart');
    const listed = await (await request(`${w.adminUrl}/memory/restart`)).body.json() as { memories: { text: string }[] };
    assert.ok(listed.memories.some((m) => m.text.includes('4471#')));
    const refused = await request(`${w.adminUrl}/memory/restart`, { method: 'DELETE' });
    assert.deepEqual([refused.statusCode, ((await refused.body.json()) as any).error.code], [401, 'WARDEN_ERR_ADMIN_UNAUTHORIZED'], 'no erasure without the admin token');
    assert.match(await ask(), /\[warden memory\][^"]*4471#/, 'still recalled after the refused erasure');
    const erased = await (await request(`${w.adminUrl}/memory/restart`, { method: 'DELETE', headers: { authorization: 'Bearer erase-token-Vb8nQ2' } })).body.json() as { erased: number };
    assert.ok(erased.erased > 0);
    assert.doesNotMatch(await ask(), /4471#/, 'gone from recall once erased');
  } finally {
    await w.shutdown();
  }
});

test('the Anthropic estimate converges to the upstream\'s reported usage within 20 calls', async () => {
  const w = await startWarden(tempFile('anth.yaml', policyFor(fake.url, 'context: {}\n', 'anth-agent')));
  try {
    const anthropic = new (await import('@anthropic-ai/sdk')).default({ baseURL: `${w.trafficUrl}/anthropic`, apiKey: 'k', maxRetries: 0 });
    const tokens = w.ctx.services.tokens;
    const ask = (i: number) => ({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: `${FILLER[i % FILLER.length]} ${'Ünïcode ✓ '.repeat(i % 5)} ${FILLER[(i + 2) % FILLER.length]}` }] });
    for (let i = 0; i < 20; i++) await anthropic.messages.create(ask(i));
    let worst = 0;
    for (let i = 20; i < 25; i++) {
      const msg = await anthropic.messages.create(ask(i));
      const estimate = (w.ctx.runtime.pipeline.stages.find((s) => s.name === 'context-window'), tokens.countRequest('claude-sonnet-4-5', 'anthropic', { messages: [{ role: 'user', text: ask(i).messages[0].content }], tools: [] }));
      worst = Math.max(worst, Math.abs(estimate - msg.usage.input_tokens) / msg.usage.input_tokens);
    }
    assert.ok(worst <= 0.05, `estimate within 5% of the reported usage (worst ${(worst * 100).toFixed(1)}%)`);
  } finally {
    await w.shutdown();
  }
});

test('Anthropic messages are windowed too: by the upstream\'s own count stays within the window, the instruction stays', async () => {
  const LIMITED = 2500;
  const w = await startWarden(tempFile('anth-ctx.yaml', policyFor(fake.url, `models:\n  claude-sonnet-4-5: { contextTokens: ${LIMITED} }\ncontext: { reserveOutputTokens: 300 }\n`, 'anth-ctx')));
  try {
    const anthropic = new (await import('@anthropic-ai/sdk')).default({ baseURL: `${w.trafficUrl}/anthropic`, apiKey: 'k', maxRetries: 0 });
    const messages: { role: 'user' | 'assistant'; content: string }[] = [];
    const instruction = 'You must always answer in French.';
    let trimmed = 0;
    for (let turn = 1; turn <= 60; turn++) {
      messages.push({ role: 'user', content: turn === 1 ? instruction : `${FILLER[turn % FILLER.length]} (${turn})` });
      const { data: msg, response } = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 300, system: 'Support agent.', messages }, { headers: { 'x-warden-session': 'anth' } }).withResponse();
      messages.push({ role: 'assistant', content: (msg.content[0] as { text: string }).text });
      assert.ok(msg.usage.input_tokens <= LIMITED - 300, `turn ${turn}: ${msg.usage.input_tokens} input tokens by the upstream's count`);
      const sent = JSON.parse(fake.requests.at(-1)!.body.toString());
      if (String(sent.system).includes('[warden summarizer]')) continue;
      assert.ok(sent.messages.some((m: { content: unknown }) => m.content === instruction), `turn ${turn}: the instruction is kept`);
      if (String(response.headers.get('x-warden-actions')).includes('context-trimmed')) trimmed++;
    }
    assert.ok(trimmed > 10, `${trimmed} requests trimmed`);
  } finally {
    await w.shutdown();
  }
});

test('the Responses API is windowed too', async () => {
  const w = await startWarden(tempFile('resp-ctx.yaml', policyFor(fake.url, `models:\n  gpt-4o-mini: { contextTokens: 2500 }\ncontext: { reserveOutputTokens: 300 }\n`, 'resp-ctx')));
  try {
    const c = new OpenAI({ baseURL: `${w.trafficUrl}/v1`, apiKey: 'k', maxRetries: 0 });
    const input: { role: 'user' | 'assistant'; content: string }[] = [];
    const instruction = 'You must always answer in French.';
    for (let turn = 1; turn <= 50; turn++) {
      input.push({ role: 'user', content: turn === 1 ? instruction : `${FILLER[turn % FILLER.length]} (${turn})` });
      const r = await c.responses.create({ model: 'gpt-4o-mini', instructions: 'Support agent.', input }, { headers: { 'x-warden-session': 'resp' } });
      input.push({ role: 'assistant', content: r.output_text });
      const sent = JSON.parse(fake.requests.filter((q) => q.path.endsWith('/responses')).at(-1)!.body.toString());
      const tokens = 3 + (sent.input as { content: string }[]).reduce((n, m) => n + 3 + enc.encode(typeof m.content === 'string' ? m.content : JSON.stringify(m.content)).length, 0) + enc.encode(String(sent.instructions)).length;
      assert.ok(tokens <= 2500 - 300, `turn ${turn}: ${tokens} tokens sent`);
      assert.ok(sent.input.some((m: { content: unknown }) => m.content === instruction), `turn ${turn}: the instruction is kept`);
    }
  } finally {
    await w.shutdown();
  }
});

test('without x-warden-session, conversations that open alike share no memory or summary', async () => {
  const w = await startWarden(tempFile('anon.yaml', policyFor(fake.url, `models:\n  gpt-4o-mini: { contextTokens: 1500 }\ncontext: { reserveOutputTokens: 200 }\n`, 'anon')));
  try {
    const c = new OpenAI({ baseURL: `${w.trafficUrl}/v1`, apiKey: 'k', maxRetries: 0 });
    const talk = async (secret: string, question: string) => {
      const messages: Msg[] = [{ role: 'system', content: 'Support.' }, { role: 'user', content: 'hi' }, { role: 'user', content: secret }];
      for (let i = 0; i < 25; i++) {
        messages.push((await c.chat.completions.create({ model: 'gpt-4o-mini', messages })).choices[0].message);
        messages.push({ role: 'user', content: `${FILLER[i % FILLER.length]} (${i})` });
      }
      messages.push({ role: 'user', content: question });
      await c.chat.completions.create({ model: 'gpt-4o-mini', messages });
      return fake.requests.at(-1)!.body.toString();
    };
    await talk('My PIN is 7731, keep it safe.', 'ok');
    const other = await talk('I like tea.', 'What is my PIN?');
    assert.doesNotMatch(other, /7731/, 'another conversation never sees it');
  } finally {
    await w.shutdown();
  }
});
