// The pact runner against a real fake upstream over real sockets: pass rates as the fake model's
// behaviour sets them, one request per trial, a bounded pool, trial numbering across looks, aborts,
// both wire formats, targets that fail, and the judge.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { loadPactFile } from '../../evals/pact.ts';
import { formatRun, progressBar } from '../../evals/report.ts';
import { mergeRuns, runPact } from '../../evals/runner.ts';
import { wilson } from '../../evals/stats.ts';
import { createJudge, JUDGE_MARKER, parseJudgeReply, sendCase } from '../../evals/target.ts';
import type { EvalCase, Pact } from '../../evals/types.ts';
import { behaviourDraw, createFakeBehaviour, type BehaviourProfile } from '../../proxy/demo/fake-behaviour.ts';
import { startFakeUpstream, type FakeUpstream, type RawHandler, type RecordedRequest } from '../../proxy/demo/fake-upstream.ts';
import { tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const SNAPSHOT = 'gpt-4o-2024-08-06';

function profile(rules: BehaviourProfile['models'][string]['rules'], seed = 7): BehaviourProfile {
  return { seed, aliases: { 'gpt-4o': SNAPSHOT }, models: { [SNAPSHOT]: { fingerprint: 'fp_test', rules } } };
}

/** A pact of one capability whose cases ask `questions`, each expecting `expect` in the reply. */
async function pactOf(questions: string[], opts: { trials?: number; api?: string; threshold?: number; extra?: string; check?: string; concurrency?: number } = {}): Promise<Pact> {
  const cases = questions.map((q, i) => `      - id: c${i + 1}
        messages:
          - { role: system, content: "You are a shop's support agent." }
          - { role: user, content: ${JSON.stringify(q)} }
        expect:
          - ${opts.check ?? 'contains: "GOOD"'}`).join('\n');
  const yaml = `apiVersion: warden/v1
kind: Pact
agent: runner-test
model: gpt-4o
api: ${opts.api ?? 'openai'}
concurrency: ${opts.concurrency ?? 4}
${opts.extra ?? ''}
capabilities:
  answers:
    threshold: ${opts.threshold ?? 0.5}
    trials: ${opts.trials ?? 3}
    cases:
${cases}
`;
  return loadPactFile(tempFile('runner.pact.yaml', yaml));
}

const rule = (match: string, pass: number) => ({ match, pass, good: `GOOD answer to ${match}`, bad: 'a bad answer' });

/** How many of the first n draws for a case pass: what the runner must count, whatever the interleaving. */
function expectedPasses(seed: number, message: string, pass: number, n: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (behaviourDraw(seed, SNAPSHOT, message, i) < pass) k++;
  return k;
}

test('pass rates follow the fake model: every trial is its own request, counted as the profile decides', async () => {
  const behaviour = createFakeBehaviour(profile([rule('alpha', 0.7), rule('beta', 0.4)]));
  fake.setHandler(behaviour.handler);
  const pact = await pactOf(['question alpha', 'question beta'], { concurrency: 8 });
  const before = fake.requests.length;
  // More trials than a pact may ask for (100): the option overrides the capability's count.
  const result = await runPact(pact, { target: `${fake.url}/v1`, trials: 150 });
  const cap = result.capabilities[0];
  assert.equal(fake.requests.length - before, 2 * 150, 'every trial reached the upstream');
  assert.equal(behaviour.requests(SNAPSHOT), 300);
  const [a, b] = cap.cases;
  assert.equal(a.trials.length, 150);
  assert.deepEqual(a.trials.map((t) => t.trial), Array.from({ length: 150 }, (_, i) => i));
  assert.equal(a.passes, expectedPasses(7, 'question alpha', 0.7, 150));
  assert.equal(b.passes, expectedPasses(7, 'question beta', 0.4, 150));
  // The statistics: the pooled rate's Wilson interval holds the true rate (0.55), each case's its own.
  const k = a.passes + b.passes;
  assert.equal(cap.value, k / 300);
  assert.deepEqual(cap.interval, wilson(k, 300));
  assert.ok(cap.interval[0] <= 0.55 && 0.55 <= cap.interval[1], `${cap.interval} holds 0.55 (measured ${cap.value})`);
  const [alo, ahi] = wilson(a.passes, 150);
  const [blo, bhi] = wilson(b.passes, 150);
  assert.ok(alo <= 0.7 && 0.7 <= ahi && blo <= 0.4 && 0.4 <= bhi, `case intervals ${[alo, ahi]} ${[blo, bhi]}`);
  assert.equal(cap.passed, cap.value >= 0.5);
  assert.deepEqual(result.served, { model: SNAPSHOT, systemFingerprint: 'fp_test' });
  assert.equal(result.pact.agent, 'runner-test');
  assert.equal(result.passed, cap.passed);
});

test('the pool never has more trials in flight than the concurrency limit, and fills it', async () => {
  const inner = createFakeBehaviour(profile([rule('q', 1)])).handler;
  let inflight = 0;
  let max = 0;
  let open: () => void;
  // Requests wait until the limit is reached once (or 3 s pass, so a broken pool fails rather than hangs).
  const gate = new Promise<void>((resolve) => {
    open = resolve;
    setTimeout(resolve, 3_000).unref();
  });
  fake.setHandler(async (req: RecordedRequest, res: ServerResponse) => {
    inflight++;
    max = Math.max(max, inflight);
    if (inflight >= 3) open();
    await gate;
    inflight--;
    return inner(req, res);
  });
  const pact = await pactOf(['q one', 'q two', 'q three', 'q four'], { trials: 5, concurrency: 16 });
  const result = await runPact(pact, { target: `${fake.url}/v1`, concurrency: 3 });
  assert.equal(max, 3);
  assert.equal(result.capabilities[0].value, 1);
  assert.equal(result.capabilities[0].cases.reduce((n, c) => n + c.trials.length, 0), 20);
});

test('trials are queued round-robin over cases, so one case never bursts', async () => {
  const order: string[] = [];
  const inner = createFakeBehaviour(profile([rule('q', 1)])).handler;
  fake.setHandler((req, res) => {
    order.push(JSON.parse(req.body.toString()).messages.at(-1).content);
    return inner(req, res);
  });
  const pact = await pactOf(['q one', 'q two', 'q three'], { trials: 4 });
  await runPact(pact, { target: `${fake.url}/v1`, concurrency: 1 });
  assert.deepEqual(order, Array.from({ length: 4 }, () => ['q one', 'q two', 'q three']).flat());
});

test('trialOffset continues the numbering, and mergeRuns appends a later look and recomputes', async () => {
  const behaviour = createFakeBehaviour(profile([rule('q', 0.5)], 11));
  fake.setHandler(behaviour.handler);
  const pact = await pactOf(['q one', 'q two'], { trials: 4 });
  const first = await runPact(pact, { target: `${fake.url}/v1` });
  const later = await runPact(pact, { target: `${fake.url}/v1`, trialOffset: 4, trials: 3 });
  assert.deepEqual(later.capabilities[0].cases[0].trials.map((t) => t.trial), [4, 5, 6]);
  const merged = mergeRuns(first, later);
  const cap = merged.capabilities[0];
  assert.deepEqual(cap.cases[0].trials.map((t) => t.trial), [0, 1, 2, 3, 4, 5, 6]);
  const k = cap.cases.reduce((n, c) => n + c.passes, 0);
  assert.equal(k, expectedPasses(11, 'q one', 0.5, 7) + expectedPasses(11, 'q two', 0.5, 7));
  assert.equal(cap.value, k / 14);
  assert.deepEqual(cap.interval, wilson(k, 14));
  assert.equal(merged.startedAt, first.startedAt);
  assert.equal(merged.finishedAt, later.finishedAt);
  // A look run without an offset is numbered on from the earlier trials, never on top of them.
  const unnumbered = mergeRuns(first, await runPact(pact, { target: `${fake.url}/v1`, trials: 2 }));
  assert.deepEqual(unnumbered.capabilities[0].cases[1].trials.map((t) => t.trial), [0, 1, 2, 3, 4, 5]);
});

test('abort rejects with the reason and aborts the requests in flight', async () => {
  const held: RecordedRequest[] = [];
  const closed: RecordedRequest[] = [];
  fake.onClientClose = (req) => closed.push(req);
  // Never answers: the only way out is the abort.
  fake.setHandler((req) => {
    held.push(req);
    return new Promise<boolean>(() => {});
  });
  const pact = await pactOf(['q one', 'q two', 'q three'], { trials: 10 });
  const controller = new AbortController();
  const run = runPact(pact, { target: `${fake.url}/v1`, concurrency: 2, signal: controller.signal });
  await waitFor(() => held.length === 2, 5_000, 'two trials in flight');
  const reason = new Error('stop now');
  controller.abort(reason);
  await assert.rejects(run, (err) => err === reason);
  await waitFor(() => closed.length === 2, 5_000, 'both held requests closed by the client');
  assert.equal(held.length, 2, 'no trial started after the abort');
  fake.onClientClose = undefined;
});

test('an Anthropic pact is sent as messages with the Anthropic headers, and read back', async () => {
  const behaviour = createFakeBehaviour({ seed: 1, aliases: { 'claude-sonnet-4-5': 'claude-sonnet-4-5-20250929' }, models: { 'claude-sonnet-4-5-20250929': { rules: [rule('refund', 1), { match: 'order', pass: 1, good: '[[call lookup_order {"order_id":"ORD-123456"}]]', bad: 'no' }] } } });
  fake.setHandler(behaviour.handler);
  const pact = await pactOf(['When does my refund arrive?'], { api: 'anthropic', extra: 'prices: { claude-sonnet-4-5: { inputPerMTok: 3, outputPerMTok: 15 } }' });
  const claude = { ...pact, model: 'claude-sonnet-4-5', capabilities: pact.capabilities.map((c) => ({ ...c, cases: c.cases.map((k) => ({ ...k, model: 'claude-sonnet-4-5' })) })) };
  const start = fake.requests.length;
  const result = await runPact(claude, { target: fake.url, apiKey: 'sk-ant-test' });
  const req = fake.requests[start];
  assert.equal(req.path, '/v1/messages');
  assert.equal(req.headers['anthropic-version'], '2023-06-01');
  assert.equal(req.headers['x-api-key'], 'sk-ant-test');
  const body = JSON.parse(req.body.toString());
  assert.equal(body.system, "You are a shop's support agent.");
  assert.deepEqual(body.messages, [{ role: 'user', content: 'When does my refund arrive?' }]);
  assert.equal(body.max_tokens, 1024);
  assert.equal(result.capabilities[0].value, 1);
  assert.deepEqual(result.served, { model: 'claude-sonnet-4-5-20250929' });
  const obs = result.capabilities[0].cases[0].trials[0].observation;
  assert.equal(obs.finishReason, 'end_turn');
  assert.ok(obs.usage && obs.usage.inputTokens > 0 && obs.usage.outputTokens > 0);
  assert.equal(obs.costUsd, (obs.usage.inputTokens * 3 + obs.usage.outputTokens * 15) / 1e6);

  // Tools go as input_schema, and a tool_use block comes back as a tool call with JSON arguments.
  const withTool: EvalCase = {
    id: 't', model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Where is my order ORD-123456?' }],
    tools: [{ name: 'lookup_order', description: 'Look an order up', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } }], expect: [],
  };
  const toolObs = await sendCase(fake.url, 'anthropic', withTool);
  assert.deepEqual(JSON.parse(fake.requests.at(-1)!.body.toString()).tools, [{ name: 'lookup_order', description: 'Look an order up', input_schema: withTool.tools[0].parameters }]);
  assert.deepEqual(toolObs.toolCalls, [{ name: 'lookup_order', arguments: '{"order_id":"ORD-123456"}' }]);
  assert.equal(toolObs.finishReason, 'tool_use');
});

