// The rules a credential read follows, and the token check's header handling, without a sidecar.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { IncomingHttpHeaders } from 'node:http';
import { createAgentAuth } from '../../proxy/auth/agent-auth.ts';
import { Secret, fingerprint, readSecret } from '../../proxy/auth/secret.ts';
import { tempFile } from '../helpers/warden.ts';

test('a read trims the value and refuses empty, oversized and multi-line files, naming the source but never the value', () => {
  const file = tempFile('k', '  sk-abc  \n');
  assert.deepEqual(readSecret({ file }, 'apiKeyFile'), { value: 'sk-abc' });
  for (const [text, problem] of [['\n', /is empty/], ['sk-a\nsk-b', /line break or control character/], ['sk-\u0000a', /control character/], ['x'.repeat(20_000), /20000 bytes/]] as const) {
    writeFileSync(file, text);
    const r = readSecret({ file }, 'apiKeyFile');
    assert.ok('problem' in r);
    assert.match(r.problem, problem);
    assert.match(r.problem, /^(cannot read )?apiKeyFile \/.*\/k/);
  }
  assert.match((readSecret({ file: '/nonexistent/k' }, 'apiKeyFile') as { problem: string }).problem, /cannot read apiKeyFile \/nonexistent\/k \(ENOENT\)/);
  assert.deepEqual(readSecret({ env: 'WARDEN_TEST_SURELY_UNSET_SECRET' }, 'apiKeyEnv'), { problem: 'environment variable WARDEN_TEST_SURELY_UNSET_SECRET is not set' });
});

test('a failed read keeps the value that worked; the version moves only when the value does', () => {
  const s = new Secret({ file: '/k' }, 'apiKeyFile');
  assert.equal(s.apply({ problem: 'cannot read apiKeyFile /k (ENOENT)' }), 'missing');
  assert.equal(s.value, undefined);
  assert.equal(s.apply({ value: 'one' }), 'loaded');
  assert.equal(s.version, 1);
  assert.equal(s.apply({ value: 'one' }), 'unchanged');
  assert.equal(s.apply({ problem: 'apiKeyFile /k is empty' }), 'kept');
  assert.equal(s.value, 'one');
  assert.equal(s.problem, `apiKeyFile /k is empty; still using the value read before (fingerprint ${fingerprint('one')})`);
  assert.equal(s.apply({ value: 'two' }), 'rotated');
  assert.deepEqual([s.value, s.version, s.problem], ['two', 2, undefined]);
});

test('the token check: Bearer in any case, x-api-key, api-key or x-warden-token; the carrying header is removed', () => {
  process.env.WARDEN_TEST_UNIT_TOKEN = 'unit-token-0123456789';
  const auth = createAgentAuth({ tokenEnv: 'WARDEN_TEST_UNIT_TOKEN' });
  delete process.env.WARDEN_TEST_UNIT_TOKEN;
  const check = (headers: IncomingHttpHeaders) => [auth.check(headers), headers] as const;
  assert.deepEqual(check({ authorization: 'bearer  unit-token-0123456789', accept: '*/*' }), ['ok', { accept: '*/*' }]);
  assert.deepEqual(check({ 'x-api-key': 'unit-token-0123456789', authorization: 'Bearer agent-own' }), ['ok', { authorization: 'Bearer agent-own' }]);
  assert.deepEqual(check({ 'api-key': 'unit-token-0123456789' }), ['ok', {}]);
  assert.deepEqual(check({ 'x-warden-token': 'unit-token-0123456789', authorization: 'Bearer provider-key' }), ['ok', { authorization: 'Bearer provider-key' }]);
  assert.deepEqual(check({ accept: '*/*' }), ['missing', { accept: '*/*' }]);
  assert.deepEqual(check({ authorization: 'Bearer unit-token-012345678' }), ['invalid', { authorization: 'Bearer unit-token-012345678' }]);
  assert.deepEqual(check({ authorization: 'Basic unit-token-0123456789' }), ['invalid', { authorization: 'Basic unit-token-0123456789' }]);
  assert.deepEqual(auth.warnings, []);
});
