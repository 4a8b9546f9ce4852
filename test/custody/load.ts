// What the key-custody tests share: a record of the credential on every request the upstream saw,
// with its arrival time; a bounded load of real openai SDK clients; key-file writers the way secret
// mounts write; and the real CLI in a child process with arguments of the test's choosing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import type { FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { WARDEN_BIN, tempDataDir } from '../helpers/warden.ts';

/** A distinctive secret value: easy to search for in logs and records. */
export function secretValue(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export interface Arrival {
  /** performance.now() when the upstream had the request. */
  at: number;
  /** The credential header as the upstream received it. */
  credential: string;
}

/** Records the credential header of every request the fake receives; the fake still answers them. */
export function recordCredentials(fake: FakeUpstream, header = 'authorization'): Arrival[] {
  const seen: Arrival[] = [];
  fake.setHandler((req) => {
    seen.push({ at: performance.now(), credential: String(req.headers[header] ?? '') });
    return false;
  });
  return seen;
}

export interface LoadResult {
  ok: number;
  failures: string[];
}

/** `clients` openai SDK clients calling in a loop (no SDK retries, so every failure shows) until `stop` resolves. */
export async function runLoad(baseURL: string, clients: number, stop: Promise<void>, apiKey = 'agent-side-key'): Promise<LoadResult> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  const result: LoadResult = { ok: 0, failures: [] };
  await Promise.all(Array.from({ length: clients }, async (_, i) => {
    const client = new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 10_000 });
    for (let n = 0; !stopped; n++) {
      try {
        const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `client ${i} call ${n}` }] });
        if (!r.choices[0].message.content?.startsWith('You said')) throw new Error(`unexpected answer ${JSON.stringify(r)}`);
        result.ok++;
      } catch (err) {
        result.failures.push(String(err));
      }
    }
  }));
  return result;
}

/** Replaces the file by renaming a new one over it, as secret mounts and Vault agent do (a new inode). */
export function replaceAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Rewrites the file in place: truncated, then written (`echo new > file`). */
export function writeInPlace(file: string, text: string): void {
  writeFileSync(file, text);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface ChildWarden {
  proc: ChildProcess;
  trafficUrl: string;
  adminUrl: string;
  /** Every stdout and stderr line so far. */
  lines: string[];
  stop(): Promise<number | null>;
}

/** Runs `warden proxy` with extra arguments, and waits for its "listening" line. */
export async function spawnProxy(policyFile: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ChildWarden> {
  const proc = spawn(process.execPath, [WARDEN_BIN, 'proxy', '--policy', policyFile, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, WARDEN_DATA_DIR: tempDataDir(), WARDEN_LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
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
          if (line.includes('"warden listening"')) {
            const rec = JSON.parse(line);
            resolve({ trafficUrl: rec.trafficUrl, adminUrl: rec.adminUrl });
          }
        }
      });
    }
    void exited.then((code) => reject(new Error(`warden exited with ${code} before listening:\n${lines.join('\n')}`)));
  });
  return {
    proc, lines, ...urls,
    stop() {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}