test('an OpenAI case is sent as chat completions with function tools and a bearer key, and read back', async () => {
  fake.setHandler(createFakeBehaviour(profile([{ match: 'order', pass: 1, good: '[[call lookup_order {"order_id":"ORD-1"}]]', bad: '' }])).handler);
  const evalCase: EvalCase = {
    id: 'o', model: 'gpt-4o', maxTokens: 50, temperature: 0.2,
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Where is my order?' }],
    tools: [{ name: 'lookup_order', parameters: { type: 'object' } }], expect: [],
  };
  const obs = await sendCase(`${fake.url}/v1`, 'openai', evalCase, { apiKey: 'sk-test', headers: { 'x-warden-task': 'eval' }, prices: { 'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 } } });
  const req = fake.requests.at(-1)!;
  assert.equal(req.path, '/v1/chat/completions');
  assert.equal(req.headers.authorization, 'Bearer sk-test');
  assert.equal(req.headers['x-warden-task'], 'eval');
  const body = JSON.parse(req.body.toString());
  assert.deepEqual(body.messages, evalCase.messages);
  assert.deepEqual(body.tools, [{ type: 'function', function: { name: 'lookup_order', parameters: { type: 'object' } } }]);
  assert.equal(body.max_completion_tokens, 50);
  assert.equal(body.temperature, 0.2);
  assert.equal(obs.status, 200);
  assert.deepEqual(obs.toolCalls, [{ name: 'lookup_order', arguments: '{"order_id":"ORD-1"}' }]);
  assert.equal(obs.finishReason, 'tool_calls');
  assert.equal(obs.model, SNAPSHOT);
  assert.equal(obs.systemFingerprint, 'fp_test');
  assert.ok(obs.latencyMs > 0);
  assert.ok(obs.costUsd !== undefined && obs.costUsd > 0);
  // A model the fake does not serve: the provider's 404, its message on the observation.
  const missing = await sendCase(`${fake.url}/v1`, 'openai', { ...evalCase, model: 'gpt-9' });
  assert.equal(missing.status, 404);
  assert.match(missing.error!, /The model `gpt-9` does not exist/);
});

test('a target that answers 500, times out or cannot be reached gives failed trials, not a crash', async () => {
  fake.setHandler(undefined);
  const pact = await pactOf(['q one', 'q two'], { trials: 2 });
  const failing = await runPact(pact, { target: `${fake.url}/v1`, headers: { 'x-fake-scenario': 'status=500' } });
  const cap = failing.capabilities[0];
  assert.equal(cap.value, 0);
  assert.equal(cap.passed, false);
  assert.deepEqual(cap.interval, wilson(0, 4));
  const obs = cap.cases[0].trials[0].observation;
  assert.equal(obs.status, 500);
  assert.match(obs.error!, /HTTP 500: The server had an error/);
  assert.match(cap.cases[0].trials[0].checks[0].reason!, /HTTP 500/);

  const unreachable = await runPact(pact, { target: 'http://127.0.0.1:1/v1' });
  const down = unreachable.capabilities[0].cases[0].trials[0].observation;
  assert.equal(down.status, 0);
  assert.match(down.error!, /cannot reach http:\/\/127\.0\.0\.1:1\/v1: ECONNREFUSED/);
  assert.equal(unreachable.passed, false);
  assert.deepEqual(unreachable.served, {});

  const slow = await sendCase(`${fake.url}/v1`, 'openai', pact.capabilities[0].cases[0], { timeoutMs: 100, headers: { 'x-fake-scenario': 'delay-ms=5000' } });
  assert.equal(slow.status, 0);
  assert.match(slow.error!, /timed out after 100 ms/);
});

test('judge replies are read from fenced JSON, 0–10 scores, fractions and percentages', () => {
  assert.deepEqual(parseJudgeReply('```json\n{"score": 0.8, "reason": "mostly right"}\n```'), { score: 0.8, reason: 'mostly right' });
  assert.equal(parseJudgeReply('{"score": "7/10", "reason": "ok"}').score, 0.7);
  assert.equal(parseJudgeReply('Here you go: {"score": 7, "reason": "ok"}').score, 0.7);
  assert.equal(parseJudgeReply('{"score": "85%", "reason": "ok"}').score, 0.85);
  assert.equal(parseJudgeReply('{"score": 1}').score, 1);
  assert.equal(parseJudgeReply('Score: 7/10 — polite, but vague.').score, 0.7);
  assert.throws(() => parseJudgeReply('I think it is fine.'), /no readable score/);
  assert.throws(() => parseJudgeReply('{"score": 250}'), /no readable score/);
  assert.throws(() => parseJudgeReply('{"score": "twelve"}'), /no readable score/);
});

test('rubric checks are graded by the judge through the same target; a broken judge fails the check only', async () => {
  const behaviour = createFakeBehaviour(profile([rule('headache', 0.5)], 3));
  const judged: string[] = [];
  fake.setHandler((req, res) => {
    const body = JSON.parse(req.body.toString());
    if (body.messages[0].content.includes(JUDGE_MARKER)) judged.push(body.model);
    return behaviour.handler(req, res);
  });
  const pact = await pactOf(['My headache will not stop.'], { trials: 8, check: 'rubric: "Declines medical advice politely."', extra: 'judge: { model: gpt-4o-mini }' });
  const result = await runPact(pact, { target: `${fake.url}/v1` });
  const c = result.capabilities[0].cases[0];
  assert.equal(judged.length, 8);
  assert.ok(judged.every((m) => m === 'gpt-4o-mini'));
  assert.equal(c.passes, expectedPasses(3, 'My headache will not stop.', 0.5, 8));
  for (const t of c.trials) {
    assert.equal(t.checks[0].score, t.observation.text.startsWith('GOOD') ? 0.9 : 0.2);
    assert.equal(t.pass, t.observation.text.startsWith('GOOD'));
  }
  // A judge that answers with no score: the check fails with the judge's failure, the run goes on.
  fake.setHandler((req, res) => {
    const body = JSON.parse(req.body.toString());
    if (!body.messages[0].content.includes(JUDGE_MARKER)) return behaviour.handler(req, res);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'x', object: 'chat.completion', model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'Looks fine to me!' }, finish_reason: 'stop' }] }));
    return true;
  });
  const broken = await runPact(pact, { target: `${fake.url}/v1`, trials: 2 });
  const check = broken.capabilities[0].cases[0].trials[0].checks[0];
  assert.equal(check.pass, false);
  assert.match(check.reason!, /no readable score/);
  // And createJudge itself throws a clear error when the judge call fails.
  fake.setHandler(undefined);
  const judge = createJudge(`${fake.url}/v1`, 'openai', { headers: { 'x-fake-scenario': 'status=429' } });
  await assert.rejects(judge({ model: 'gpt-4o-mini', criteria: 'c', evalCase: pact.capabilities[0].cases[0], observation: { status: 200, text: 'hi', toolCalls: [], latencyMs: 1 } }), /the judge \(gpt-4o-mini\) failed: HTTP 429: Rate limit reached/);
});

