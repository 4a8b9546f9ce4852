// Transport retries against a scripted upstream, through the official OpenAI SDK (its own retries
// off, so every retry counted is Warden's): Retry-After is waited out, an outage stays within the
// retry budget, fallbacks are tried in order, and backoff and budget behave as specified.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { backoffMs, retryAfterMs } from '../../proxy/retry/backoff.ts';
import { RetryBudget } from '../../proxy/retry/budget.ts';
import { chatJson, errorJson, script } from '../helpers/scripted.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let spare: FakeUpstream;
let warden: Sidecar;

before(async () => {
  fake = await startFakeUpstream();
  spare = await startFakeUpstream();
  warden = await startWarden(tempFile('r.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: retry-agent, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "${fake.url}/v1" }
  spare: { baseUrl: "${spare.url}/v1", provider: openai }
retries:
  maxAttempts: 3
  backoff: { baseMs: 1, capMs: 5 }
  budget: { ratio: 0.2, minRetries: 3, windowMs: 60000 }
`));
});
after(async () => {
  await warden.shutdown();
  await fake.close();
  await spare.close();
});

function client(path = '/v1'): OpenAI {
  return new OpenAI({ apiKey: 'sk-agent', baseURL: `${warden.trafficUrl}${path}`, maxRetries: 0 });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').at(-1));
  return sum;
}

test('429 with Retry-After: 2 → Warden waits at least 2 s, then the retry succeeds', async (t) => {
  const arrivals: number[] = [];
  script(fake, (_req, n, res) => {
    arrivals.push(performance.now());
    if (n === 0) errorJson(res, 429, { 'retry-after': '2' });
    else chatJson(res, 'after the wait');
  });
  const { data, response } = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data.choices[0].message.content, 'after the wait');
  assert.equal(arrivals.length, 2);
  const waited = arrivals[1] - arrivals[0];
  assert.ok(waited >= 2_000, `retry came ${waited.toFixed(0)} ms after the 429`);
  t.diagnostic(`the retry reached the upstream ${waited.toFixed(0)} ms after the 429`);
  assert.match(response.headers.get('x-warden-actions') ?? '', /retried:1/);
});

test('a 503 whose body breaks off is a network failure, retried, never a 500', async () => {
  const seen = script(fake, (_req, n, res) => {
    if (n === 0) {
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"error":');
      setTimeout(() => res.destroy(), 10);
    } else chatJson(res, 'recovered');
  });
  const data = await client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'y' }] });
  assert.equal(data.choices[0].message.content, 'recovered');
  assert.equal(seen.length, 2);
});

test('a sustained outage: retries stay within the budget, counted by the upstream', async (t) => {
  const seen = script(fake, (_req, _n, res) => errorJson(res, 503));
  const exhaustedBefore = await metric('warden_retry_budget_exhausted_total');
  const calls = 60;
  for (let i = 0; i < calls; i++) {
    await assert.rejects(client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `call ${i}` }] }), (err: any) => err.status === 503);
  }
  // Without a budget: 3 attempts per call (180). The budget allows 20% of calls in the window, plus
  // the floor of 3, and the retries the earlier tests in this window already spent count too.
  const retries = seen.length - calls;
  assert.ok(retries <= Math.max(3, Math.floor(0.2 * (calls + 2))), `${seen.length} upstream requests for ${calls} calls (${retries} retries)`);
  assert.ok(retries >= 3, `some retries were made (${retries})`);
  t.diagnostic(`${calls} calls during the outage reached the upstream ${seen.length} times (${retries} retries; ${calls * 3} without a budget)`);
  assert.ok(await metric('warden_retry_budget_exhausted_total') > exhaustedBefore);
});

test('fallbacks: a spent upstream hands over to the next upstream and model, in order', async () => {
  const fallbackPolicy = tempFile('f.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: fallback-agent, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "${fake.url}/v1" }
  spare: { baseUrl: "${spare.url}/v1", provider: openai }
models:
  gpt-4o-mini: { pin: gpt-4o-mini-2024-07-18 }
retries:
  maxAttempts: 2
  backoff: { baseMs: 1, capMs: 2 }
  fallbacks: [ { model: gpt-4o-mini }, { upstream: spare } ]
`);
  const w = await startWarden(fallbackPolicy);
  try {
    const primary = script(fake, (_req, _n, res) => errorJson(res, 500));
    const second = script(spare, (_req, _n, res) => chatJson(res, 'from the spare'));
    const c = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    const { data, response } = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(data.choices[0].message.content, 'from the spare');
    // Two attempts at gpt-4o, two at the pinned fallback model, then the spare upstream.
    assert.deepEqual(primary.map((r) => JSON.parse(r.body.toString()).model), ['gpt-4o', 'gpt-4o', 'gpt-4o-mini-2024-07-18', 'gpt-4o-mini-2024-07-18']);
    assert.equal(second.length, 1);
    assert.equal(JSON.parse(second[0].body.toString()).model, 'gpt-4o');
    assert.match(response.headers.get('x-warden-actions') ?? '', /fallback:spare/);
  } finally {
    await w.shutdown();
    spare.setHandler(undefined);
  }
});

test('a 400 is not retried: the request itself is wrong', async () => {
  const seen = script(fake, (_req, _n, res) => errorJson(res, 400));
  await assert.rejects(client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), (err: any) => err.status === 400);
  assert.equal(seen.length, 1);
});

