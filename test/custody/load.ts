// What the key-custody tests share: a record of the credential on every request the upstream saw,
// with its arrival time; a bounded load of real openai SDK clients; key-file writers the way secret
// mounts write; and the real CLI in a child process with arguments of the test's choosing.
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import type { FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { spawnWarden, type SpawnedWarden } from '../helpers/warden.ts';

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

/** Runs `warden proxy` with extra arguments, logging at debug, and waits for its "listening" line. */
export function spawnProxy(policyFile: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<SpawnedWarden> {
  return spawnWarden(policyFile, { WARDEN_LOG_LEVEL: 'debug', ...env }, args);
}
