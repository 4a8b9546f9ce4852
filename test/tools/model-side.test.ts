// Scope policy on the model side, seen from an agent on the official openai SDK: the tool list the
// model sees, a forged call to a forbidden tool, invalid and truncated arguments, monitor mode.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { ROOT, startWarden, tempDataDir, tempFile } from '../helpers/warden.ts';
import { readFileSync } from 'node:fs';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

/** The support-agent example, pointed at the fake, in the given mode and with extra rules. */
function supportPolicy(mode = 'enforce', rules = ''): string {
  const text = readFileSync(join(ROOT, 'policies/examples/support-agent.yaml'), 'utf8')
    .replace('mode: enforce', `mode: ${mode}`)
    .replace('  blockWith: message ', `${rules}  blockWith: message `);
  return tempFile('support.yaml', text);
}

async function withWarden<T>(policyFile: string, fn: (w: Sidecar, client: OpenAI, dataDir: string) => Promise<T>): Promise<T> {
  process.env.OPENAI_UPSTREAM = `${fake.url}/v1`;
  const dataDir = tempDataDir();
  const warden = await startWarden(policyFile, false, dataDir);
  delete process.env.OPENAI_UPSTREAM;
  try {
    return await fn(warden, new OpenAI({ baseURL: `${warden.trafficUrl}/v1`, apiKey: 'agent-key', maxRetries: 0 }), dataDir);
  } finally {
    await warden.shutdown();
  }
}

// The agent's own code declares both tools; the policy decides which the model may see.
const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } },
  { type: 'function', function: { name: 'issue_refund', parameters: { type: 'object', properties: { order_id: { type: 'string' }, amount: { type: 'number' } } } } },
];

const ask = (content: string, extra: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming> = {}) =>
  ({ model: 'gpt-4o', messages: [{ role: 'user' as const, content }], tools: TOOLS, ...extra });

/** A tool call's function (the SDK's union type also has custom tool calls). */
const fn = (c: unknown) => (c as { function: { name: string; arguments: string } }).function;

function lastUpstreamTools(): string[] {
  const body = JSON.parse(fake.requests.at(-1)!.body.toString()) as { tools?: { function: { name: string } }[] };
  return (body.tools ?? []).map((t) => t.function.name);
}

