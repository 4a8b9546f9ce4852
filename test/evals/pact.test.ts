// The pact loader: YAML with positions, ${VAR} interpolation, every problem at once with line and
// column (schema and semantic alike), defaults filled in once, a frozen result, and `warden policy
// check` linting pacts beside policies.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPactFile, checkPactText, isPactDocument, loadPactFile, pactPromptSha256, pactSchema } from '../../evals/pact.ts';
import { PolicyError } from '../../proxy/errors.ts';
import { ROOT, tempFile, WARDEN_BIN } from '../helpers/warden.ts';

const EXAMPLE = join(ROOT, 'evals/examples/support-agent.pact.yaml');

const FULL = `apiVersion: warden/v1
kind: Pact
agent: support-bot
model: gpt-4o
prices: { gpt-4o: { inputPerMTok: 2.5, outputPerMTok: 10 } }
capabilities:
  return_policy:
    threshold: 0.9
    cases:
      - messages: [{ role: user, content: "How long do I have to return an item?" }]
        expect: [{ contains: "30 days" }, { not_contains: { text: "I cannot", ignoreCase: true } }, { cost_usd: { max: 0.01 } }]
      - id: custom
        model: gpt-4o-mini
        messages: [{ role: system, content: "Be brief." }, { role: user, content: "Order ORD-123456?" }]
        tools: [{ name: lookup_order, parameters: { type: object } }]
        maxTokens: 100
        temperature: 0
        expect:
          - regex: { pattern: "^ok", flags: i }
          - regex: "x+"
          - equals: ok
          - json_schema: { type: object }
          - tool_call: { name: lookup_order, args: { type: object, required: [order_id] } }
          - tool_call: { name: lookup_order }
          - refusal: false
          - length: { max: 10 }
          - latency_ms: { max: 2000 }
          - rubric: Polite.
          - rubric: { criteria: Specific., model: judge-x, pass: 0.8 }
  tone:
    metric: mean_score
    threshold: 0.7
    trials: 5
    tolerance: 0.1
    cases:
      - messages: [{ role: user, content: "hi" }]
        expect: [{ rubric: Warm. }]
`;