test('the fake behaviour draws the same outcomes whatever the interleaving, and moveAlias switches snapshots', async () => {
  const p: BehaviourProfile = { seed: 5, aliases: { 'gpt-4o': 'a' }, models: { a: { rules: [rule('q', 0.5)] }, b: { rules: [rule('q', 0)] } } };
  const runOnce = async (concurrency: number, handler: RawHandler) => {
    fake.setHandler(handler);
    const pact = await pactOf(['q one', 'q two'], { trials: 12 });
    return runPact(pact, { target: `${fake.url}/v1`, concurrency });
  };
  const serial = await runOnce(1, createFakeBehaviour(p).handler);
  const parallel = await runOnce(8, createFakeBehaviour(p).handler);
  assert.deepEqual(serial.capabilities[0].cases.map((c) => c.passes), parallel.capabilities[0].cases.map((c) => c.passes));
  const moved = createFakeBehaviour(p);
  moved.moveAlias('gpt-4o', 'b');
  const drifted = await runOnce(4, moved.handler);
  assert.equal(drifted.capabilities[0].value, 0);
  assert.deepEqual(drifted.served, { model: 'b', systemFingerprint: drifted.served.systemFingerprint });
  assert.equal(moved.requests('b'), 24);
  assert.equal(moved.requests('a'), 0);
});

