// The policy loader: YAML with positions, ${VAR} interpolation, every schema problem at once with
// line and column, defaults filled in once, and a frozen result.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { checkPolicyText } from '../../policies/load.ts';
import { parseBytes } from '../../policies/normalize.ts';

const BASE = `apiVersion: warden/v1
kind: Policy
agent: { id: bot, version: 1.2.3 }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:9/v1" }
`;

function check(text: string, env: NodeJS.ProcessEnv = {}) {
  return checkPolicyText('p.yaml', text, env);
}

test('the smallest policy gets every default, with units', () => {
  const { policy, problems } = check(BASE);
  assert.deepEqual(problems, []);
  assert.equal(policy!.mode, 'enforce');
  assert.equal(policy!.agent.version, '1.2.3');
  assert.deepEqual(policy!.agent.scopes, []);
  assert.equal(policy!.limits.maxBodyBytes, 10 * 1024 * 1024);
  assert.equal(policy!.usage.streamUsage, 'request');
  assert.deepEqual(policy!.upstreams.openai.timeouts, { connectMs: 5_000, firstTokenMs: 30_000, idleMs: 20_000, totalMs: 300_000 });
  assert.equal(policy!.upstreams.openai.provider, 'openai');
  assert.match(policy!.source.sha256, /^[0-9a-f]{64}$/);
});

test('the result is deeply frozen', () => {
  const { policy } = check(BASE);
  assert.ok(Object.isFrozen(policy) && Object.isFrozen(policy!.upstreams.openai.timeouts));
  assert.throws(() => {
    (policy!.upstreams.openai as { baseUrl: string }).baseUrl = 'http://evil';
  }, TypeError);
});

test('upstream timeouts override retries.timeouts key by key; the anthropic upstream speaks anthropic', () => {
  const { policy, problems } = check(`${BASE}  anthropic: { baseUrl: "https://api.anthropic.com", timeouts: { idleMs: 7 } }
  vllm: { baseUrl: "http://127.0.0.1:8000/v1", headers: { X-Api-Version: "2" } }
retries: { timeouts: { connectMs: 1000 } }
limits: { maxBodyBytes: 64KiB }
`);
  assert.deepEqual(problems, []);
  assert.deepEqual(policy!.upstreams.anthropic.timeouts, { connectMs: 1000, firstTokenMs: 30_000, idleMs: 7, totalMs: 300_000 });
  assert.equal(policy!.upstreams.anthropic.provider, 'anthropic');
  assert.equal(policy!.upstreams.vllm.provider, 'openai');
  assert.deepEqual(policy!.upstreams.vllm.headers, { 'x-api-version': '2' });
  assert.equal(policy!.limits.maxBodyBytes, 65_536);
});

test('${VAR} and ${VAR:-default} are resolved; an unset variable without a default is a problem at its line', () => {
  const text = `${BASE}  anthropic: { baseUrl: "\${ANTH:-https://api.anthropic.com}" }
  other: { baseUrl: "http://\${HOST}:\${PORT:-80}/v1", headers: { x-literal: "$\${NOT_A_VAR}" } }
`;
  const ok = check(text, { HOST: 'gw.internal' });
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.policy!.upstreams.anthropic.baseUrl, 'https://api.anthropic.com');
  assert.equal(ok.policy!.upstreams.other.baseUrl, 'http://gw.internal:80/v1');
  assert.equal(ok.policy!.upstreams.other.headers['x-literal'], '${NOT_A_VAR}');
  const bad = check(text, {});
  assert.equal(bad.policy, undefined);
  assert.match(bad.problems.join('\n'), /^p\.yaml:7:\d+: environment variable HOST is not set/m);
});

