// The identity token and what surrounds it, without sockets: scopes only narrow along a chain, every
// malformed or out-of-time token is refused with its reason, the replay cache and the delegations are
// bounded, operators' key formats parse, the policy section is checked, and `warden identity` prints
// the key the sidecar signs with.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { join } from 'node:path';
import { checkPolicyFile, checkPolicyText } from '../../policies/load.ts';
import { Delegations } from '../../proxy/agents/delegations.ts';
import { loadIdentityKey, parsePublicKey, parsePublicKeyFile, type IdentityKey } from '../../proxy/agents/identity-key.ts';
import { ReplayCache } from '../../proxy/agents/replay-cache.ts';
import { admitIdentity, bodyHash, checkIdentityToken, CLOCK_SKEW_MS, effectiveScopes, signIdentity, verifyIdentity, type Hop } from '../../proxy/agents/token.ts';
import { buildTrust, type TrustedCaller } from '../../proxy/agents/trust.ts';
import { identityCommand } from '../../proxy/cli/identity-command.ts';
import { AgentIdentityError, ConfigError } from '../../proxy/errors.ts';
import { ROOT, tempDataDir } from '../helpers/warden.ts';

const keyA = loadIdentityKey(tempDataDir());
const keyB = loadIdentityKey(tempDataDir());
const request = { method: 'POST', path: '/ask', body: Buffer.from('{}') };
const trustOf = (entries: [string, IdentityKey, string[]?][]): Map<string, TrustedCaller> =>
  new Map(entries.map(([agent, key, scopes]) => [agent, { agent, keys: [parsePublicKey(key.publicKey)], scopes }]));
const trust = trustOf([['a-agent', keyA], ['b-agent', keyB]]);

function token(key: IdentityKey, iss: string, scopes: string[], chain: Hop[], opts: { now?: number; aud?: string; ttlMs?: number } = {}) {
  return signIdentity(key, { iss, aud: opts.aud ?? 'c-agent', scopes, chain }, request, { ttlMs: opts.ttlMs ?? 60_000, now: opts.now });
}

function verify(t: string | undefined, over: { now?: number; trust?: Map<string, TrustedCaller>; replay?: ReplayCache; self?: string[] } = {}) {
  return verifyIdentity({ token: t, self: { id: 'c-agent', scopes: over.self ?? ['support', 'finance', 'billing'] }, trust: over.trust ?? trust, request, replay: over.replay ?? new ReplayCache(), now: over.now });
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AgentIdentityError, String(err));
    return err.reason;
  }
  return 'accepted';
}

