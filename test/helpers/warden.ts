// Starting sidecars for black-box tests: in-process (fast) or as the real CLI in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startSidecar, type Sidecar } from '../../proxy/sidecar.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WARDEN_BIN = join(ROOT, 'bin/warden.js');

// Every temporary directory a test file makes is removed when its process exits (node:test runs
// each file in its own), so repeated runs do not fill the disk; WARDEN_TEST_KEEP=1 keeps them.
const made: string[] = [];
function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (made.push(dir) === 1 && !process.env.WARDEN_TEST_KEEP) {
    process.once('exit', () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Writes text to a fresh temporary directory and returns the file's path. */
export function tempFile(name: string, text: string): string {
  const dir = scratchDir('warden-test-');
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A policy whose openai and anthropic upstreams are the given fake, plus extra YAML. */
export function policyFor(fakeUrl: string, extra = '', agent = 'test-agent'): string {
  return `apiVersion: warden/v1
kind: Policy
agent: { id: ${agent}, version: 1.0.0 }
upstreams:
  openai: { baseUrl: "${fakeUrl}/v1" }
  anthropic: { baseUrl: "${fakeUrl}" }
${extra}`;
}

/** A fresh data directory (audit log, signing key) for one sidecar. */
export function tempDataDir(): string {
  return scratchDir('warden-data-');
}

/** Starts a sidecar in this process on ephemeral loopback ports, logging nothing. */
export async function startWarden(policyFile: string, watchPolicy = false, dataDir = tempDataDir()): Promise<Sidecar> {
  return startSidecar({
    dataDir,
    policyFile,
    listen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 5_000,
    watchPolicy,
    logger: pino({ level: process.env.WARDEN_TEST_LOG_LEVEL ?? 'silent' }),
  });
}

export interface SpawnedWarden {
  proc: ChildProcess;
  trafficUrl: string;
  adminUrl: string;
  /** Every stdout and stderr line so far (pino JSON, and whatever else the process printed). */
  lines: string[];
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `warden proxy` (with any extra arguments) as a child process and waits for its "listening" log line. */
export async function spawnWarden(policyFile: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<SpawnedWarden> {
  const proc = spawn(process.execPath, [WARDEN_BIN, 'proxy', '--policy', policyFile, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, WARDEN_DATA_DIR: tempDataDir(), ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const urls = await new Promise<{ trafficUrl: string; adminUrl: string }>((resolve, reject) => {
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          lines.push(line);
          try {
            const rec = JSON.parse(line);
            if (rec.msg === 'warden listening') resolve({ trafficUrl: rec.trafficUrl, adminUrl: rec.adminUrl });
          } catch { /* not JSON */ }
        }
      });
    }
    void exited.then((code) => reject(new Error(`warden exited with ${code} before listening:\n${lines.join('\n')}`)));
  });
  return {
    proc, lines, exited, ...urls,
    stop() {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls `check` every 20 ms until it returns true or `ms` pass; the bounded wait tests use instead of sleeps. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
