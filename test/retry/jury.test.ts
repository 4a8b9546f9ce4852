// Parallel instances judged by a jury: three calls at once, the majority answer wins (A, A, B → A),
// streaming agents get the winner streamed, and a split jury (A, B, C) goes to a person, whose pick
// is what the agent receives.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { answerKey, belowAgreement, judge } from '../../proxy/retry/jury.ts';
import { auditRecords } from '../helpers/audit.ts';
import { chatEvents, chatJson, script, sse } from '../helpers/scripted.ts';
import { warden as wardenCli } from '../helpers/escalation.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let dataDir: string;
let client: OpenAI;
const critical = { headers: { 'x-warden-critical': '1' } };
// The reviewer's credential for decisions on the admin API, read by the sidecar at start.
const ADMIN_TOKEN = 'adm-jury-reviewer-5Tz8';

before(async () => {
  fake = await startFakeUpstream();
  dataDir = tempDataDir();
  process.env.WARDEN_ADMIN_TOKEN = ADMIN_TOKEN;
  warden = await startWarden(tempFile('j.yaml', policyFor(fake.url, `retries:
  parallel: { n: 3, select: majority, escalateBelowAgreement: 0.67, when: { header: x-warden-critical } }
escalation: { timeoutMs: 20000, onTimeout: fail }
`)), false, dataDir);
  client = new OpenAI({ apiKey: 'sk', baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

const ask = (content: string) => ({ model: 'gpt-4o', messages: [{ role: 'user' as const, content }] });

test('A, A, B → A: three instances at once, the majority wins (text compared normalized)', async () => {
  const answers = ['The capital is Paris.', 'the capital is  Paris', 'The capital is Lyon.'];
  const seen = script(fake, (_req, n, res) => chatJson(res, answers[n]));
  const { data, response } = await client.chat.completions.create(ask('Capital of France?'), critical).withResponse();
  assert.equal(seen.length, 3);
  assert.equal(data.choices[0].message.content, 'The capital is Paris.');
  assert.match(response.headers.get('x-warden-actions') ?? '', /jury:3/);
  const verdict = auditRecords(dataDir).at(-1)!.decisions.find((d: any) => d.stage === 'jury');
  assert.equal(Math.round(verdict.detail.agreement * 100), 67);
  assert.deepEqual(verdict.detail.votes.map((v: any) => v.count), [2, 1]);
});

test('a call without the critical header runs once', async () => {
  const seen = script(fake, (_req, _n, res) => chatJson(res, 'single'));
  await client.chat.completions.create(ask('plain'));
  assert.equal(seen.length, 1);
});

test('a streaming agent gets the winner streamed after the jury decides', async () => {
  const answers = ['blue sky', 'green grass', 'blue sky'];
  script(fake, (_req, n, res) => sse(res, chatEvents(answers[n])));
  const stream = await client.chat.completions.create({ ...ask('colour?'), stream: true }, critical);
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'blue sky');
});

test('A, B, C: agreement below the threshold escalates; the reviewer\'s pick is what the agent gets', async () => {
  const answers = ['Answer A', 'Answer B', 'Answer C'];
  script(fake, (_req, n, res) => chatJson(res, answers[n]));
  const before = await metric('warden_jury_disagreements_total');
  const pending = client.chat.completions.create(ask('split'), critical).withResponse();
  let esc: any;
  await waitFor(async () => {
    const list = await (await fetch(`${warden.adminUrl}/escalations?state=pending`)).json() as any;
    esc = (list.escalations ?? list).find((e: any) => e.kind === 'model_answer');
    return esc !== undefined;
  }, 10_000, 'the escalation to open');
  assert.equal(esc.subject?.candidates?.length ?? esc.candidates?.length, 3);
  const approve = await fetch(`${warden.adminUrl}/escalations/${esc.id}/approve`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ by: 'reviewer@example.com', choice: 2 }),
  });
  assert.equal(approve.status, 200);
  const { data, response } = await pending;
  assert.equal(data.choices[0].message.content, 'Answer C');
  assert.match(response.headers.get('x-warden-actions') ?? '', /reviewed/);
  assert.equal(await metric('warden_jury_disagreements_total'), before + 1);
  const rec = auditRecords(dataDir).at(-1)!;
  assert.ok(rec.decisions.some((d: any) => d.stage === 'escalation' && d.decision === 'approved'));
});