async function metric(w: Sidecar, line: string): Promise<number> {
  const text = await (await request(`${w.adminUrl}/metrics`)).body.text();
  const m = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function records(dataDir: string): Record<string, any>[] {
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  try {
    return (db.prepare("SELECT body FROM records WHERE event = 'model_call' ORDER BY seq").all() as { body: string }[]).map((r) => JSON.parse(r.body));
  } finally {
    db.close();
  }
}

test('the model never sees issue_refund; a forged call to it is blocked, recorded and counted', async () => {
  await withWarden(supportPolicy(), async (w, client, dataDir) => {
    const ok = await client.chat.completions.create(ask('Where is [[call lookup_order {"order_id":"ORD-123456"}]] my order?'));
    assert.deepEqual(lastUpstreamTools(), ['lookup_order']);
    assert.equal(ok.choices[0].finish_reason, 'tool_calls');
    assert.equal(fn(ok.choices[0].message.tool_calls![0]).name, 'lookup_order');

    // The model calls the tool it was never offered (a jailbreak, a stale prompt, a confused model).
    const forged = await client.chat.completions.create(ask('Refund me [[call issue_refund {"order_id":"ORD-123456","amount":50}]] now'));
    const choice = forged.choices[0];
    assert.equal(choice.message.tool_calls, undefined);
    assert.equal(choice.finish_reason, 'stop');
    assert.match(choice.message.content!, /The call to issue_refund was refused by policy \(scope_violation\): "issue_refund" needs scope "finance"/);
    assert.equal(await metric(w, 'warden_violations_total{kind="scope_violation",action="block"}'), 1);
    const rec = records(dataDir).at(-1)!;
    assert.deepEqual(rec.violations.map((v: any) => [v.kind, v.tool, v.action]), [['scope_violation', 'issue_refund', 'block']]);
    assert.ok(rec.actions.includes('tool-blocked:1'));
    assert.match(JSON.parse(rec.response.text).choices[0].message.content, /refused by policy/, 'the record keeps what the agent received');
  });
});

test('monitor mode: the tool list is left alone and the forged call passes, recorded as a logged violation', async () => {
  await withWarden(supportPolicy('monitor'), async (w, client, dataDir) => {
    const forged = await client.chat.completions.create(ask('Refund [[call issue_refund {"order_id":"ORD-123456","amount":50}]]'));
    assert.deepEqual(lastUpstreamTools(), ['lookup_order', 'issue_refund']);
    assert.equal(fn(forged.choices[0].message.tool_calls![0]).name, 'issue_refund');
    assert.equal(await metric(w, 'warden_violations_total{kind="scope_violation",action="log"}'), 1);
    assert.deepEqual(records(dataDir).at(-1)!.violations.map((v: any) => [v.kind, v.rule, v.action]), [['scope_violation', 'block', 'log']]);
  });
});

test('invalid arguments and unparsable (truncated) arguments are caught, JSON and streamed', async () => {
  await withWarden(supportPolicy(), async (w, client) => {
    const bad = await client.chat.completions.create(ask('[[call lookup_order {"order_id":"12"}]]'));
    assert.match(bad.choices[0].message.content!, /invalid_arguments.*\/order_id must match pattern/);
    const cut = await client.chat.completions.create(ask('[[call lookup_order {"order_id":"ORD-1234}]]'));
    assert.match(cut.choices[0].message.content!, /invalid_arguments.*not valid JSON \(truncated or malformed\)/);

    // Streamed: the good call keeps flowing; the broken one never reaches the agent as a call.
    const stream = client.chat.completions.stream({ ...ask('[[call lookup_order {"order_id":"ORD-123456"}]] [[call lookup_order {"order_id":"ORD-12}]]'), stream: true });
    const final = await stream.finalChatCompletion();
    const calls = final.choices[0].message.tool_calls!;
    assert.deepEqual(calls.map((c) => [fn(c).name, fn(c).arguments]), [['lookup_order', '{"order_id":"ORD-123456"}']]);
    assert.match(final.choices[0].message.content!, /not valid JSON/);
    assert.equal(await metric(w, 'warden_violations_total{kind="invalid_arguments",action="block"}'), 3);
  });
});

test('a stream cut in the middle of a tool call never hands the agent that call', async () => {
  await withWarden(supportPolicy(), async (_w, client) => {
    const stream = client.chat.completions.stream(
      { ...ask('[[call lookup_order {"order_id":"ORD-123456"}]]'), stream: true },
      { headers: { 'x-fake-scenario': 'reset-after=2' } },
    );
    const seen: unknown[] = [];
    stream.on('chunk', (c) => seen.push(...(c.choices[0]?.delta.tool_calls ?? [])));
    await assert.rejects(stream.finalChatCompletion());
    assert.deepEqual(seen, [], 'no tool-call delta reached the agent');
  });
});

test('rules.blockWith: error answers 403 WARDEN_ERR_TOOL_BLOCKED in the provider\'s shape', async () => {
  const file = supportPolicy().replace(/$/, '');
  const text = readFileSync(file, 'utf8').replace('blockWith: message', 'blockWith: error');
  await withWarden(tempFile('err.yaml', text), async (_w, client) => {
    const err = await client.chat.completions.create(ask('[[call issue_refund {"order_id":"ORD-123456","amount":50}]]')).catch((e) => e);
    assert.ok(err instanceof OpenAI.PermissionDeniedError);
    assert.equal(err.status, 403);
    assert.equal((err.error as { code: string }).code, 'WARDEN_ERR_TOOL_BLOCKED');
    assert.equal((err.error as { type: string }).type, 'warden_tool_blocked');
  });
});

test('streamed forged calls are refused for Anthropic messages and the Responses API too, each SDK assembling a plain answer', async () => {
  const file = tempFile('both.yaml', readFileSync(supportPolicy(), 'utf8').replace('upstreams:\n', `upstreams:\n  anthropic: { baseUrl: "${fake.url}" }\n`));
  await withWarden(file, async (w, client) => {
    const anthropic = new Anthropic({ baseURL: `${w.trafficUrl}/anthropic`, apiKey: 'agent-key', maxRetries: 0 });
    const msg = await anthropic.messages.stream({
      model: 'claude-opus-4-5', max_tokens: 200,
      tools: [{ name: 'lookup_order', input_schema: { type: 'object' } }, { name: 'issue_refund', input_schema: { type: 'object' } }],
      messages: [{ role: 'user', content: '[[call lookup_order {"order_id":"ORD-123456"}]] [[call issue_refund {"order_id":"ORD-123456","amount":50}]]' }],
    }).finalMessage();
    assert.deepEqual(msg.content.map((b) => b.type), ['tool_use', 'text']);
    assert.equal((msg.content[0] as { name: string }).name, 'lookup_order');
    assert.match((msg.content[1] as { text: string }).text, /issue_refund was refused by policy \(scope_violation\)/);
    assert.equal(msg.stop_reason, 'tool_use', 'one allowed call remains');
    // Anthropic's MCP connector would run tools at the provider, where Warden cannot judge them.
    const connector = await anthropic.messages.create({
      model: 'claude-opus-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }],
      mcp_servers: [{ type: 'url', url: 'https://mcp.example.net/sse', name: 'outside' }],
    } as never).catch((e) => e);
    assert.equal(connector.status, 403);
    assert.match(connector.message, /mcp_servers \(tools run at the provider/);

    const stream = client.responses.stream({
      model: 'gpt-4o', input: 'Refund [[call issue_refund {"order_id":"ORD-123456","amount":50}]]',
      tools: ['lookup_order', 'issue_refund'].map((name) => ({ type: 'function' as const, name, parameters: { type: 'object' }, strict: false })),
    });
    const final = await stream.finalResponse();
    assert.deepEqual(final.output.map((o) => o.type), ['message']);
    assert.match(final.output_text, /issue_refund was refused by policy/);
  });
});

test('scope honesty: every checked tool call counts, in scope or out, and the ratio reads their share', async () => {
  await withWarden(supportPolicy(), async (w, client) => {
    for (let i = 0; i < 3; i++) await client.chat.completions.create(ask(`Where is [[call lookup_order {"order_id":"ORD-12345${i}"}]]?`));
    await client.chat.completions.create(ask('Refund it [[call issue_refund {"order_id":"ORD-123450","amount":5}]] now'));
    assert.equal(await metric(w, 'warden_scope_checks_total{result="in_scope"}'), 3);
    assert.equal(await metric(w, 'warden_scope_checks_total{result="out_of_scope"}'), 1);
    assert.equal(await metric(w, 'warden_scope_honesty_ratio'), 0.75);
  });
});

test('Responses API custom tool calls are judged like function calls, whole and streamed: a forbidden one is refused, an allowed one passes as it came', async () => {
  const custom = (id: string, name: string, input: string) => ({ type: 'custom_tool_call', id: `ctc_${id}`, call_id: `call_${id}`, name, input, status: 'completed' });
  const items = [custom('A', 'issue_refund', '{"order_id":"ORD-123456","amount":5000}'), custom('B', 'lookup_order', '{"order_id":"ORD-123456"}')];
  const whole = { id: 'resp_1', object: 'response', created_at: 1, status: 'completed', model: 'gpt-4o', output: items, usage: { input_tokens: 5, output_tokens: 5, total_tokens: 10 } };
  let n = 0;
  const events = [
    { type: 'response.created', response: { ...whole, status: 'in_progress', output: [] } },
    ...items.flatMap((item, k) => [
      { type: 'response.output_item.added', output_index: k, item: { ...item, input: '', status: 'in_progress' } },
      { type: 'response.custom_tool_call_input.delta', output_index: k, item_id: item.id, delta: item.input },
      { type: 'response.custom_tool_call_input.done', output_index: k, item_id: item.id, input: item.input },
      { type: 'response.output_item.done', output_index: k, item },
    ]),
    { type: 'response.completed', response: whole },
  ].map((e) => `event: ${e.type}\ndata: ${JSON.stringify({ ...e, sequence_number: n++ })}\n\n`).join('');
  fake.setHandler((req, res) => {
    if (!req.path.endsWith('/responses')) return false;
    const stream = JSON.parse(req.body.toString()).stream === true;
    res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' });
    res.end(stream ? events : JSON.stringify(whole));
    return true;
  });
  try {
    await withWarden(supportPolicy(), async (w) => {
      for (const stream of [false, true]) {
        const res = await request(`${w.trafficUrl}/v1/responses`, {
          method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer agent-key' },
          body: JSON.stringify({ model: 'gpt-4o', input: 'refund it', stream, tools: [{ type: 'custom', name: 'lookup_order' }, { type: 'custom', name: 'issue_refund' }] }),
        });
        const text = await res.body.text();
        assert.equal(res.statusCode, 200, text);
        assert.doesNotMatch(text, /"amount\\?":5000/, `${stream ? 'streamed' : 'whole'}: the refused call's input is gone`);
        assert.match(text, /issue_refund was refused by policy \(scope_violation\)/);
        assert.match(text, /"type":"custom_tool_call"[^}]*"name":"lookup_order"|"name":"lookup_order"[^}]*"type":"custom_tool_call"/, 'the allowed call stays a custom call');
      }
    });
  } finally {
    fake.setHandler(undefined);
  }
});
