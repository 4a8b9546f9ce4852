// Assertions: every kind passes on a reply that meets it and fails, with a reason, on one that does
// not; a failed call fails every check; a broken judge fails its rubric check, never the run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLabel, parseReplyJson, runChecks } from '../../evals/assertions.ts';
import type { Check, EvalCase, Judge, Observation } from '../../evals/types.ts';

const CASE: EvalCase = { id: 'c#1', model: 'case-model', messages: [{ role: 'user', content: 'hi' }], tools: [], expect: [] };

function obs(over: Partial<Observation> = {}): Observation {
  return { status: 200, text: '', toolCalls: [], latencyMs: 100, ...over };
}

async function one(check: Check, o: Partial<Observation>, judge?: Judge, defaultJudgeModel?: string) {
  const r = await runChecks([check], obs(o), { evalCase: CASE, judge, defaultJudgeModel });
  assert.equal(r.checks.length, 1);
  return { ...r.checks[0], trialPass: r.pass, score: r.score, outcomeScore: r.checks[0].score };
}

async function passes(check: Check, o: Partial<Observation>) {
  const r = await one(check, o);
  assert.equal(r.pass, true, `${r.check} should pass: ${r.reason}`);
  assert.equal(r.reason, undefined);
}

async function fails(check: Check, o: Partial<Observation>, reason: RegExp) {
  const r = await one(check, o);
  assert.equal(r.pass, false, `${r.check} should fail`);
  assert.equal(r.trialPass, false);
  assert.match(r.reason ?? '', reason);
}

test('contains and not_contains, case-sensitive by default, case-insensitive on request', async () => {
  await passes({ kind: 'contains', text: '30 days', ignoreCase: false }, { text: 'You have 30 days to return it.' });
  await fails({ kind: 'contains', text: '30 Days', ignoreCase: false }, { text: 'You have 30 days.' }, /"30 Days" is not in the reply/);
  await passes({ kind: 'contains', text: '30 Days', ignoreCase: true }, { text: 'You have 30 days.' });
  await passes({ kind: 'not_contains', text: 'I cannot', ignoreCase: false }, { text: 'i cannot' });
  await fails({ kind: 'not_contains', text: 'I cannot', ignoreCase: true }, { text: 'Sorry, i CANNOT do that.' }, /the reply contains "I cannot"/);
});