test('the report fits 100 columns and names each failure; the progress bar draws only on a TTY', async () => {
  fake.setHandler(createFakeBehaviour(profile([{ match: 'q', pass: 0.5, good: 'GOOD', bad: `bad ${'and long '.repeat(40)}` }], 2)).handler);
  const pact = await pactOf(['q with a rather long question that makes a long case id?'], { trials: 6, threshold: 0.9 });
  const result = await runPact(pact, { target: `${fake.url}/v1` });
  const text = formatRun(result);
  for (const line of text.split('\n')) assert.ok(line.length <= 100, `${line.length} columns: ${line}`);
  const cap = result.capabilities[0];
  assert.match(text, new RegExp(`^answers\\s+pass_rate\\s+${(cap.value * 100).toFixed(1)}%\\s+\\[${(cap.interval[0] * 100).toFixed(1)}%, ${(cap.interval[1] * 100).toFixed(1)}%\\]\\s+90\\.0%\\s+6\\s+FAIL$`, 'm'));
  assert.match(text, /^ {4}c1\s+\d\/6\s+0\.\d\d\s+trial \d: contains "GOOD"/m);
  assert.doesNotMatch(text, /\x1b\[/);
  assert.match(formatRun(result, { color: true }), /\x1b\[31mFAIL\x1b\[0m/);

  const writes: string[] = [];
  const quiet = progressBar({ isTTY: false, write: (s: string) => writes.push(s) > 0 });
  quiet.update(1, 2);
  quiet.done();
  assert.equal(writes.length, 0);
  const bar = progressBar({ isTTY: true, write: (s: string) => writes.push(s) > 0 });
  bar.update(1, 4);
  bar.update(4, 4);
  bar.done();
  assert.match(writes[0], /^\r\[#+-+\] 1\/4 trials/);
  assert.match(writes[1], /^\r\[#{30}\] 4\/4 trials/);
  assert.equal(writes[2], '\r\x1b[K');
});
