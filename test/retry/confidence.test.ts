// Confidence retries: logprob scores below the threshold are retried and the most confident answer
// wins; an agent that did not ask for logprobs never sees them (one that did keeps them); a
// self-reported score is read and stripped. Every score lands in the audit record.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { selfReport } from '../../proxy/retry/confidence.ts';
import { auditRecords } from '../helpers/audit.ts';
import { chatEvents, chatJson, script, sse } from '../helpers/scripted.ts';
import { policyFor, startWarden, tempDataDir, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;
let dataDir: string;
let client: OpenAI;
// ln(0.3) and ln(0.9): a hesitant answer, then a sure one.
const UNSURE = Math.log(0.3);
const SURE = Math.log(0.9);

before(async () => {
  fake = await startFakeUpstream();
  dataDir = tempDataDir();
  warden = await startWarden(tempFile('c.yaml', policyFor(fake.url, `retries:
  confidence: { method: logprobs, threshold: 0.6, maxRetries: 2 }
`)), false, dataDir);
  client = new OpenAI({ apiKey: 'sk', baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

async function metricCount(name: string): Promise<number> {
  const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

test('a low-confidence answer is retried and the more confident answer wins; logprobs are asked for and stripped', async () => {
  const seen = script(fake, (_req, n, res) => chatJson(res, n === 0 ? 'maybe Lisbon' : 'Paris', { logprob: n === 0 ? UNSURE : SURE }));
  const before = await metricCount('warden_confidence_count');
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Capital of France?' }] }).withResponse();
  assert.equal(data.choices[0].message.content, 'Paris');
  assert.equal(data.choices[0].logprobs ?? null, null, 'the agent did not ask for logprobs, so it gets none');
  assert.equal(seen.length, 2);
  assert.ok(seen.every((r) => JSON.parse(r.body.toString()).logprobs === true), 'Warden asked for logprobs');
  assert.match(response.headers.get('x-warden-actions') ?? '', /confidence-retried:1/);
  const rec = auditRecords(dataDir).at(-1)!;
  const chosen = rec.decisions.find((d: any) => d.stage === 'confidence' && d.decision === 'chosen');
  assert.deepEqual(chosen.detail.scores.map((s: number) => Math.round(s * 100) / 100), [0.3, 0.9]);
  assert.equal(chosen.detail.chosen, 2);
  assert.equal(await metricCount('warden_confidence_count'), before + 2);
  // Both answers were paid for: the record's usage counts the discarded one too.
  assert.equal(rec.usage.output_tokens, 3);
});

test('when every answer stays under the threshold, the best of them is kept after maxRetries', async () => {
  const lps = [Math.log(0.2), Math.log(0.5), Math.log(0.4)];
  const seen = script(fake, (_req, n, res) => chatJson(res, `answer ${n}`, { logprob: lps[n] }));
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hard one' }] }).withResponse();
  assert.equal(seen.length, 3);
  assert.equal(data.choices[0].message.content, 'answer 1');
  assert.match(response.headers.get('x-warden-actions') ?? '', /low-confidence/);
});

test('an agent that asked for logprobs keeps them', async () => {
  script(fake, (_req, _n, res) => chatJson(res, 'sure thing', { logprob: SURE }));
  const data = await client.chat.completions.create({ model: 'gpt-4o', logprobs: true, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(data.choices[0].logprobs?.content?.length, 2);
});

test('streams are scored whole, then the winner is streamed without logprobs', async () => {
  const seen = script(fake, (_req, n, res) => sse(res, chatEvents(n === 0 ? 'not sure' : 'quite sure now', { logprob: n === 0 ? UNSURE : SURE })));
  const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'y' }] });
  let text = '';
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(chunk.choices[0]?.logprobs ?? null, null);
  }
  assert.equal(text, 'quite sure now');
  assert.equal(seen.length, 2);
});

test('self-reported confidence: the instruction is added, the score read and stripped', async () => {
  const w = await startWarden(tempFile('self.yaml', policyFor(fake.url, `retries:
  confidence: { method: self, threshold: 0.7, maxRetries: 1 }
`)));
  try {
    const seen = script(fake, (_req, n, res) => chatJson(res, n === 0 ? 'Probably 42.\n[confidence: 0.4]' : 'It is 42.\n\n[confidence: 0.95]'));
    const c = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    const data = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'answer?' }] });
    assert.equal(data.choices[0].message.content, 'It is 42.');
    const sent = JSON.parse(seen[0].body.toString());
    assert.match(sent.messages.at(-1).content, /\[confidence: X\]/);
  } finally {
    await w.shutdown();
  }
});

test('self-report parsing: brackets optional, percentages, out-of-range ignored', () => {
  assert.deepEqual(selfReport('Yes.\n[confidence: 0.8]'), { score: 0.8, at: 4 });
  assert.deepEqual(selfReport('Yes. Confidence: 85%'), { score: 0.85, at: 4 });
  assert.equal(selfReport('Yes.\n[confidence: 7]').score, undefined);
  assert.deepEqual(selfReport('no marker'), { at: 9 });
});

// The marker was once found by a pattern that backtracked for seconds on a few thousand spaces; at
// 20,000 that would run past the test timeout.
test('self-report parsing stays linear on long runs of whitespace', () => {
  assert.deepEqual(selfReport(`answer${' '.repeat(20_000)}`), { at: 20_006 });
  assert.equal(selfReport(`answer${' '.repeat(20_000)}[confidence: 0.5]`).score, 0.5);
});
