// Acceptance (issue 7, item 3): "Rate limit and budget: the (N+1)th call in the window gets 429 with a
// correct Retry-After; the budget stops calls at the configured USD." Driven through real sidecars on
// the fake model with the official openai and @anthropic-ai/sdk clients (their own retries off, so
// every 429 is seen). "Correct" is checked two ways: against the moment the limiter's window really
// frees (read from the running sidecar), and by behaviour: before that moment the call is refused,
// after waiting Retry-After it goes.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { msToUtcMidnight } from '../../proxy/limits/spend-store.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditRecords } from '../helpers/audit.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

// The fake bills "hi" as 4 input tokens (ceil(2/4) + 3 per message) and 3 output tokens ("You said: hi").
// At $250,000 per million input tokens and nothing for output, each call costs exactly $1.
const DOLLAR_A_CALL = `models:
  gpt-4o: { price: { inputPerMTok: 250000, outputPerMTok: 0 } }
  claude-sonnet-4-5: { price: { inputPerMTok: 250000, outputPerMTok: 0 } }
`;

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
  // A budget test that straddles UTC midnight would see its day's spend reset under it.
  if (msToUtcMidnight(Date.now()) < 30_000) await sleep(msToUtcMidnight(Date.now()) + 100);
});
after(() => fake.close());

function openai(w: Sidecar, task?: string): OpenAI {
  return new OpenAI({ apiKey: 'sk-agent', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0, defaultHeaders: task ? { 'x-warden-task': task } : {} });
}

function anthropic(w: Sidecar, task?: string): Anthropic {
  return new Anthropic({ apiKey: 'sk-agent', baseURL: `${w.trafficUrl}/anthropic`, maxRetries: 0, defaultHeaders: task ? { 'x-warden-task': task } : {} });
}

const chat = (c: OpenAI, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}, headers: Record<string, string> = {}) =>
  c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...extra }, { headers });
const message = (c: Anthropic) => c.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });

/** The 429 a call got: status, Retry-After and body, whichever SDK threw it; plus when it was sent and answered. */
async function refused(call: () => Promise<unknown>): Promise<{ status: number; retryAfter: number; body: any; sentAt: number; answeredAt: number }> {
  const sentAt = Date.now();
  const err = await call().then(() => undefined, (e) => e);
  const answeredAt = Date.now();
  assert.ok(err instanceof OpenAI.APIError || err instanceof Anthropic.APIError, `expected a 429, got ${err ? String(err) : 'a 200'}`);
  return { status: err.status, retryAfter: Number(err.headers.get('retry-after')), body: err.error, sentAt, answeredAt };
}

async function metric(w: Sidecar, line: RegExp): Promise<number> {
  const text = await (await request(`${w.adminUrl}/metrics`)).body.text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').at(-1)) : 0;
}

/**
 * The (N+1)th call: a 429 whose Retry-After is the whole seconds until the limiter's window frees a
 * slot, read from the sidecar itself; then a call just before that moment is still refused, and one
 * made Retry-After seconds after the 429 goes through.
 */
async function checkWindow(w: Sidecar, bucket: 'requests' | 'taskRequests', perMinute: number, task: string | undefined, go: () => Promise<unknown>): Promise<string> {
  const r = await refused(go);
  assert.equal(r.status, 429);
  // When the bucket will hold a whole request again: exact, whenever it is read.
  const level = w.ctx.services.limits!.state(w.ctx.runtime.policy.agent.id, task)[bucket]!;
  const freeAt = Date.now() + ((1 - level) * 60_000) / perMinute;
  // The 429 was decided between sending and answering; Retry-After is ceil((freeAt - then) / 1 s).
  assert.ok(freeAt - r.answeredAt <= r.retryAfter * 1000 + 2, `the slot frees ${freeAt - r.answeredAt} ms after the 429, within Retry-After ${r.retryAfter} s`);
  assert.ok(freeAt - r.sentAt > (r.retryAfter - 1) * 1000 - 2, `the slot frees ${freeAt - r.sentAt} ms after the call, later than Retry-After − 1 s`);
  // Just before the window frees, the call is still refused (a refused call spends nothing).
  await sleep(freeAt - Date.now() - 400);
  assert.equal((await refused(go)).status, 429, 'refused just before the window frees');
  await sleep(r.answeredAt + r.retryAfter * 1000 - Date.now());
  await go();
  return `Retry-After ${r.retryAfter} s; the limiter's window freed a slot ${freeAt - r.answeredAt} ms after the 429 arrived (${freeAt - r.sentAt} ms after it was sent)`;
}

