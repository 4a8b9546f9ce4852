// A sidecar that fails to start holds nothing: whatever start-up had opened before the failing step
// (the audit log and its worker, the SQLite stores, credential watches, the policy watch, SIGHUP,
// listeners) is closed before startSidecar rejects. Checked through what the process holds: file
// descriptors into the data directory (Linux), fs.watch and server handles, and SIGHUP listeners.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { ConfigError } from '../../proxy/errors.ts';
import { startSidecar, type HostPort } from '../../proxy/sidecar.ts';
import { auditRecords } from '../helpers/audit.ts';
import { tempDataDir, tempFile } from '../helpers/warden.ts';
import { secretValue } from './load.ts';

const LOOPBACK = { host: '127.0.0.1', port: 0 };

/** Paths under `dir` this process has open (empty where /proc is not there to ask). */
function openFilesUnder(dir: string): string[] {
  if (!existsSync('/proc/self/fd')) return [];
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir) ? [target] : [];
    } catch {
      return []; // closed while listing (the fd of readdir itself)
    }
  });
}

/** How many of each handle kind that start-up opens are active. */
function handles(): Record<string, number> {
  const out: Record<string, number> = { FSEventWrap: 0, TCPServerWrap: 0 };
  for (const kind of process.getActiveResourcesInfo()) if (kind in out) out[kind]++;
  return out;
}

// Handles close on the loop turn after close() is called.
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

function start(policy: string, dataDir: string, adminListen: HostPort = LOOPBACK) {
  return startSidecar({
    policyFile: tempFile('policy.yaml', policy), dataDir, listen: LOOPBACK, adminListen,
    shutdownGraceMs: 1_000, watchPolicy: true, logger: pino({ level: process.env.WARDEN_TEST_LOG_LEVEL ?? 'silent' }),
  });
}

const head = `apiVersion: warden/v1
kind: Policy
agent: { id: start-agent, version: 1.0.0 }
`;

test('an unreadable auth.tokenFile: startSidecar rejects, and the stores, the audit log and the watches it had opened are closed', async () => {
  const dataDir = tempDataDir();
  const keyFile = tempFile('openai-key', secretValue('sk-start'));
  const before = { handles: handles(), hup: process.listenerCount('SIGHUP') };
  await assert.rejects(start(`${head}auth: { tokenFile: "${join(tempDataDir(), 'no-such-token')}" }
upstreams:
  openai: { baseUrl: "http://127.0.0.1:1/v1", apiKeyFile: "${keyFile}" }
`, dataDir), (err: Error) => err instanceof ConfigError && /cannot read auth\.tokenFile .*no-such-token \(ENOENT\)/.test(err.message));
  await settle();
  // The stores were opened (so the test shows they were closed, not never opened)...
  for (const db of ['audit.db', 'escalations.db', 'tools.db', 'memory.db', 'limits.db']) assert.ok(existsSync(join(dataDir, db)), db);
  // ...and nothing of them is held now.
  assert.deepEqual(openFilesUnder(dataDir), []);
  assert.deepEqual(handles(), before.handles);
  assert.equal(process.listenerCount('SIGHUP'), before.hup);
  // The audit log was closed properly: its last record says why.
  const closed = auditRecords(dataDir, 'log_close');
  assert.equal(closed.length, 1);
  assert.equal(closed[0].reason, 'start_failed');
  // No policy here names other agents, so no identity key was made either.
  assert.ok(!existsSync(join(dataDir, 'identity-key.pem')));
});

test('a listener that cannot bind: the runtime, the policy watch, SIGHUP, the credential watch and the other listener are let go too', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  try {
    const dataDir = tempDataDir();
    const keyFile = tempFile('openai-key', secretValue('sk-start'));
    const before = { handles: handles(), hup: process.listenerCount('SIGHUP') };
    await assert.rejects(start(`${head}upstreams:
  openai: { baseUrl: "http://127.0.0.1:1/v1", apiKeyFile: "${keyFile}" }
`, dataDir, { host: '127.0.0.1', port: (blocker.address() as AddressInfo).port }), /cannot listen on 127\.0\.0\.1:\d+: address in use/);
    await settle();
    assert.deepEqual(openFilesUnder(dataDir), []);
    assert.deepEqual(handles(), before.handles);
    assert.equal(process.listenerCount('SIGHUP'), before.hup);
  } finally {
    blocker.close();
  }
});