test('WARDEN_AGENT_ID and WARDEN_AGENT_VERSION (set by warden deploy inject) outrank the file, are validated, and are noted', () => {
  const { policy, notes } = check(BASE, { WARDEN_AGENT_ID: 'orders-bot', WARDEN_AGENT_VERSION: '2.0.0' });
  assert.deepEqual([policy!.agent.id, policy!.agent.version], ['orders-bot', '2.0.0']);
  assert.deepEqual(notes, ['p.yaml:3:10: note: agent.id is "orders-bot", from WARDEN_AGENT_ID', 'p.yaml:3:19: note: agent.version is "2.0.0", from WARDEN_AGENT_VERSION']);
  assert.equal(check(BASE, { WARDEN_AGENT_VERSION: '2.0.0' }).policy!.agent.id, 'bot');
  const bad = check(BASE, { WARDEN_AGENT_ID: 'has spaces' });
  assert.equal(bad.policy, undefined);
  assert.match(bad.problems.join('\n'), /^p\.yaml:3:14: agent\.id is not valid here .*"has spaces"/m);
});

test('every problem is reported at once, in file order, each with line and column', () => {
  const { policy, problems } = check(`apiVersion: warden/v2
kind: Policy
agent: { version: 1 }
mode: sometimes
upstreams:
  openai: { baseUrl: 42, tiemouts: {} }
limits: { maxBodyBytes: 12 parsecs }
extra: true
`);
  assert.equal(policy, undefined);
  assert.deepEqual(problems, [
    'p.yaml:1:13: apiVersion must be "warden/v1" (got "warden/v2")',
    'p.yaml:3:8: agent: missing required key "id"',
    'p.yaml:4:7: mode must be one of enforce, monitor, research (got "sometimes")',
    'p.yaml:6:22: upstreams.openai.baseUrl must be string (got number 42)',
    'p.yaml:6:26: unknown key "tiemouts" in upstreams.openai (did you mean "timeouts"?)',
    'p.yaml:7:25: limits.maxBodyBytes must be a size: bytes, or a number with B, KB, KiB, MB, MiB, GB or GiB (got "12 parsecs")',
    'p.yaml:8:1: unknown top-level key "extra" (known keys: apiVersion, kind, agent, mode, auth, upstreams, models, usage, limits, retries, tools, rules, sanitize, context, escalation, audit, evals, agents)',
  ]);
});

