// The sanitize section of a policy: defaults, the problems a loader reports with file, line and
// column (an unbounded or anchored custom pattern, a name that clashes, a class nobody detects), and
// the /status warning for hash tokens under a per-process key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkPolicyText } from '../../policies/load.ts';
import { BUILTIN_NAMES } from '../../proxy/sanitize/detectors/index.ts';
import { compileSanitizer } from '../../proxy/sanitize/compile.ts';
import { sanitizeText } from '../../proxy/sanitize/sanitizer.ts';
import { buildRuntime } from '../../proxy/runtime.ts';

const BASE = `apiVersion: warden/v1
kind: Policy
agent: { id: bot, version: 1.2.3 }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:9/v1" }
`;
const check = (extra: string) => checkPolicyText('p.yaml', `${BASE}${extra}`, {});

test('absent, there is no sanitization; present, every built-in detector masks, tool results on, prompts off, no note', () => {
  assert.equal(check('').policy!.sanitize, undefined);
  assert.equal(check('sanitize: { enabled: false }\n').policy!.sanitize, undefined);
  const { policy, notes, problems } = check('sanitize: {}\n');
  assert.deepEqual(problems, []);
  assert.deepEqual(notes, []);
  assert.deepEqual(policy!.sanitize, {
    detectors: BUILTIN_NAMES, custom: [], action: 'mask', actions: {}, recipients: {}, responses: true, toolResults: true, prompts: false, hashKeyEnv: undefined,
  });
});

test('the DESIGN sketch loads: detectors, a bounded custom pattern, per-class actions, recipients', () => {
  const { policy, problems } = check(`sanitize:
  detectors: [email, phone, credit_card, iban, us_ssn, aws_key, private_key, jwt, api_key]
  custom: [{ name: ticket, pattern: "TKT-[0-9]{8}" }]
  action: mask
  actions: { email: hash, ticket: block }
  recipients: { internal: { allow: [email, phone] } }
  prompts: true
`);
  assert.deepEqual(problems, []);
  const s = policy!.sanitize!;
  assert.deepEqual([s.action, s.actions, s.recipients.internal.allow, s.prompts], ['mask', { email: 'hash', ticket: 'block' }, ['email', 'phone'], true]);
  assert.deepEqual(s.custom, [{ name: 'ticket', pattern: 'TKT-[0-9]{8}', maxLength: undefined, ignoreCase: false, mask: undefined }]);
});

test('a custom pattern without a bound on its length is refused at load, with its line and column', () => {
  const { problems } = check(`sanitize:
  custom:
    - { name: ticket, pattern: "TKT-[0-9]+" }
`);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^p\.yaml:8:32: sanitize\.custom\[0\]\.pattern can match text of unbounded length \(the quantifier \+ at offset 9\); use bounded quantifiers such as \{1,12\}, or set maxLength$/);
});

test('maxLength bounds an unbounded pattern: its quantifiers are capped and longer matches are not taken', () => {
  const { policy, problems } = check('sanitize:\n  custom: [{ name: ticket, pattern: "TKT-[0-9]+", maxLength: 12 }]\n');
  assert.deepEqual(problems, []);
  const engine = compileSanitizer(policy!).engineFor(undefined);
  assert.equal(sanitizeText(engine, 'see TKT-12345678 and TKT-1234567890').text, 'see <TICKET> and TKT-1234567890');
});

test('anchors, lookarounds, empty matches, bad syntax, clashing names and unknown classes are problems', () => {
  const { problems } = check(`sanitize:
  custom:
    - { name: a1, pattern: "^ID-[0-9]{4}" }
    - { name: a2, pattern: "(?<=id:)[0-9]{4}" }
    - { name: a3, pattern: "[0-9]{0,4}" }
    - { name: a4, pattern: "([0-9]{4}" }
    - { name: email, pattern: "x{3}" }
  actions: { nosuch: hash }
  recipients: { internal: { allow: [alsonot] } }
`);
  const text = problems.join('\n');
  assert.match(text, /custom\[0\]\.pattern uses the anchor \^ at offset 0/);
  assert.match(text, /custom\[1\]\.pattern uses the lookbehind \(\?<= at offset 0/);
  assert.match(text, /custom\[2\]\.pattern can match empty text/);
  assert.match(text, /custom\[3\]\.pattern is not a valid regular expression/);
  assert.match(text, /custom\[4\]\.name: "email" is already a built-in detector/);
  assert.match(text, /p\.yaml:13:\d+: sanitize\.actions\.nosuch: "nosuch" is not a detector/);
  assert.match(text, /p\.yaml:14:\d+: sanitize\.recipients\.internal\.allow: "alsonot" is not a detector/);
});

test('schema: unknown keys, unknown detectors and actions are refused', () => {
  const { problems } = check('sanitize: { detectors: [email, passport], action: shred, extra: 1 }\n');
  assert.equal(problems.length, 3, problems.join('\n'));
});

test('hash tokens are keyed: the same value and key give the same token, another key another; hashKeyEnv sets the key', () => {
  const policy = (key: string) => checkPolicyText('p.yaml', `${BASE}sanitize: { action: hash, hashKeyEnv: SANITIZE_KEY }\n`, {}).policy!;
  const token = (key: string) => {
    process.env.SANITIZE_KEY = key;
    try {
      return sanitizeText(compileSanitizer(policy(key)).engineFor(undefined), 'mail ann@example.com').text;
    } finally {
      delete process.env.SANITIZE_KEY;
    }
  };
  assert.match(token('k1'), /^mail <EMAIL:[0-9a-f]{8}>$/);
  assert.equal(token('k1'), token('k1'));
  assert.notEqual(token('k1'), token('k2'));
});

test('a custom pattern whose matches in progress cannot be told from other text (a backreference, no leading literal) is refused past a short reach', () => {
  const { problems } = check(`sanitize:
  custom:
    - { name: twin, pattern: "([a-z])\\\\1{2,300}" }
    - { name: pair, pattern: "([a-z])\\\\1" }
    - { name: code, pattern: "[A-Z]{2}[a-z0-9]+", maxLength: 16000 }
`);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0], /^p\.yaml:8:30: sanitize\.custom\[0\]\.pattern uses a backreference and starts with no literal character, so a stream .* would hold back the last 301 characters of every answer; the limit for such a pattern is 256/);
});

test('/status warns when hash tokens use a random per-process key: hashKeyEnv absent, or its variable unset or empty', () => {
  const warnings = (sanitize: string) => buildRuntime(check(sanitize).policy!).warnings.filter((w) => w.startsWith('sanitize:'));
  assert.deepEqual(warnings('sanitize: {}\n'), [], 'no hash action, no warning');
  assert.match(warnings('sanitize: { actions: { email: hash } }\n')[0], /^sanitize: hash tokens use a random key made at start \(sanitize\.hashKeyEnv is not set\), so a value's token changes on restart and differs between sidecars$/);
  assert.match(warnings('sanitize: { recipients: { ops: { actions: { phone: hash } } }, hashKeyEnv: SANITIZE_KEY_UNSET }\n')[0], /\(SANITIZE_KEY_UNSET is unset or empty\)/);
  process.env.SANITIZE_KEY_SET = 'k1';
  try {
    assert.deepEqual(warnings('sanitize: { action: hash, hashKeyEnv: SANITIZE_KEY_SET }\n'), []);
  } finally {
    delete process.env.SANITIZE_KEY_SET;
  }
});