describe('requests per minute (openai SDK): the (N+1)th call gets 429 with a correct Retry-After', () => {
  const N = 12; // a slot every 5 s
  let warden: Sidecar;
  let dataDir: string;
  before(async () => {
    dataDir = tempDataDir();
    warden = await startWarden(tempFile('rpm.yaml', policyFor(fake.url, `limits: { requestsPerMinute: ${N} }\n`)), false, dataDir);
  });
  after(() => warden.shutdown());

  test('N calls go, the (N+1)th is refused until the window frees a slot', async (t) => {
    const c = openai(warden);
    for (let i = 0; i < N; i++) await chat(c);
    const first = await refused(() => chat(c));
    assert.equal(first.status, 429);
    assert.equal(first.body.code, 'WARDEN_ERR_RATE_LIMITED');
    assert.equal(first.body.type, 'warden_rate_limited');
    assert.match(first.body.message, new RegExp(`^rate limit reached: limits\\.requestsPerMinute is ${N} \\(requests per minute for agent test-agent\\); retry in ${first.retryAfter} s$`));
    assert.ok(first.retryAfter >= 1 && first.retryAfter <= 5, `Retry-After ${first.retryAfter}`);
    t.diagnostic(await checkWindow(warden, 'requests', N, undefined, () => chat(c)));
    // One slot freed, one spent: the next call is refused again.
    assert.equal((await refused(() => chat(c))).status, 429);
  });

  test('each refusal is counted by limit and recorded with the limit, its value and the Retry-After', async () => {
    assert.equal(await metric(warden, /^warden_rate_limited_total\{limit="requests_per_minute"\}/), 4);
    assert.equal(await metric(warden, /^warden_violations_total\{kind="limit_exceeded",action="block"\}/), 4);
    const limited = auditRecords(dataDir).filter((r) => r.status === 429);
    assert.equal(limited.length, 4);
    const decision = limited[0].decisions.find((d: any) => d.stage === 'limits');
    assert.deepEqual(decision, { stage: 'limits', decision: 'limited', detail: { limit: 'requests_per_minute', key: 'limits.requestsPerMinute', value: N, retryAfterSeconds: decision.detail.retryAfterSeconds, action: 'block' } });
    assert.equal(limited[0].error, 'WARDEN_ERR_RATE_LIMITED');
  });

  test('a policy reload does not refill the window', async () => {
    const res = await request(`${warden.adminUrl}/policy/reload`, { method: 'POST' });
    assert.equal(res.statusCode, 200, await res.body.text());
    assert.equal((await refused(() => chat(openai(warden)))).status, 429);
  });
});

describe('requests per minute per task (Anthropic SDK)', () => {
  const N = 12;
  let warden: Sidecar;
  before(async () => {
    warden = await startWarden(tempFile('task.yaml', policyFor(fake.url, `limits: { requestsPerMinute: 1000, perTask: { requestsPerMinute: ${N} } }\n`)));
  });
  after(() => warden.shutdown());

  test('a task\'s (N+1)th call gets 429 in Anthropic\'s shape with a correct Retry-After; other tasks go on', async (t) => {
    const a = anthropic(warden, 'task-a');
    for (let i = 0; i < N; i++) await message(a);
    const r = await refused(() => message(a));
    assert.equal(r.status, 429);
    assert.equal(r.body.type, 'error');
    assert.equal(r.body.error.type, 'warden_rate_limited');
    assert.match(r.body.error.message, /limits\.perTask\.requestsPerMinute is 12 \(requests per minute for task "task-a" of agent test-agent\)/);
    await message(anthropic(warden, 'task-b'));
    await message(anthropic(warden));
    t.diagnostic(await checkWindow(warden, 'taskRequests', N, 'task-a', () => message(a)));
    assert.equal(await metric(warden, /^warden_rate_limited_total\{limit="task_requests_per_minute"\}/), 3);
  });
});