test('YAML syntax errors, duplicate keys, empty files, non-UTF-8 and alias bombs are problems, not crashes', () => {
  assert.match(check('a: [1\n').problems[0], /^p\.yaml:\d+:\d+: /);
  assert.match(check(`${BASE}agent: { id: x, version: 1 }\n`).problems[0], /^p\.yaml:6:1: Map keys must be unique/);
  assert.deepEqual(check('').problems, ['p.yaml:1:1: policy file is empty']);
  assert.deepEqual(checkPolicyText('p.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xff])).problems, ['p.yaml:1:1: policy file is not valid UTF-8']);
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 0; i < 8; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`);
  assert.equal(check(bomb.join('\n')).policy, undefined);
  assert.match(checkPolicyText('p.yaml', 'x'.repeat(2 * 1024 * 1024)).problems[0], /the limit is/);
});

test('checks the schema cannot express: both key sources, an unparsable URL, total shorter than first token', () => {
  const { problems } = check(`${BASE.replace('"http://127.0.0.1:9/v1" }', '"http://127.0.0.1:9/v1", apiKeyEnv: K, apiKeyFile: /k, timeouts: { totalMs: 10, firstTokenMs: 20 } }')}  bad: { baseUrl: "http://[::1/v1" }
`);
  assert.match(problems.join('\n'), /p\.yaml:5:\d+: upstreams\.openai: set apiKeyEnv or apiKeyFile, not both/);
  assert.match(problems.join('\n'), /upstreams\.openai: totalMs \(10\) is shorter than firstTokenMs \(20\)/);
  assert.match(problems.join('\n'), /p\.yaml:6:\d+: upstreams\.bad\.baseUrl is not a valid URL/);
});

test('the evals section: paths resolve against the policy file, defaults fill in, and URLs are checked', () => {
  const { policy, notes } = check(`${BASE}evals: { pact: pacts/bot.pact.yaml, every: 30m, webhook: "" }\n`);
  assert.ok(policy);
  // Every section is enforced now: nothing is accepted with a "not enforced yet" note.
  assert.deepEqual(notes, []);
  assert.equal(policy.evals?.pact, resolve('pacts/bot.pact.yaml'));
  assert.equal(policy.evals?.everyMs, 1_800_000);
  assert.equal(policy.evals?.onModelChange, true);
  assert.equal(policy.evals?.webhook, undefined);
  assert.equal(policy.evals?.passive.windowCalls, 500);
  assert.match(check(`${BASE}evals: { every: 15m }\n`).problems.join('\n'), /p\.yaml:6:\d+: .*pact/);
  assert.match(check(`${BASE}evals: { pact: a.yaml, remediate: "ftp://x" }\n`).problems.join('\n'), /p\.yaml:6:\d+: evals\.remediate must be an http\(s\) URL/);
});

test('sizes parse with decimal and binary units', () => {
  assert.deepEqual(['512', '1KB', '1KiB', '1.5MiB', '2GB', '2 GiB'].map((s) => parseBytes(/^\d+$/.test(s) ? Number(s) : s)),
    [512, 1000, 1024, 1_572_864, 2e9, 2 * 1024 ** 3]);
});

test('audit space: quota and retention with units; failing open is refused in enforce mode', () => {
  const { policy } = check(`${BASE}mode: research\naudit: { quotaBytes: 2GiB, retainShipped: 36h, onFull: failOpen }\n`);
  assert.deepEqual([policy!.audit.quotaBytes, policy!.audit.retainShippedMs, policy!.audit.onFull], [2 * 1024 ** 3, 36 * 3_600_000, 'failOpen']);
  assert.deepEqual([check(BASE).policy!.audit.retainShippedMs, check(BASE).policy!.audit.onFull], [7 * 86_400_000, 'block']);
  assert.deepEqual(check(`${BASE}audit: { retainShipped: 2 weeks }\n`).problems,
    ['p.yaml:6:25: audit.retainShipped must be a duration: milliseconds, or a whole number with ms, s, m, h or d (got "2 weeks")']);
  assert.match(check(`${BASE}audit: { onFull: failOpen }\n`).problems.join('\n'), /p\.yaml:6:\d+: audit\.onFull: failOpen is for monitor and research modes/);
});

test('YAML merge keys: an upstream takes another\'s settings with <<: *anchor and overrides some', () => {
  const { policy, problems } = check(`apiVersion: warden/v1
kind: Policy
agent: { id: bot, version: 1.2.3 }
upstreams:
  openai: &base { baseUrl: "http://127.0.0.1:9/v1", timeouts: { totalMs: 1234 } }
  vllm:
    <<: *base
    baseUrl: "http://127.0.0.1:8/v1"
`);
  assert.deepEqual(problems, []);
  const vllm = policy!.upstreams.vllm;
  assert.equal(vllm.baseUrl, 'http://127.0.0.1:8/v1');
  assert.equal(vllm.timeouts.totalMs, 1234);
});

test('a value that fails a field\'s pattern is told with what the field is, in a sentence that reads', () => {
  const { problems } = check(BASE.replace('id: bot', 'id: "bad id!"').replace('"http://127.0.0.1:9/v1"', '""'));
  assert.deepEqual(problems, [
    'p.yaml:3:14: agent.id is not valid here (Stable agent identity (letters, digits, . _ -)) (got "bad id!")',
    'p.yaml:5:22: upstreams.openai.baseUrl is not valid here (The API\'s base URL, as its SDK would take it (https://api.openai.com/v1, https://api.anthropic.com)) (got "")',
  ]);
});

test('audit.mask and audit.encrypt cannot take the fields that frame a record (its columns and chain would no longer match it)', () => {
  const { problems } = check(`${BASE}audit: { mask: [ts, { path: event }, request.text], encrypt: [seq, response.text, tsx] }\n`);
  assert.deepEqual(problems.map((p) => p.replace(/ must be .*\(got/, ' (got')), [
    'p.yaml:6:17: audit.mask[0] (got "ts")',
    'p.yaml:6:29: audit.mask[1].path (got "event")',
    'p.yaml:6:63: audit.encrypt[0] (got "seq")',
  ]);
});
