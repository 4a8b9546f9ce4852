// Fuzzing the policy loader with YAML-ish text: the example policies mangled (lines dropped, doubled,
// re-indented, fragments spliced in) and text built from YAML's sharp edges (anchors and aliases,
// tags, merge keys, flow collections, ${VAR} interpolation, __proto__). checkPolicyText never throws:
// it returns a frozen policy or problems, each naming file:line:col.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkPolicyText } from '../../policies/load.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = readdirSync(join(ROOT, 'policies/examples')).filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(ROOT, 'policies/examples', f), 'utf8'));

const FRAGMENTS = [
  'apiVersion: warden/v1\n', 'kind: Policy\n', 'agent: { id: a, version: 1 }\n', 'upstreams:\n', '  openai: { baseUrl: "http://127.0.0.1:1/v1" }\n',
  '&a ', '*a', '<<: *a\n', '!!binary ', '!!js/function ', '!custom ', '? ', ': ', '- ', '[', ']', '{', '}', ',', '"', "'", '|\n', '>-\n',
  '${', '${A}', '${A:-x}', '${A:?gone}', '$${A}', '---\n', '...\n', '%YAML 1.2\n', '__proto__: { polluted: 1 }\n', 'constructor: 1\n',
  '\t', '  ', '\n', '#', '\0', '\uFEFF', 'é', '1e999', '0x1F', '.inf', '~', 'null', 'true', 'y', '2001-12-14', '"\\u0000"', 'limits: { maxBodyBytes: 10QiB }\n',
];

const ENV = { A: 'x', OPENAI_UPSTREAM: 'http://127.0.0.1:1/v1' } as NodeJS.ProcessEnv;

const built = fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 })), { maxLength: 40 }).map((parts) => parts.join(''));

const mangled = fc.tuple(
  fc.constantFrom(...EXAMPLES),
  fc.array(fc.tuple(fc.constantFrom('drop', 'double', 'indent', 'splice', 'cut'), fc.nat(), fc.constantFrom(...FRAGMENTS)), { minLength: 1, maxLength: 4 }),
).map(([text, ops]) => {
  let lines = text.split('\n');
  for (const [op, at, frag] of ops) {
    const i = at % Math.max(1, lines.length);
    if (op === 'drop') lines.splice(i, 1);
    else if (op === 'double') lines.splice(i, 0, lines[i] ?? '');
    else if (op === 'indent') lines[i] = ` ${lines[i] ?? ''}`;
    else if (op === 'splice') lines[i] = (lines[i] ?? '').slice(0, at % 7) + frag + (lines[i] ?? '').slice(at % 7);
    else lines = lines.slice(0, i);
  }
  return lines.join('\n');
});

function check(text: string): void {
  const result = checkPolicyText('p.yaml', text, ENV);
  assert.ok(Array.isArray(result.problems));
  if (result.policy) {
    assert.equal(result.problems.length, 0);
    assert.ok(Object.isFrozen(result.policy));
  } else {
    assert.ok(result.problems.length > 0, 'no policy and no problem');
  }
  for (const p of result.problems) assert.match(p, /^p\.yaml:\d+:\d+: \S/, p);
}

test('checkPolicyText never throws on YAML-ish text, and names file:line:col for every problem', () => {
  fc.assert(fc.property(fc.oneof(built, mangled, fc.string({ unit: 'binary', maxLength: 200 })), check), { numRuns: 1_500 });
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'a __proto__ key never reaches Object.prototype');
});

test('YAML bombs end as problems: alias fan-out, 100k-deep nesting, a file over the size cap', () => {
  const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++) laughs.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  const started = Date.now();
  const bomb = checkPolicyText('p.yaml', laughs.join('\n'), ENV);
  assert.ok(bomb.problems.length > 0 && !bomb.policy);
  assert.ok(Date.now() - started < 5_000, 'the alias bomb is refused, not expanded');
  for (const deep of ['['.repeat(100_000) + ']'.repeat(100_000), 'a:\n' + Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(i + 1)}b${i}:`).join('\n')]) {
    const r = checkPolicyText('p.yaml', deep, ENV);
    assert.ok(r.problems.length > 0, 'deep nesting is a problem, not a crash');
  }
  const huge = checkPolicyText('p.yaml', `# ${'x'.repeat(2 * 1024 * 1024)}`, ENV);
  assert.match(huge.problems[0], /p\.yaml:1:1: policy file is \d+ bytes; the limit is/);
});