describe('USD per day: the budget stops calls at the configured USD, and survives a restart', () => {
  let dataDir: string;
  let policy: string;
  let warden: Sidecar;
  before(async () => {
    dataDir = tempDataDir();
    policy = tempFile('usd.yaml', policyFor(fake.url, `${DOLLAR_A_CALL}limits: { usdPerDay: 3, perTask: { usdPerDay: 2 } }\n`));
    warden = await startWarden(policy, false, dataDir);
  });
  after(() => warden.shutdown());

  test('per task (Anthropic SDK): $1 calls stop at the task\'s $2', async () => {
    const c = anthropic(warden, 'ticket-1');
    await message(c);
    await message(c);
    const r = await refused(() => message(c));
    assert.equal(r.status, 429);
    assert.equal(r.body.error.type, 'warden_budget_exceeded');
    assert.match(r.body.error.message, /^daily budget spent: limits\.perTask\.usdPerDay is \$2 \(USD per UTC day for task "ticket-1" of agent test-agent, and \$2 is spent today\)/);
    const usage = await (await request(`${warden.adminUrl}/usage?task=ticket-1`)).body.json() as { costUsd: number };
    assert.equal(usage.costUsd, 2);
  });

  test('per agent (openai SDK): the third dollar is the last; the 429 says WARDEN_ERR_BUDGET_EXCEEDED until UTC midnight', async (t) => {
    const c = openai(warden);
    await chat(c); // $2 (the task's) + $1
    const r = await refused(() => chat(c));
    assert.equal(r.status, 429);
    assert.equal(r.body.code, 'WARDEN_ERR_BUDGET_EXCEEDED');
    assert.equal(r.body.type, 'warden_budget_exceeded');
    assert.match(r.body.message, /^daily budget spent: limits\.usdPerDay is \$3 \(USD per UTC day for agent test-agent, and \$3 is spent today\); it starts afresh at UTC midnight/);
    const toMidnight = Math.ceil(msToUtcMidnight(r.answeredAt) / 1000);
    t.diagnostic(`Retry-After ${r.retryAfter} s; seconds to UTC midnight ${toMidnight}`);
    assert.ok(Math.abs(r.retryAfter - toMidnight) <= 1, `Retry-After ${r.retryAfter}, seconds to UTC midnight ${toMidnight}`);
    assert.equal(warden.ctx.services.limits!.state('test-agent').usdToday, 3);
    assert.equal(await metric(warden, /^warden_rate_limited_total\{limit="usd_per_day"\}/), 1);
  });

  test('a restarted sidecar on the same data directory still refuses: the day\'s spend was kept', async () => {
    await warden.shutdown();
    warden = await startWarden(policy, false, dataDir);
    const upstreamBefore = fake.requests.length;
    const r = await refused(() => chat(openai(warden)));
    assert.equal(r.body.code, 'WARDEN_ERR_BUDGET_EXCEEDED');
    assert.equal(fake.requests.length, upstreamBefore, 'nothing went upstream');
  });
});

describe('concurrency and tokens per minute', () => {
  let warden: Sidecar;
  before(async () => {
    warden = await startWarden(tempFile('conc.yaml', policyFor(fake.url, 'limits: { concurrent: 2, tokensPerMinute: 6000 }\n')));
  });
  after(() => warden.shutdown());

  test('concurrent: with two calls in flight a third gets 429 at once with Retry-After: 1, and goes once one ends', async () => {
    const c = openai(warden);
    const slow = { 'x-fake-scenario': 'delay-ms=1500' };
    const inFlight = [chat(c, {}, slow), chat(c, {}, slow)];
    await sleep(200);
    const r = await refused(() => chat(c));
    assert.equal(r.status, 429);
    assert.equal(r.retryAfter, 1);
    assert.ok(r.answeredAt - r.sentAt < 500, `answered in ${r.answeredAt - r.sentAt} ms, not queued`);
    assert.match(r.body.message, /^concurrency limit reached: limits\.concurrent is 2/);
    await Promise.all(inFlight);
    await chat(c);
  });

  test('tokens: a call reserves input + max_tokens; the unused part comes back when the upstream reports its usage', async () => {
    const c = openai(warden);
    const limits = () => warden.ctx.services.limits!.state('test-agent');
    const before = limits().tokens!;
    // Reserves ~4,000: with it in flight, a second such call does not fit in what is left.
    const held = chat(c, { max_tokens: 4000 }, { 'x-fake-scenario': 'delay-ms=1000' });
    await sleep(200);
    assert.ok(limits().tokens! < before - 3_900, `reserved: ${before} → ${limits().tokens}`);
    const r = await refused(() => chat(c, { max_tokens: 4000 }));
    assert.equal(r.body.code, 'WARDEN_ERR_RATE_LIMITED');
    assert.match(r.body.message, /limits\.tokensPerMinute is 6000 \(tokens per minute for agent test-agent; this call reserves \d+, its estimated input plus its max output\)/);
    const done = await held;
    // Settled against the 7 tokens the fake reported: the rest is back at once, and the same call now fits.
    assert.equal(done.usage!.total_tokens, 7);
    assert.ok(limits().tokens! > before - 100, `refunded: ${limits().tokens}`);
    await chat(c, { max_tokens: 4000 });
  });
});

describe('monitor mode records a hit and lets the call through', () => {
  let warden: Sidecar;
  let dataDir: string;
  before(async () => {
    dataDir = tempDataDir();
    warden = await startWarden(tempFile('mon.yaml', policyFor(fake.url, 'mode: monitor\nlimits: { requestsPerMinute: 1 }\n')), false, dataDir);
  });
  after(() => warden.shutdown());

  test('the second call goes (200), its record says limited/log, and no 429 is counted', async () => {
    const c = openai(warden);
    await chat(c);
    await chat(c);
    // Monitor mode's audit durability is relaxed: the records land just after the answers.
    await waitFor(() => auditRecords(dataDir).length === 2, 5_000, 'two records');
    const [, second] = auditRecords(dataDir);
    assert.equal(second.status, 200);
    assert.deepEqual(second.decisions.find((d: any) => d.stage === 'limits')?.detail?.action, 'log');
    assert.equal(await metric(warden, /^warden_violations_total\{kind="limit_exceeded",action="log"\}/), 1);
    assert.equal(await metric(warden, /^warden_rate_limited_total/), 0);
  });
});
