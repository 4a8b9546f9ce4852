// The identity key is made only when a policy needs it: a sidecar whose policy has no agents section
// writes no identity-key.pem and starts even where no key can be had; the first policy with one (at
// start or on a reload) loads or creates it, and where that fails the start fails, or the reload is
// refused and the last good policy keeps serving. `warden identity` creates the key on demand.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, test } from 'node:test';
import pino from 'pino';
import { request } from 'undici';
import { IDENTITY_KEY_FILE } from '../../proxy/agents/identity-key.ts';
import { identityCommand } from '../../proxy/cli/identity-command.ts';
import { ConfigError } from '../../proxy/errors.ts';
import { startSidecar } from '../../proxy/sidecar.ts';
import { tempDataDir, tempFile } from '../helpers/warden.ts';

const head = `apiVersion: warden/v1
kind: Policy
agent: { id: lazy-agent, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:1/v1" }
`;
const withAgents = `${head}agents:
  peers: { b-agent: { url: "http://127.0.0.1:1" } }
`;

function start(policyFile: string, dataDir: string) {
  return startSidecar({
    policyFile, dataDir, listen: { host: '127.0.0.1', port: 0 }, adminListen: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 1_000, watchPolicy: false, logger: pino({ level: process.env.WARDEN_TEST_LOG_LEVEL ?? 'silent' }),
  });
}

async function reload(adminUrl: string): Promise<{ status: number; problems?: string[] }> {
  const res = await request(`${adminUrl}/policy/reload`, { method: 'POST' });
  const body = await res.body.json() as { problems?: string[] };
  return { status: res.statusCode, problems: body.problems };
}

async function identityJson(dataDir: string): Promise<{ publicKey: string; source: string }> {
  let out = '';
  const sink = new Writable({ write(chunk, _enc, done) { out += chunk; done(); } });
  assert.equal(await identityCommand(['--data-dir', dataDir, '--json'], sink), 0);
  return JSON.parse(out);
}

afterEach(() => {
  delete process.env.WARDEN_IDENTITY_KEY_FILE;
});

test('no agents section, no identity key; the first reload that adds one creates it', async () => {
  const dataDir = tempDataDir();
  const policyFile = tempFile('policy.yaml', head);
  const w = await start(policyFile, dataDir);
  try {
    assert.ok(existsSync(join(dataDir, 'audit.db')), 'the sidecar did use its data directory');
    assert.ok(!existsSync(join(dataDir, IDENTITY_KEY_FILE)));
    // A reload to another policy without agents does not make one either.
    writeFileSync(policyFile, `${head}mode: monitor\n`);
    assert.equal((await reload(w.adminUrl)).status, 200);
    assert.ok(!existsSync(join(dataDir, IDENTITY_KEY_FILE)));
    writeFileSync(policyFile, withAgents);
    assert.equal((await reload(w.adminUrl)).status, 200);
    const pem = readFileSync(join(dataDir, IDENTITY_KEY_FILE), 'utf8');
    assert.match(pem, /BEGIN PRIVATE KEY/);
    assert.equal(w.ctx.services.agents!.key.publicKey, (await identityJson(dataDir)).publicKey, '`warden identity` reads the key the sidecar made');
  } finally {
    await w.shutdown();
  }
});

test('`warden identity` creates the key on demand, and a sidecar that later needs one signs with it', async () => {
  const dataDir = tempDataDir();
  const printed = await identityJson(dataDir);
  assert.match(printed.source, /identity-key\.pem \(generated\)$/);
  const w = await start(tempFile('policy.yaml', withAgents), dataDir);
  try {
    assert.equal(w.ctx.services.agents!.key.publicKey, printed.publicKey);
  } finally {
    await w.shutdown();
  }
});

test('where no key can be had: a policy without agents still starts; one with agents does not start, and a reload to it is refused', async () => {
  process.env.WARDEN_IDENTITY_KEY_FILE = join(tempDataDir(), 'missing', 'identity.pem');
  await assert.rejects(start(tempFile('policy.yaml', withAgents), tempDataDir()), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /cannot load the agent identity key: .*ENOENT/);
    return true;
  });
  const policyFile = tempFile('policy.yaml', head);
  const w = await start(policyFile, tempDataDir());
  try {
    writeFileSync(policyFile, withAgents);
    const refused = await reload(w.adminUrl);
    assert.equal(refused.status, 422);
    assert.match(refused.problems!.join('\n'), /cannot load the agent identity key/);
    assert.equal(w.ctx.runtime.policy.agents, undefined, 'the last good policy keeps serving');
  } finally {
    await w.shutdown();
  }
});