/** A token with hand-made header and claims, signed by A's key. */
function raw(header: object, claims: object, key = keyA): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`;
}

test('effective scopes: own ∩ token ∩ every hop ∩ the trust ceiling; a chain can only narrow', () => {
  const chain = [{ agent: 'a-agent', scopes: ['support'] }, { agent: 'b-agent', scopes: ['support'] }];
  // B claims finance in its token's scopes, but A (earlier in the chain) never had it.
  const v = verify(token(keyB, 'b-agent', ['support', 'finance'], chain));
  assert.deepEqual(v.scopes, ['support']);
  assert.deepEqual(v.claims.chain.map((h) => h.agent), ['a-agent', 'b-agent']);
  assert.deepEqual(effectiveScopes(['a', 'b', 'c'], { scopes: ['a', 'b', 'c'], chain: [{ agent: 'x', scopes: ['a', 'b', 'c'] }] }, ['b']), ['b']);
  // The callee's trust entry caps what a caller may lend, whatever its token claims.
  const capped = trustOf([['b-agent', keyB, ['billing']]]);
  assert.deepEqual(verify(token(keyB, 'b-agent', ['support', 'billing'], [{ agent: 'b-agent', scopes: ['support', 'billing'] }]), { trust: capped }).scopes, ['billing']);
  // Nothing the callee does not hold itself.
  assert.deepEqual(verify(token(keyA, 'a-agent', ['support', 'admin'], [{ agent: 'a-agent', scopes: ['support', 'admin'] }]), { self: ['admin'] }).scopes, ['admin']);
  assert.deepEqual(verify(token(keyA, 'a-agent', ['support'], [{ agent: 'a-agent', scopes: ['support'] }]), { self: ['finance'] }).scopes, []);
});

test('time: a little clock skew is tolerated, more is not; lifetimes past 5 minutes are refused', () => {
  const now = Date.now();
  const chain = [{ agent: 'a-agent', scopes: ['support'] }];
  assert.equal(reason(() => verify(token(keyA, 'a-agent', ['support'], chain, { now: now + CLOCK_SKEW_MS - 2_000 }), { now })), 'accepted');
  assert.equal(reason(() => verify(token(keyA, 'a-agent', ['support'], chain, { now: now + 10_000 }), { now })), 'expired');
  assert.equal(reason(() => verify(token(keyA, 'a-agent', ['support'], chain, { now: now - 62_000 }), { now })), 'accepted');
  assert.equal(reason(() => verify(token(keyA, 'a-agent', ['support'], chain, { now: now - 70_000 }), { now })), 'expired');
  assert.equal(reason(() => verify(token(keyA, 'a-agent', ['support'], chain, { ttlMs: 600_000 }))), 'malformed');
});

test('malformed tokens: wrong algorithm, bad shape, a chain that does not end with the issuer', () => {
  const iat = Math.floor(Date.now() / 1000);
  const good = { iss: 'a-agent', aud: 'c-agent', iat, exp: iat + 60, jti: 'abcdefghijklmnop', scopes: ['support'], chain: [{ agent: 'a-agent', scopes: ['support'] }], htm: 'POST', htp: '/ask', bh: bodyHash(request.body) };
  const header = { alg: 'EdDSA', typ: 'warden-identity+jwt', kid: keyA.keyId };
  assert.equal(reason(() => verify(raw(header, good))), 'accepted');
  assert.equal(reason(() => verify(raw({ ...header, alg: 'none' }, good))), 'malformed');
  assert.equal(reason(() => verify(raw({ ...header, alg: 'HS256' }, good))), 'malformed');
  assert.equal(reason(() => verify(raw(header, { ...good, chain: [{ agent: 'z-agent', scopes: ['support'] }] }))), 'malformed');
  assert.equal(reason(() => verify(raw(header, { ...good, chain: [] }))), 'malformed');
  assert.equal(reason(() => verify(raw(header, { ...good, chain: Array(9).fill({ agent: 'a-agent', scopes: [] }) }))), 'malformed');
  assert.equal(reason(() => verify(raw(header, { ...good, scopes: 'support' }))), 'malformed');
  assert.equal(reason(() => verify(raw(header, { ...good, jti: 'short' }))), 'malformed');
  assert.equal(reason(() => verify(raw(header, { ...good, htm: 'GET' }))), 'forged');
  assert.equal(reason(() => verify('not.a.token')), 'malformed');
  assert.equal(reason(() => verify('x'.repeat(9_000))), 'malformed');
  assert.equal(reason(() => verify(undefined)), 'unsigned');
  // A key the trust entry does not hold for the issuer (a rotated key, say) is untrusted, not forged.
  assert.equal(reason(() => verify(raw({ ...header, kid: keyB.keyId }, good))), 'untrusted');
});

test('replay cache: a token id once; expired ids dropped; full of live ids, it refuses (busy)', () => {
  const cache = new ReplayCache(2);
  assert.equal(cache.claim('a', 1_000, 0), 'ok');
  assert.equal(cache.claim('a', 1_000, 10), 'replayed');
  assert.equal(cache.claim('b', 1_000, 10), 'ok');
  assert.equal(cache.claim('c', 1_000, 10), 'full');
  assert.equal(cache.claim('c', 3_000, 1_500), 'ok');
  assert.equal(cache.size, 1);
  const t = token(keyA, 'a-agent', ['support'], [{ agent: 'a-agent', scopes: ['support'] }]);
  const replay = new ReplayCache(1);
  assert.equal(reason(() => verify(t, { replay })), 'accepted');
  assert.equal(reason(() => verify(t, { replay })), 'replayed');
  assert.equal(reason(() => verify(token(keyA, 'a-agent', ['support'], [{ agent: 'a-agent', scopes: ['support'] }]), { replay })), 'busy');
});

test('the head is checked before the body is read; a wrong body, or a token that expired meanwhile, takes no replay slot', () => {
  const self = { id: 'c-agent', scopes: ['support'] };
  const head = { method: 'POST', path: '/ask' };
  const chain = [{ agent: 'a-agent', scopes: ['support'] }];
  const t = token(keyA, 'a-agent', ['support'], chain);
  const replay = new ReplayCache();
  // Method and path are in the head, so a token for another path is refused before any body.
  assert.equal(reason(() => checkIdentityToken({ token: t, self, trust, request: { ...head, path: '/other' } })), 'forged');
  const checked = checkIdentityToken({ token: t, self, trust, request: head });
  assert.equal(reason(() => admitIdentity(checked, Buffer.from('{"other":1}'), replay)), 'forged');
  assert.equal(replay.size, 0, 'the refused body took no slot');
  assert.equal(reason(() => admitIdentity(checked, request.body, replay)), 'accepted');
  assert.equal(reason(() => admitIdentity(checked, request.body, replay)), 'replayed');
  // Live when the head came, expired once the body was in: refused, and no slot taken.
  const now = Date.now();
  const late = token(keyA, 'a-agent', ['support'], chain, { now: now - 60_000 });
  const lateChecked = checkIdentityToken({ token: late, self, trust, request: head, now });
  const fresh = new ReplayCache();
  assert.equal(reason(() => admitIdentity(lateChecked, request.body, fresh, now + CLOCK_SKEW_MS + 1_000)), 'expired');
  assert.equal(fresh.size, 0);
});

test('delegations are bounded and end', () => {
  const d = new Delegations(1);
  const one = d.start({ caller: 'a-agent', chain: [], scopes: ['support'], jti: 'j' })!;
  assert.match(one.id, /^dlg_[A-Za-z0-9_-]{24}$/);
  assert.equal(d.start({ caller: 'a-agent', chain: [], scopes: [], jti: 'k' }), undefined);
  d.end(one.id);
  assert.equal(d.get(one.id), undefined);
  assert.ok(d.start({ caller: 'a-agent', chain: [], scopes: [], jti: 'k' }));
});

test('public keys in the forms operators paste them; anything but Ed25519 is refused', () => {
  const der = Buffer.from(keyA.publicKey, 'base64');
  const rawKey = der.subarray(12).toString('base64url');
  const pem = `-----BEGIN PUBLIC KEY-----\n${keyA.publicKey}\n-----END PUBLIC KEY-----\n`;
  for (const text of [keyA.publicKey, rawKey, pem]) assert.equal(parsePublicKey(text).keyId, keyA.keyId);
  assert.deepEqual(parsePublicKeyFile(`# A, old and new\n${keyA.publicKey}\n\n${keyB.publicKey}\n`).map((k) => k.keyId), [keyA.keyId, keyB.keyId]);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
  assert.throws(() => parsePublicKey(rsa), /only Ed25519/);
  assert.throws(() => parsePublicKey('c2hvcnQ='), /neither an Ed25519 key/);
  assert.throws(() => parsePublicKey('not base64!'), /not base64/);
});