test('backoff: full jitter under an exponential ceiling; Retry-After read as seconds, a date, or ms', () => {
  assert.equal(backoffMs(1, 100, 10_000, () => 0.999), 99);
  assert.equal(backoffMs(4, 100, 10_000, () => 0.999), 799);
  assert.equal(backoffMs(20, 100, 10_000, () => 0.5), 5_000);
  assert.equal(backoffMs(3, 100, 10_000, () => 0), 0);
  assert.equal(retryAfterMs({ 'retry-after': '2' }), 2_000);
  assert.equal(retryAfterMs({ 'retry-after-ms': '150', 'retry-after': '1' }), 150);
  assert.equal(retryAfterMs({ 'retry-after': new Date(10_000).toUTCString() }, 7_000), 3_000);
  assert.equal(retryAfterMs({ 'retry-after': 'soon' }), undefined);
  assert.equal(retryAfterMs({}), undefined);
});

test('budget: retries at most ratio × calls per window (with a floor), and the window slides', () => {
  let now = 0;
  const b = new RetryBudget({ ratio: 0.2, minRetries: 2, windowMs: 10_000 }, () => now);
  for (let i = 0; i < 20; i++) b.recordCall();
  let granted = 0;
  for (let i = 0; i < 50; i++) if (b.tryRetry()) granted++;
  assert.equal(granted, 4);
  now = 10_500; // the whole window has slid past: only the floor is left
  granted = 0;
  for (let i = 0; i < 50; i++) if (b.tryRetry()) granted++;
  assert.equal(granted, 2);
});

test('fallbacks to another model on the same upstream are retries the budget pays for', async (t) => {
  const w = await startWarden(tempFile('fb.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: fallback-budget, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "${fake.url}/v1" }
retries:
  maxAttempts: 1
  backoff: { baseMs: 1, capMs: 2 }
  budget: { ratio: 0.2, minRetries: 3, windowMs: 60000 }
  fallbacks: [ { model: gpt-4o-mini }, { model: gpt-4.1 } ]
`));
  try {
    const seen = script(fake, (_req, _n, res) => errorJson(res, 503));
    const c = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    const calls = 20;
    for (let i = 0; i < calls; i++) await assert.rejects(c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `x${i}` }] }));
    // Without charging fallbacks: 3 requests per call (60). With: 20 calls plus at most 20% + 3 retries.
    assert.ok(seen.length <= calls + Math.max(3, Math.floor(0.2 * calls)), `${seen.length} upstream requests`);
    t.diagnostic(`${calls} calls with two same-upstream fallbacks during an outage: ${seen.length} upstream requests`);
  } finally {
    await w.shutdown();
  }
});

test('provider statuses as data: Anthropic\'s 529 (overloaded) is retried on the Anthropic route', async () => {
  const w = await startWarden(tempFile('a.yaml', policyFor(fake.url, 'retries: { backoff: { baseMs: 1, capMs: 2 } }\n')));
  try {
    const seen = script(fake, (_req, n, res) => {
      const body = n === 0
        ? JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })
        : JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'back' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } });
      res.writeHead(n === 0 ? 529 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const c = new Anthropic({ apiKey: 'sk', baseURL: `${w.trafficUrl}/anthropic`, maxRetries: 0 });
    const msg = await c.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(msg.content, [{ type: 'text', text: 'back' }]);
    assert.equal(seen.length, 2);
  } finally {
    await w.shutdown();
  }
});
