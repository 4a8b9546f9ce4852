// Keys never leak: with distinctive provider keys (a watched file that rotates, an env var) and a
// distinctive agent token, calls that succeed, that an upstream refuses for a wrong key, that find the
// upstream unreachable, that the token check refuses, and policy reloads (SIGHUP, the admin route, a
// changed file) leave none of them, nor their base64, in the sidecar's log at trace level, in any
// audit record or any file of the data directory, in any error body the agent received, or on
// /status and /metrics.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import pino from 'pino';
import { request } from 'undici';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { startSidecar } from '../../proxy/sidecar.ts';
import { tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';
import { replaceAtomically, secretValue, sleep, writeInPlace } from './load.ts';

const KEY_ONE = secretValue('sk-leak-one');
const KEY_TWO = secretValue('sk-leak-two');
const KEY_REVOKED = secretValue('sk-leak-revoked');
const KEY_ANTHROPIC = secretValue('sk-ant-leak');
const TOKEN = secretValue('wt-leak-token');
const SECRETS = { KEY_ONE, KEY_TWO, KEY_REVOKED, KEY_ANTHROPIC, TOKEN };

/** Every form a secret could leak in: as is, base64 and base64url (alone or as a Bearer value), hex. */
function forms(secret: string): string[] {
  const b = (s: string, enc: BufferEncoding) => Buffer.from(s).toString(enc);
  return [secret, b(secret, 'base64'), b(secret, 'base64url'), b(`Bearer ${secret}`, 'base64'), b(secret, 'hex')];
}

function assertClean(where: string, text: string): void {
  for (const [name, secret] of Object.entries(SECRETS)) {
    for (const form of forms(secret)) assert.ok(!text.includes(form), `${where} contains ${name} (${form === secret ? 'verbatim' : 'encoded'})`);
  }
}

test('no key or token appears in logs, audit records, data files, error bodies, /status or /metrics', async (t) => {
  const fake = await startFakeUpstream();
  // The upstream takes the current keys only and refuses others the way api.openai.com does, with a masked key.
  fake.setHandler((req, res) => {
    const anthropic = req.headers['anthropic-version'] !== undefined;
    const ok = anthropic ? req.headers['x-api-key'] === KEY_ANTHROPIC : [`Bearer ${KEY_ONE}`, `Bearer ${KEY_TWO}`].includes(String(req.headers.authorization));
    if (ok) return false;
    const sent = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${sent.slice(0, 7)}****${sent.slice(-4)}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    res.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  });
  const keyFile = tempFile('openai-key', `${KEY_ONE}\n`);
  const tokenFile = tempFile('warden-token', `${TOKEN}\n`);
  process.env.WARDEN_TEST_LEAK_ANTHROPIC_KEY = KEY_ANTHROPIC;
  const policyText = `apiVersion: warden/v1
kind: Policy
agent: { id: leak-agent, version: 1.0.0 }
auth: { tokenFile: "${tokenFile}" }
upstreams:
  openai: { baseUrl: "${fake.url}/v1", apiKeyFile: "${keyFile}" }
  anthropic: { baseUrl: "${fake.url}", apiKeyEnv: WARDEN_TEST_LEAK_ANTHROPIC_KEY }
  down: { baseUrl: "http://127.0.0.1:9/v1", apiKeyFile: "${keyFile}" }
retries:
  maxAttempts: 2
  backoff: { baseMs: 1, capMs: 2 }
`;
  const policyFile = tempFile('leak.yaml', policyText);
  const logged: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { logged.push(String(chunk)); done(); } });
  const dataDir = tempDataDir();
  const warden = await startSidecar({
    policyFile, dataDir, watchPolicy: true, shutdownGraceMs: 2_000, logger: pino({ level: 'trace' }, sink),
    listen: { host: '127.0.0.1', port: 0 }, adminListen: { host: '127.0.0.1', port: 0 },
  });
  delete process.env.WARDEN_TEST_LEAK_ANTHROPIC_KEY;
  const received: string[] = [];
  const openai = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
  const chat = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'hello' }] };
  const failing = async (p: Promise<unknown>, status: number) => {
    const err = await p.then(() => assert.fail('expected an error'), (e) => e);
    assert.equal(err.status, status, String(err));
    received.push(err.message, JSON.stringify(err.error ?? null), JSON.stringify(Object.fromEntries(err.headers ?? [])));
  };
  const raw = async (path: string, headers: Record<string, string>, body?: unknown) => {
    const res = await request(`${warden.trafficUrl}${path}`, { method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    received.push(JSON.stringify(res.headers), await res.body.text());
    return res.statusCode;
  };

  try {
    // Calls that succeed, streamed and not, on both providers.
    assert.match((await openai(TOKEN).chat.completions.create(chat)).choices[0].message.content ?? '', /You said/);
    for await (const _ of await openai(TOKEN).chat.completions.create({ ...chat, stream: true })) { /* drain */ }
    const anthropic = new Anthropic({ apiKey: TOKEN, baseURL: `${warden.trafficUrl}/anthropic`, maxRetries: 0 });
    assert.equal((await anthropic.messages.create({ model: 'claude-x', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })).type, 'message');

    // The key is rotated to one the upstream refuses: its 401 reaches the agent, masked as the upstream masks it.
    replaceAtomically(keyFile, KEY_REVOKED);
    await waitFor(async () => (await raw('/v1/models', { authorization: `Bearer ${TOKEN}` })) === 401, 2_000, 'the revoked key');
    await failing(openai(TOKEN).chat.completions.create(chat), 401);
    // A torn write, then the good key in place.
    writeInPlace(keyFile, '');
    await sleep(100);
    writeInPlace(keyFile, `${KEY_TWO}\n`);
    await waitFor(async () => (await raw('/v1/models', { authorization: `Bearer ${TOKEN}` })) === 200, 2_000, 'the new key');

    // The upstream is unreachable: 502 after the retries.
    const down = new OpenAI({ apiKey: TOKEN, baseURL: `${warden.trafficUrl}/upstreams/down`, maxRetries: 0 });
    await failing(down.chat.completions.create(chat), 502);
    assert.equal(await raw('/upstreams/down/chat/completions', { authorization: `Bearer ${TOKEN}` }, chat), 502);

    // The token check refuses a wrong and a missing token, on every kind of route.
    await failing(openai(`${TOKEN}-not`).chat.completions.create(chat), 401);
    for (const path of ['/v1/chat/completions', '/anthropic/v1/messages', '/tools/none', '/mcp/none', '/elsewhere']) {
      assert.equal(await raw(path, {}, chat), 401, path);
      assert.equal(await raw(path, { 'x-api-key': KEY_ONE }, chat), 401, path);
    }

    // Reloads: SIGHUP, the admin route, and a changed policy file.
    process.kill(process.pid, 'SIGHUP');
    const reloaded = await request(`${warden.adminUrl}/policy/reload`, { method: 'POST' });
    received.push(await reloaded.body.text());
    writeFileSync(policyFile, `${policyText}models:\n  gpt-4o: { pin: gpt-4o-2024-11-20 }\n`);
    await waitFor(() => logged.some((l) => l.includes('"policy reloaded"')), 3_000, 'the policy reload');
    assert.match((await openai(TOKEN).chat.completions.create(chat)).model, /2024-11-20/);

    const status = await (await request(`${warden.adminUrl}/status`)).body.text();
    const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
    assertClean('/status', status);
    assertClean('/metrics', metrics);
    assert.match(metrics, /^warden_auth_failures_total\{reason="missing"\} 5$/m);
    assert.match(metrics, /^warden_auth_failures_total\{reason="invalid"\} 6$/m);
    assertClean('an error body or header the agent received', received.join('\n'));
    assert.ok(received.some((r) => r.includes('Incorrect API key provided')), 'the upstream\'s own 401 reached the agent');
  } finally {
    await warden.shutdown();
    await fake.close();
  }

  const log = logged.join('');
  assertClean('the sidecar log', log);
  assert.match(log, /"credential rotated"/, 'rotations are logged');
  assert.match(log, /"fingerprint":"[0-9a-f]{8}"/, 'by fingerprint');

  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  const rows = db.prepare('SELECT * FROM records').all();
  db.close();
  assert.ok(rows.length > 20, `${rows.length} audit records`);
  assertClean('an audit record', JSON.stringify(rows));
  for (const file of readdirSync(dataDir)) assertClean(`data file ${file}`, readFileSync(join(dataDir, file)).toString('latin1'));
  t.diagnostic(`${rows.length} audit records, ${logged.length} log lines, ${received.length} error bodies and headers scanned for 5 secrets in 5 forms each`);
});