function check(text: string, env: NodeJS.ProcessEnv = {}) {
  return checkPactText('p.yaml', text, env);
}

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [WARDEN_BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a full pact loads with every default applied and assertions normalized', () => {
  const { pact, problems } = check(FULL);
  assert.deepEqual(problems, []);
  assert.equal(pact!.agent, 'support-bot');
  assert.equal(pact!.api, 'openai');
  assert.equal(pact!.tolerance, 0.05);
  assert.equal(pact!.alpha, 0.05);
  assert.equal(pact!.looks, 3);
  assert.equal(pact!.concurrency, 4);
  assert.equal(pact!.judgeModel, undefined);
  assert.match(pact!.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(pact!.prices, { 'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 } });
  const [ret, tone] = pact!.capabilities;
  assert.deepEqual([ret.name, ret.metric, ret.threshold, ret.trials, ret.tolerance], ['return_policy', 'pass_rate', 0.9, 3, 0.05]);
  assert.deepEqual([tone.name, tone.metric, tone.trials, tone.tolerance], ['tone', 'mean_score', 5, 0.1]);
  assert.equal(tone.cases[0].id, 'tone#1');
  const [first, custom] = ret.cases;
  assert.equal(first.id, 'return_policy#1');
  assert.equal(first.model, 'gpt-4o');
  assert.deepEqual(first.tools, []);
  assert.equal(first.maxTokens, undefined);
  assert.deepEqual(first.expect, [
    { kind: 'contains', text: '30 days', ignoreCase: false },
    { kind: 'not_contains', text: 'I cannot', ignoreCase: true },
    { kind: 'cost', maxUsd: 0.01 },
  ]);
  assert.equal(custom.id, 'custom');
  assert.equal(custom.model, 'gpt-4o-mini');
  assert.equal(custom.maxTokens, 100);
  assert.equal(custom.temperature, 0);
  assert.deepEqual(custom.tools, [{ name: 'lookup_order', parameters: { type: 'object' } }]);
  assert.deepEqual(custom.expect, [
    { kind: 'regex', source: '^ok', flags: 'i' },
    { kind: 'regex', source: 'x+', flags: '' },
    { kind: 'equals', text: 'ok' },
    { kind: 'json_schema', schema: { type: 'object' } },
    { kind: 'tool_call', name: 'lookup_order', args: { type: 'object', required: ['order_id'] } },
    { kind: 'tool_call', name: 'lookup_order' },
    { kind: 'refusal', expected: false },
    { kind: 'length', max: 10 },
    { kind: 'latency', maxMs: 2000 },
    { kind: 'rubric', criteria: 'Polite.', passScore: 0.5 },
    { kind: 'rubric', criteria: 'Specific.', model: 'judge-x', passScore: 0.8 },
  ]);
});

test('top-level settings override the defaults', () => {
  const { pact, problems } = check(FULL.replace('model: gpt-4o\n', 'model: gpt-4o\napi: anthropic\ntolerance: 0.02\nalpha: 0.01\nlooks: 5\nconcurrency: 16\njudge: { model: gpt-4o-mini }\n'));
  assert.deepEqual(problems, []);
  assert.deepEqual([pact!.api, pact!.tolerance, pact!.alpha, pact!.looks, pact!.concurrency, pact!.judgeModel], ['anthropic', 0.02, 0.01, 5, 16, 'gpt-4o-mini']);
  // A capability without its own tolerance takes the pact's.
  assert.equal(pact!.capabilities[0].tolerance, 0.02);
  assert.equal(pact!.capabilities[1].tolerance, 0.1);
});

test('the pact is deeply frozen', () => {
  const { pact } = check(FULL);
  assert.ok(Object.isFrozen(pact) && Object.isFrozen(pact!.capabilities[0].cases[1].expect[4]));
  assert.throws(() => {
    (pact!.capabilities[0] as { threshold: number }).threshold = 0;
  }, TypeError);
  assert.throws(() => {
    (pact!.capabilities[0].cases[0].messages as unknown[]).push({ role: 'user', content: 'x' });
  }, TypeError);
});

test('a broken pact reports every problem at once, in file order, with line and column', () => {
  const { pact, problems } = check(`apiVersion: warden/v1
kind: Pact
agent: bot
model: gpt-4o
tolerence: 0.1
looks: "three"
capabilities:
  answers:
    threshold: 1.5
    cases:
      - id: a
        messages: [{ role: user, content: hi }]
        expect:
          - regex: "([a-z"
          - cost_usd: { max: 0.01 }
          - tool_call: { name: lookup_order }
          - contians: x
          - json_schema: { type: 12 }
      - id: a
        messages: [{ role: bot, content: 3 }]
        expect: [{ contains: x, ignoreCase: true }]
`);
  assert.equal(pact, undefined);
  assert.equal(problems.length, 13, problems.join('\n'));
  const expected: [string, RegExp][] = [
    ['p.yaml:5:1:', /unknown top-level key "tolerence" \(did you mean "tolerance"\?\)/],
    ['p.yaml:6:8:', /looks must be integer \(got string "three"\)/],
    ['p.yaml:9:16:', /capabilities\.answers\.threshold must be <= 1/],
    ['p.yaml:14:20:', /expect\[0\]\.regex is not a valid regular expression/],
    ['p.yaml:15:13:', /expect\[1\]\.cost_usd: the case's model "gpt-4o" has no price/],
    ['p.yaml:16:32:', /expect\[2\]\.tool_call expects a call to "lookup_order", which this case does not offer/],
    ['p.yaml:17:13:', /unknown key "contians" in capabilities\.answers\.cases\[0\]\.expect\[3\] \(did you mean "contains"\?\)/],
    ['p.yaml:18:26:', /expect\[4\]\.json_schema is not a valid JSON Schema/],
    ['p.yaml:19:13:', /duplicate case id "a" \(also capabilities\.answers\.cases\[0\]\)/],
    ['p.yaml:20:28:', /messages\[0\]\.role must be one of system, user, assistant \(got "bot"\)/],
    ['p.yaml:20:42:', /messages\[0\]\.content must be string \(got number 3\)/],
  ];
  for (const [i, [at, message]] of expected.entries()) {
    assert.ok(problems[i].startsWith(`${at} `), `problem ${i}: ${problems[i]}`);
    assert.match(problems[i], message);
  }
  // Options written beside the assertion instead of inside it: the message shows the right form.
  assert.match(problems.join('\n'), /^p\.yaml:21:\d+: .*expect\[0\]: an assertion is a map with exactly one key.*got keys contains, ignoreCase/m);
  assert.match(problems[12], /^p\.yaml:21:33: unknown key "ignoreCase" in capabilities\.answers\.cases\[1\]\.expect\[0\]/);
});

test('missing required keys and empty lists are problems at their parent', () => {
  const { problems } = check('apiVersion: warden/v1\nkind: Pact\nagent: bot\ncapabilities:\n  x:\n    cases: []\n');
  assert.deepEqual(problems, [
    'p.yaml:1:1: (top level): missing required key "model"',
    'p.yaml:6:5: capabilities.x: missing required key "threshold"',
    'p.yaml:6:12: capabilities.x.cases must NOT have fewer than 1 items',
  ]);
});

test('a default id that collides with an explicit one is a duplicate too', () => {
  const text = FULL.replace('      - id: custom\n', '      - id: "return_policy#1"\n');
  assert.match(check(text).problems.join('\n'), /^p\.yaml:12:\d+: duplicate case id "return_policy#1"/m);
});

test('${VAR} and ${VAR:-default} are resolved; an unset variable is a problem at its line', () => {
  const text = FULL.replace('model: gpt-4o\n', 'model: "${PACT_MODEL:-gpt-4o}"\n').replace('content: "hi"', () => 'content: "hi from ${TEAM}, $${literal}"');
  const ok = check(text, { TEAM: 'support' });
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.pact!.model, 'gpt-4o');
  assert.equal(ok.pact!.capabilities[1].cases[0].messages[0].content, 'hi from support, ${literal}');
  // The interpolated model is the one checked: gpt-4.1 has no price for the case's cost_usd check.
  assert.match(check(text, { TEAM: 'x', PACT_MODEL: 'gpt-4.1' }).problems.join('\n'), /^p\.yaml:11:\d+: .*cost_usd: the case's model "gpt-4.1" has no price/m);
  const priced = text.replace('prices: {', 'prices: { gpt-4.1: { inputPerMTok: 2, outputPerMTok: 8 },');
  assert.equal(check(priced, { TEAM: 'x', PACT_MODEL: 'gpt-4.1' }).pact!.capabilities[0].cases[0].model, 'gpt-4.1');
  const bad = check(text, {});
  assert.equal(bad.pact, undefined);
  assert.match(bad.problems.join('\n'), /^p\.yaml:36:\d+: environment variable TEAM is not set/m);
});

test('syntax errors, empty files and non-UTF-8 are problems, not crashes', () => {
  assert.match(check('a: [1\n').problems[0], /^p\.yaml:\d+:\d+: /);
  assert.deepEqual(check('').problems, ['p.yaml:1:1: pact file is empty']);
  assert.deepEqual(checkPactText('p.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xff])).problems, ['p.yaml:1:1: pact file is not valid UTF-8']);
});

test('the prompt hash follows messages, tools and models, not assertions, thresholds or case order', () => {
  const base = pactPromptSha256(check(FULL).pact!);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(pactPromptSha256(check(FULL.replace('threshold: 0.9', 'threshold: 0.5').replace('contains: "30 days"', 'contains: "thirty days"')).pact!), base);
  assert.notEqual(pactPromptSha256(check(FULL.replace('Be brief.', 'Be very brief.')).pact!), base);
  assert.notEqual(pactPromptSha256(check(FULL.replace('parameters: { type: object }', 'parameters: { type: object, required: [x] }')).pact!), base);
  assert.notEqual(pactPromptSha256(check(FULL.replace('model: gpt-4o-mini', 'model: gpt-4.1')).pact!), base);
});

test('isPactDocument sniffs kind: Pact at the top level only', () => {
  assert.equal(isPactDocument(FULL), true);
  assert.equal(isPactDocument('apiVersion: warden/v1\nkind: "Pact"   # a pact\n'), true);
  assert.equal(isPactDocument('apiVersion: warden/v1\nkind: Policy\n'), false);
  assert.equal(isPactDocument('x:\n  kind: Pact\n'), false);
});

test('every property in the schema has a description and every object forbids unknown keys', () => {
  const missing: string[] = [];
  const walk = (node: unknown, at: string) => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, any>;
    if (n.properties) {
      if (n.additionalProperties !== false) missing.push(`${at}: additionalProperties`);
      for (const [k, v] of Object.entries<Record<string, unknown>>(n.properties)) {
        if (typeof v.description !== 'string') missing.push(`${at}.${k}: description`);
        walk(v, `${at}.${k}`);
      }
    }
    for (const key of ['$defs', 'additionalProperties', 'items']) {
      if (n[key] && typeof n[key] === 'object') {
        if (key === '$defs') for (const [k, v] of Object.entries(n[key])) walk(v, `$defs.${k}`);
        else walk(n[key], `${at}[${key}]`);
      }
    }
  };
  walk(pactSchema, '');
  assert.deepEqual(missing, []);
});

test('the example pact and every file in evals/examples pass', async () => {
  const dir = join(ROOT, 'evals/examples');
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  assert.ok(files.includes('support-agent.pact.yaml'));
  for (const f of files) {
    const { problems } = await checkPactFile(join(dir, f), {});
    assert.deepEqual(problems, [], f);
  }
  const pact = await loadPactFile(EXAMPLE, {});
  assert.equal(pact.agent, 'support-agent');
  assert.ok(pact.capabilities.length >= 3);
  const kinds = new Set(pact.capabilities.flatMap((c) => c.cases.flatMap((k) => k.expect.map((x) => x.kind))));
  for (const kind of ['contains', 'not_contains', 'regex', 'json_schema', 'tool_call', 'refusal', 'rubric', 'cost']) assert.ok(kinds.has(kind as never), kind);
});

test('loadPactFile throws PolicyError with every problem; an unreadable file is a problem', async () => {
  const bad = tempFile('bad.pact.yaml', 'apiVersion: warden/v1\nkind: Pact\nagent: bot\n');
  await assert.rejects(loadPactFile(bad, {}), (err: unknown) => err instanceof PolicyError && err.problems.length === 2 && err.problems.every((p) => p.startsWith(`${bad}:`)));
  assert.match((await checkPactFile('/nonexistent/p.yaml')).problems[0], /^\/nonexistent\/p\.yaml:1:1: cannot read the pact file \(ENOENT\)/);
});

test('warden policy check lints pacts: exit 0 with a summary, 1 with file:line:col for every problem', () => {
  const ok = warden('policy', 'check', 'evals/examples/support-agent.pact.yaml', 'policies/examples/minimal.yaml');
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^evals\/examples\/support-agent\.pact\.yaml: ok \(pact for agent support-agent, 4 capabilities, \d+ cases, sha256 [0-9a-f]{12}\)$/m);
  assert.match(ok.out, /^policies\/examples\/minimal\.yaml: ok \(agent /m);
  const bad = tempFile('bad.pact.yaml', 'apiVersion: warden/v1\nkind: Pact\nagent: bot\nmodel: m\ncapabilities:\n  x:\n    threshold: 2\n    cases:\n      - messages: [{ role: user, content: hi }]\n        expect: [{ regex: "(" }, { cost_usd: { max: 1 } }]\n');
  const r = warden('policy', 'check', bad);
  assert.equal(r.code, 1);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 3, r.err);
  for (const line of lines) assert.match(line, new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
  assert.match(r.err, /:7:16: capabilities\.x\.threshold must be <= 1/);
  assert.match(r.err, /:10:\d+: .*regex is not a valid regular expression/);
});