test('a split jury survives a restart: the call sent again attaches to its escalation and gets the pick made meanwhile, without asking again', async () => {
  const dir = tempDataDir();
  const policy = tempFile('restart.yaml', policyFor(fake.url, `retries:
  parallel: { n: 3, select: majority, escalateBelowAgreement: 0.67, when: { header: x-warden-critical } }
escalation: { timeoutMs: 60000, onTimeout: fail }
`, 'restart-jury'));
  const answers = ['Refund in full.', 'Refund half.', 'Offer a voucher.'];
  const seen = script(fake, (_req, n, res) => chatJson(res, answers[n % 3]));
  const question = ask('What do we do about order 81?');
  const session = { headers: { ...critical.headers, 'x-warden-session': 'sess-81' } };
  let w = await startWarden(policy, false, dir);
  let esc: { id: string; candidates?: { text: string }[] } | undefined;
  try {
    const agent = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    const cut = new AbortController();
    const first = agent.chat.completions.create(question, { ...session, signal: cut.signal }).then(() => 'answered', () => 'cut');
    await waitFor(() => !!(esc = w.ctx.services.escalations.list({ state: 'pending' }).find((e) => e.kind === 'model_answer')), 10_000, 'the escalation');
    assert.equal(seen.length, 3);
    // The agent's request is cut, then the sidecar restarts: the escalation waits in its file.
    cut.abort();
    assert.equal(await first, 'cut');
  } finally {
    await w.shutdown();
  }
  // Decided while the sidecar is down, on its data volume.
  const picked = esc!.candidates![2].text;
  const cli = await wardenCli('escalations', 'approve', esc!.id, '--choice', '2', '--by', 'night shift', '--data-dir', dir);
  assert.equal(cli.code, 0, cli.err);
  w = await startWarden(policy, false, dir);
  try {
    const agent = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    const { data, response } = await agent.chat.completions.create(question, session).withResponse();
    assert.equal(data.choices[0].message.content, picked, 'the person\'s pick, replayed');
    assert.equal(seen.length, 3, 'the upstream was not asked again');
    assert.match(response.headers.get('x-warden-actions') ?? '', /reviewed/);
    await waitFor(() => auditRecords(dir).length > 0, 5_000, 'the record');
    const rec = auditRecords(dir).at(-1)!;
    const escalation = rec.decisions.filter((d: any) => d.stage === 'escalation').map((d: any) => [d.decision, d.detail.id]);
    assert.deepEqual(escalation, [['attached', esc!.id], ['approved', esc!.id]]);
    assert.deepEqual(w.ctx.services.escalations.answers(esc!.id), [], 'kept answers are dropped once delivered');
    // Delivered once: the same question again is a new call, with a new jury.
    const next = agent.chat.completions.create(question, session);
    await waitFor(() => seen.length === 6, 10_000, 'a new jury');
    const reopened = w.ctx.services.escalations.list({ state: 'pending' }).find((e) => e.kind === 'model_answer');
    assert.ok(reopened && reopened.id !== esc!.id);
    w.ctx.services.escalations.reject(reopened.id, { by: 'test' });
    await assert.rejects(next);
  } finally {
    await w.shutdown();
  }
});

test('the same question in another session is its own call: its own jury and its own review', async () => {
  const answers = ['One.', 'Two.', 'Three.'];
  const seen = script(fake, (_req, n, res) => chatJson(res, answers[n % 3]));
  const inSession = (session: string) => ({ headers: { ...critical.headers, 'x-warden-session': session } });
  const first = client.chat.completions.create(ask('Pick a number'), inSession('s-1')).catch((err: Error) => err);
  const pending = () => warden.ctx.services.escalations.list({ state: 'pending' }).filter((e) => e.kind === 'model_answer');
  await waitFor(() => pending().length === 1, 10_000, 'the first escalation');
  const second = client.chat.completions.create(ask('Pick a number'), inSession('s-2')).catch((err: Error) => err);
  await waitFor(() => pending().length === 2, 10_000, 'a second escalation, not an attachment');
  assert.equal(seen.length, 6, 'two juries');
  for (const e of pending()) warden.ctx.services.escalations.reject(e.id, { by: 'test' });
  for (const r of [await first, await second]) assert.ok(r instanceof Error && /rejected/i.test(r.message), String(r));
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

test('jury keys: tool calls agree on name and canonical arguments; JSON canonically; two decimals of agreement', () => {
  const call = (args: string) => ({ text: '', toolCalls: [{ id: 'x', name: 'lookup', arguments: args }] });
  assert.equal(answerKey(call('{"a":1,"b":2}')), answerKey(call('{ "b": 2, "a": 1 }')));
  assert.notEqual(answerKey(call('{"a":1}')), answerKey(call('{"a":2}')));
  assert.equal(answerKey({ text: '{"x": [1, 2]}', toolCalls: [] }), answerKey({ text: '{"x":[1,2]}', toolCalls: [] }));
  const v = judge([{ response: call('{"a":1}') }, { response: call('{"a":2}') }, { response: call('{ "a": 1 }') }], 'majority');
  assert.equal(v.winner, 0);
  assert.deepEqual(v.groups, [[0, 2], [1]]);
  assert.equal(belowAgreement(2 / 3, 0.67), false);
  assert.equal(belowAgreement(1 / 3, 0.67), true);
  const byConfidence = judge([{ response: call('{}'), confidence: 0.2 }, { response: call('{"z":1}'), confidence: 0.9 }], 'confidence');
  assert.equal(byConfidence.winner, 1);
});