test('policy check: the agents section\'s URLs, one key source per caller, inline keys that parse; the example passes', async () => {
  const doc = (agents: string) => checkPolicyText('p.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: b-agent, version: 1, scopes: [support] }
upstreams: { openai: { baseUrl: "http://127.0.0.1:1/v1" } }
agents:
${agents}`);
  const ok = doc(`  peers: { c-agent: { url: "http://10.0.0.7:15102" } }
  trust: { a-agent: { publicKey: "${keyA.publicKey}", scopes: [support] } }
  inbound: { url: "http://127.0.0.1:8080" }`);
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.policy!.agents!.peers['c-agent'], { name: 'c-agent', url: 'http://10.0.0.7:15102', audience: 'c-agent', timeoutMs: 300_000 });
  assert.deepEqual(ok.policy!.agents!.trust['a-agent'].publicKeys, [keyA.publicKey]);
  assert.equal(ok.policy!.agents!.tokenTtlMs, 60_000);
  const bad = doc(`  peers: { c-agent: { url: "ftp://x" }, d-agent: { url: "http://x/?q=1" } }
  trust:
    a-agent: { publicKey: "bm9wZQ==" }
    e-agent: { scopes: [support] }
    f-agent: { publicKey: "${keyA.publicKey}", publicKeyFile: /k.pem }`).problems.join('\n');
  assert.match(bad, /p\.yaml:6:\d+: agents\.peers\.c-agent\.url is not an http\(s\) URL/);
  assert.match(bad, /agents\.peers\.d-agent\.url must not have a query/);
  assert.match(bad, /agents\.trust\.a-agent\.publicKey is not an Ed25519 public key/);
  assert.match(bad, /agents\.trust\.e-agent: set publicKey or publicKeyFile/);
  assert.match(bad, /agents\.trust\.f-agent: set publicKey or publicKeyFile/);
  assert.deepEqual((await checkPolicyFile(join(ROOT, 'policies/examples/billing-agent.yaml'))).problems, []);
  // Semantic checks run once the shape is right; a lifetime past what callees accept is a shape error.
  assert.match(doc('  tokenTtlMs: 600000').problems.join('\n'), /p\.yaml:6:\d+: agents\.tokenTtlMs must be <= 300000/);
});

test('`warden identity` prints the key the sidecar signs with (creating it once)', async () => {
  const dir = tempDataDir();
  const run = async (args: string[]) => {
    let out = '';
    const sink = new Writable({ write(chunk, _enc, done) { out += chunk; done(); } });
    assert.equal(await identityCommand(args, sink), 0);
    return out;
  };
  const first = JSON.parse(await run(['--data-dir', dir, '--json']));
  assert.equal(first.publicKey, loadIdentityKey(dir).publicKey);
  assert.equal(first.keyId, parsePublicKey(first.publicKey).keyId);
  assert.match(await run(['--data-dir', dir, '--agent', 'a-agent']), new RegExp(`a-agent: \\{ publicKey: "${first.publicKey.replace(/[+/]/g, '\\$&')}" \\}`));
});

test('trusted keys are read when the runtime is built: a key file that is missing or holds no key stops it', () => {
  const policy = (file: string) => checkPolicyText('p.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: b-agent, version: 1 }
upstreams: { openai: { baseUrl: "http://127.0.0.1:1/v1" } }
agents: { trust: { a-agent: { publicKeyFile: "${file}" } } }
`).policy!;
  const dir = tempDataDir();
  assert.throws(() => buildTrust(policy(join(dir, 'nope.pub'))), (err: Error) => err instanceof ConfigError && /agents\.trust\.a-agent: unusable public key .*ENOENT/.test(err.message));
  writeFileSync(join(dir, 'empty.pub'), '# rotated out\n');
  assert.throws(() => buildTrust(policy(join(dir, 'empty.pub'))), /no public key/);
  writeFileSync(join(dir, 'a.pub'), `${keyB.publicKey}\n${keyA.publicKey}\n`);
  assert.deepEqual(buildTrust(policy(join(dir, 'a.pub'))).get('a-agent')!.keys.map((k) => k.keyId), [keyB.keyId, keyA.keyId]);
});