test('regex honours its flags', async () => {
  await passes({ kind: 'regex', source: '\\bORD-\\d{6}\\b', flags: '' }, { text: 'Your order ORD-123456 shipped.' });
  await fails({ kind: 'regex', source: '^order', flags: '' }, { text: 'Order shipped' }, /does not match \/\^order\//);
  await passes({ kind: 'regex', source: '^order', flags: 'i' }, { text: 'Order shipped' });
  await fails({ kind: 'regex', source: '^shipped$', flags: '' }, { text: 'Order\nshipped' }, /does not match/);
  await passes({ kind: 'regex', source: '^shipped$', flags: 'm' }, { text: 'Order\nshipped' });
  // A g flag from elsewhere must not make the second trial start where the first stopped.
  const sticky: Check = { kind: 'regex', source: 'a', flags: 'g' };
  for (let i = 0; i < 3; i++) await passes(sticky, { text: 'a' });
});

test('equals ignores surrounding whitespace only', async () => {
  await passes({ kind: 'equals', text: 'Yes' }, { text: '  Yes\n' });
  await fails({ kind: 'equals', text: 'Yes' }, { text: 'Yes.' }, /the reply is "Yes\."/);
  await fails({ kind: 'equals', text: 'Yes' }, { text: 'yes' }, /the reply is "yes"/);
});

test('json_schema parses the reply, or its ```json fenced block, and validates it', async () => {
  const check: Check = { kind: 'json_schema', schema: { type: 'object', required: ['status'], properties: { status: { enum: ['shipped'] } } } };
  await passes(check, { text: '{"status":"shipped"}' });
  await passes(check, { text: 'Here you go:\n```json\n{ "status": "shipped" }\n```\nAnything else?' });
  await passes(check, { text: '```\n{"status":"shipped"}\n```' });
  await fails(check, { text: '{"status":"lost"}' }, /does not fit the schema: \/status must be equal to one of the allowed values/);
  await fails(check, { text: '{"state":"shipped"}' }, /missing required property "status"/);
  await fails(check, { text: 'It shipped yesterday.' }, /the reply is not JSON/);
  await fails(check, { text: '```json\n{ status: shipped }\n```' }, /the reply is not JSON/);
  assert.deepEqual(parseReplyJson(' [1, 2] '), { value: [1, 2] });
  assert.equal(parseReplyJson(''), undefined);
});

test('tool_call needs a call by that name whose parsed arguments fit the schema', async () => {
  const args = { type: 'object', required: ['order_id'], properties: { order_id: { type: 'string', pattern: '^ORD-[0-9]{6}$' } } };
  const check: Check = { kind: 'tool_call', name: 'lookup_order', args };
  await passes(check, { toolCalls: [{ name: 'lookup_order', arguments: '{"order_id":"ORD-123456"}' }] });
  // Any matching call will do: a bad first attempt followed by a good one passes.
  await passes(check, { toolCalls: [{ name: 'lookup_order', arguments: '{"order_id":"123"}' }, { name: 'lookup_order', arguments: '{"order_id":"ORD-000001"}' }] });
  await fails(check, { toolCalls: [{ name: 'lookup_order', arguments: '{"order_id":"123456"}' }] }, /lookup_order was called, but arguments \/order_id must match pattern/);
  await fails(check, { toolCalls: [{ name: 'lookup_order', arguments: '{"order_id":' }] }, /arguments are not JSON/);
  await fails(check, { toolCalls: [{ name: 'search_customers', arguments: '{}' }] }, /no call to lookup_order \(calls: search_customers\)/);
  await fails(check, { text: 'Let me check.' }, /no call to lookup_order \(no tool calls\)/);
  // Without args, the name is enough; OpenAI's "" arguments count as {}.
  await passes({ kind: 'tool_call', name: 'lookup_order' }, { toolCalls: [{ name: 'lookup_order', arguments: '' }] });
  await passes({ kind: 'tool_call', name: 'ping', args: { type: 'object', maxProperties: 0 } }, { toolCalls: [{ name: 'ping', arguments: '' }] });
});

test('refusal: true passes on a refusal, false passes on an answer', async () => {
  await passes({ kind: 'refusal', expected: true }, { text: "I'm sorry, but I can't help with refunds of that size." });
  await fails({ kind: 'refusal', expected: true }, { text: 'Sure! Refund issued.' }, /the reply is not a refusal/);
  await passes({ kind: 'refusal', expected: false }, { text: 'You can return it within 30 days.' });
  await fails({ kind: 'refusal', expected: false }, { text: 'I cannot assist with that request.' }, /the reply is a refusal/);
});

test('length bounds count characters', async () => {
  await passes({ kind: 'length', min: 2, max: 5 }, { text: 'abcde' });
  await fails({ kind: 'length', max: 4 }, { text: 'abcde' }, /5 characters, more than 4/);
  await fails({ kind: 'length', min: 6 }, { text: 'abcde' }, /5 characters, fewer than 6/);
});

test('latency and cost bounds; an unknown cost fails with a reason', async () => {
  await passes({ kind: 'latency', maxMs: 100 }, { latencyMs: 100 });
  await fails({ kind: 'latency', maxMs: 100 }, { latencyMs: 250 }, /took 250 ms, more than 100 ms/);
  await passes({ kind: 'cost', maxUsd: 0.01 }, { costUsd: 0.004 });
  await fails({ kind: 'cost', maxUsd: 0.01 }, { costUsd: 0.02 }, /cost \$0\.0200, more than \$0\.01/);
  await fails({ kind: 'cost', maxUsd: 0.01 }, {}, /the cost is unknown/);
});

test('rubric asks the judge with the right model and passes at its score', async () => {
  const asked: string[] = [];
  const judge: Judge = async ({ model, criteria, evalCase, observation }) => {
    asked.push(`${model}|${criteria}|${evalCase.id}|${observation.text}`);
    return { score: 0.7, reason: 'mostly kind' };
  };
  const r = await one({ kind: 'rubric', criteria: 'Kind.', passScore: 0.5 }, { text: 'Hello!' }, judge);
  assert.deepEqual([r.pass, r.outcomeScore, r.reason, r.score, r.check], [true, 0.7, 'mostly kind', 0.7, 'rubric (≥0.5)']);
  const strict = await one({ kind: 'rubric', criteria: 'Kind.', passScore: 0.8 }, { text: 'Hello!' }, judge, 'pact-judge');
  assert.equal(strict.pass, false);
  await one({ kind: 'rubric', criteria: 'Kind.', model: 'own-judge', passScore: 0.5 }, { text: 'x' }, judge, 'pact-judge');
  assert.deepEqual(asked.map((a) => a.split('|')[0]), ['case-model', 'pact-judge', 'own-judge']);
  assert.equal(asked[0], 'case-model|Kind.|c#1|Hello!');
});

test('a judge that throws, or answers nonsense, fails its check with the reason and never the run', async () => {
  const broken: Judge = async () => {
    throw new Error('judge upstream 503');
  };
  const checks: Check[] = [{ kind: 'rubric', criteria: 'Kind.', passScore: 0.5 }, { kind: 'contains', text: 'hi', ignoreCase: false }];
  const r = await runChecks(checks, obs({ text: 'hi' }), { evalCase: CASE, judge: broken });
  assert.equal(r.pass, false);
  assert.equal(r.score, 0);
  assert.equal(r.checks[0].pass, false);
  assert.match(r.checks[0].reason!, /the judge \(case-model\) failed: judge upstream 503/);
  assert.equal(r.checks[1].pass, true);
  const nonsense = await one({ kind: 'rubric', criteria: 'Kind.', passScore: 0.5 }, { text: 'x' }, async () => ({ score: 7, reason: '' }));
  assert.match(nonsense.reason!, /invalid score: 7/);
  const none = await one({ kind: 'rubric', criteria: 'Kind.', passScore: 0.5 }, { text: 'x' });
  assert.match(none.reason!, /no judge is configured/);
});

test('a failed call fails every check with its error, and no judge is asked', async () => {
  let judged = 0;
  const judge: Judge = async () => {
    judged++;
    return { score: 1, reason: '' };
  };
  const checks: Check[] = [{ kind: 'not_contains', text: 'x', ignoreCase: false }, { kind: 'refusal', expected: false }, { kind: 'rubric', criteria: 'Kind.', passScore: 0 }];
  const http = await runChecks(checks, obs({ status: 503, text: '' }), { evalCase: CASE, judge });
  assert.equal(http.pass, false);
  assert.equal(http.score, 0);
  assert.deepEqual(http.checks.map((c) => [c.pass, c.reason]), checks.map(() => [false, 'the target answered HTTP 503']));
  const net = await runChecks(checks, obs({ status: 200, error: 'connect ECONNREFUSED 127.0.0.1:9' }), { evalCase: CASE, judge });
  assert.ok(net.checks.every((c) => !c.pass && c.reason === 'connect ECONNREFUSED 127.0.0.1:9'));
  assert.equal(judged, 0);
});

test('the trial score is the mean rubric score when there are rubrics, else the share of checks passed', async () => {
  const half: Check[] = [{ kind: 'contains', text: 'a', ignoreCase: false }, { kind: 'contains', text: 'b', ignoreCase: false }];
  assert.deepEqual(await runChecks(half, obs({ text: 'a' }), { evalCase: CASE }).then((r) => [r.pass, r.score]), [false, 0.5]);
  assert.deepEqual(await runChecks(half, obs({ text: 'ab' }), { evalCase: CASE }).then((r) => [r.pass, r.score]), [true, 1]);
  const scores = [0.4, 0.8];
  const judge: Judge = async ({ criteria }) => ({ score: scores[Number(criteria)], reason: '' });
  const withRubrics: Check[] = [...half, { kind: 'rubric', criteria: '0', passScore: 0.3 }, { kind: 'rubric', criteria: '1', passScore: 0.3 }];
  const r = await runChecks(withRubrics, obs({ text: 'a' }), { evalCase: CASE, judge });
  assert.ok(Math.abs(r.score - 0.6) < 1e-9, String(r.score));
  assert.equal(r.pass, false);
});

test('labels are short and say what was checked', () => {
  const labels = ([
    { kind: 'contains', text: '30 days', ignoreCase: false },
    { kind: 'not_contains', text: 'I cannot', ignoreCase: true },
    { kind: 'regex', source: '^ok$', flags: 'i' },
    { kind: 'equals', text: 'x'.repeat(100) },
    { kind: 'json_schema', schema: {} },
    { kind: 'tool_call', name: 'lookup_order' },
    { kind: 'refusal', expected: false },
    { kind: 'length', max: 10 },
    { kind: 'latency', maxMs: 2000 },
    { kind: 'cost', maxUsd: 0.01 },
    { kind: 'rubric', criteria: 'x', passScore: 0.5 },
  ] as Check[]).map(checkLabel);
  assert.deepEqual(labels, [
    'contains "30 days"', 'not_contains "I cannot" (any case)', 'regex /^ok$/i', `equals "${'x'.repeat(39)}…"`, 'json_schema',
    'tool_call lookup_order', 'no refusal', 'length ≤10', 'latency ≤2000 ms', 'cost ≤$0.01', 'rubric (≥0.5)',
  ]);
});

test('a json_schema check compiles its schema once, however many trials use it', async () => {
  const schema = { type: 'object' };
  let reads = 0;
  // Counting reads of the schema's keys: a fresh compile walks them, a cached validator does not.
  const counted = new Proxy(schema, { get: (t, k, r) => ((reads += typeof k === 'string' ? 1 : 0), Reflect.get(t, k, r)) });
  const check: Check = { kind: 'json_schema', schema: counted };
  await passes(check, { text: '{}' });
  const afterFirst = reads;
  for (let i = 0; i < 5; i++) await passes(check, { text: '{}' });
  assert.ok(afterFirst > 0);
  assert.equal(reads, afterFirst);
});
