// The real `warden` command: exit codes and messages for usage errors, bad policies, and the demo.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDataDir, tempFile, WARDEN_BIN } from './helpers/warden.ts';

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [WARDEN_BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('help and unknown commands', () => {
  assert.equal(warden('help').code, 0);
  const r = warden('frobnicate');
  assert.equal(r.code, 2);
  assert.equal(r.err, 'warden: unknown command "frobnicate"\n(run `warden help` for the usage)\n');
});

test('a usage error prints one line and where the usage is, not the whole usage text', () => {
  const r = warden('audit', 'verify', '--frobnicate');
  assert.equal(r.code, 2);
  assert.equal(r.err, "warden: Unknown option '--frobnicate'\n(run `warden help audit` for the usage)\n");
  const own = warden('help', 'audit');
  assert.equal(own.code, 0);
  assert.match(own.out, /^usage: warden audit verify \[--db PATH\]/);
  assert.match(own.out, /\n {2}warden audit reship /);
  assert.doesNotMatch(own.out, /warden proxy|collector --store/);
  const none = warden('help', 'frobnicate');
  assert.equal(none.code, 2);
  assert.match(none.err, /no command "frobnicate"/);
});

test('help names every proxy flag and its env variable', () => {
  const { out } = warden('help', 'proxy');
  for (const name of ['--shutdown-grace-ms', '--client-header-timeout-ms', '--client-body-timeout-ms', '--no-watch', '--inbound-listen',
    'WARDEN_SHUTDOWN_GRACE_MS', 'WARDEN_CLIENT_HEADER_TIMEOUT_MS', 'WARDEN_CLIENT_BODY_TIMEOUT_MS', 'WARDEN_INBOUND_LISTEN']) {
    assert.ok(out.includes(name), `${name} in: ${out}`);
  }
});

test('policy check: a clean policy exits 0; a broken one exits 1 with file:line:col for every problem', () => {
  assert.equal(warden('policy', 'check', 'policies/examples/demo.yaml', 'policies/examples/minimal.yaml').code, 0);
  const bad = tempFile('bad.yaml', 'apiVersion: warden/v1\nkind: Policy\nagent: { version: 1 }\nmode: sometimes\nupstreams:\n  openai: { baseUrl: 42, tiemouts: {} }\n');
  const r = warden('policy', 'check', bad);
  assert.equal(r.code, 1);
  const lines = r.err.trim().split('\n');
  assert.ok(lines.length >= 4, r.err);
  for (const line of lines) assert.match(line, new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
  assert.equal(warden('policy', 'check').code, 2);
});

test('proxy with a broken policy starts nothing and exits 2', () => {
  const bad = tempFile('bad.yaml', 'apiVersion: warden/v1\nkind: Policy\n');
  const r = warden('proxy', '--policy', bad, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0');
  assert.equal(r.code, 2);
  assert.match(r.err, /bad\.yaml:\d+:\d+: /);
  assert.equal(warden('proxy', '--policy', bad, '--listen', 'nowhere').code, 2);
  assert.equal(warden('proxy').code, 2);
});

test('warden demo runs every scene with no keys and no servers, and exits 0', () => {
  const r = warden('demo');
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /All scenes behaved as expected/);
  assert.match(r.out, /gpt-4o-2024-11-20/);
});

test('proxy with an audit log it cannot write exits 2 with a clear message, no stack trace', () => {
  const policy = tempFile('ok.yaml', 'apiVersion: warden/v1\nkind: Policy\nagent: { id: a, version: 1 }\nupstreams:\n  openai: { baseUrl: "http://127.0.0.1:9/v1" }\n');
  // A data directory under a regular file can never be created, even by root.
  const r = spawnSync(process.execPath, [WARDEN_BIN, 'proxy', '--policy', policy, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, WARDEN_DATA_DIR: `${policy}/data` },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^warden: cannot prepare the audit log in .*ok\.yaml\/data: .*set WARDEN_DATA_DIR/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('proxy with a damaged audit log exits 2 saying to keep it as evidence, not to change the data directory', () => {
  const policy = tempFile('ok2.yaml', 'apiVersion: warden/v1\nkind: Policy\nagent: { id: a, version: 1 }\nupstreams:\n  openai: { baseUrl: "http://127.0.0.1:9/v1" }\n');
  const dir = tempDataDir();
  writeFileSync(join(dir, 'audit.db'), 'not SQLite: a file someone or something wrote over the log\n'.repeat(100));
  const r = spawnSync(process.execPath, [WARDEN_BIN, 'proxy', '--policy', policy, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, WARDEN_DATA_DIR: dir },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^warden: cannot open the audit log .*audit\.db: file is not a database \(the file is damaged or not a Warden database: move it aside \(an audit log is evidence/m);
  assert.doesNotMatch(r.stderr, /WARDEN_DATA_DIR|\n\s+at /);
});

test('a listen address that is taken exits 2 with one line naming it and its flag: traffic, admin and collector listeners', async () => {
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const port = (taken.address() as { port: number }).port;
  try {
    const policy = tempFile('ok.yaml', 'apiVersion: warden/v1\nkind: Policy\nagent: { id: a, version: 1 }\nupstreams:\n  openai: { baseUrl: "http://127.0.0.1:9/v1" }\n');
    const env = { ...process.env, WARDEN_DATA_DIR: tempDataDir() };
    const run = (...args: string[]) => spawnSync(process.execPath, [WARDEN_BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env });
    for (const [flag, other] of [['--listen', '--admin-listen'], ['--admin-listen', '--listen']]) {
      const r = run('proxy', '--policy', policy, flag, `127.0.0.1:${port}`, other, '127.0.0.1:0');
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr, `warden: cannot listen on 127.0.0.1:${port}: address in use (${flag})\n`);
    }
    const c = run('collector', '--store', `sqlite:${join(tempDataDir(), 'collector.db')}`, '--listen', `127.0.0.1:${port}`, '--tokens', tempFile('tokens', 'fleet token\n'));
    assert.equal(c.status, 2, c.stderr);
    assert.match(c.stderr, new RegExp(`^warden: cannot listen on 127\\.0\\.0\\.1:${port}: address in use \\(--listen\\)\n$`, 'm'));
    assert.doesNotMatch(c.stderr, /\n\s+at /);
    // An address no interface has.
    const r = run('proxy', '--policy', policy, '--listen', '192.0.2.1:0', '--admin-listen', '127.0.0.1:0');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^warden: cannot listen on 192\.0\.2\.1:0: address not available/);
  } finally {
    taken.close();
  }
});
