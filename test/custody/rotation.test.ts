// Key rotation under load (issue 7, item 4, acceptance): provider keys live only in Warden, in a
// file such as a mounted secret; when the file changes, by an atomic rename (Kubernetes, ECS, Vault
// agent) or an in-place write, the upstream sees the new key within one second, no call fails during
// the swap, and no request carries anything but the old or the new key. SIGHUP and a policy reload
// read the keys again too; a torn or empty file never replaces a key that works.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { watchFileChanges } from '../../proxy/auth/file-watch.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';
import { recordCredentials, replaceAtomically, runLoad, secretValue, sleep, spawnProxy, writeInPlace, type Arrival, type LoadResult } from './load.ts';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
});
after(() => fake.close());

/** A policy whose openai upstream is the fake, its key read from `keyFile`. */
function keyFilePolicy(keyFile: string): string {
  return tempFile('policy.yaml', policyFor(fake.url).replace(`baseUrl: "${fake.url}/v1" }`, `baseUrl: "${fake.url}/v1", apiKeyFile: "${keyFile}" }`));
}

interface Rotation {
  result: LoadResult;
  /** From the change (file write or signal) to the first request with the new key. */
  firstNewMs: number;
  callsAfterChange: number;
}

/** Runs the load, calls `change` part-way, and checks everything the acceptance criterion asks. */
async function rotateUnderLoad(trafficUrl: string, clients: number, oldKey: string, newKey: string, change: () => Promise<number>): Promise<Rotation> {
  const arrivals = recordCredentials(fake);
  let stop!: () => void;
  const load = runLoad(`${trafficUrl}/v1`, clients, new Promise<void>((resolve) => (stop = resolve)));
  let changedAt: number;
  try {
    await sleep(600);
    changedAt = await change();
    await sleep(1_500);
  } finally {
    stop();
  }
  const result = await load;
  fake.setHandler(undefined);
  assert.deepEqual(result.failures, [], 'zero failed calls');
  const old = `Bearer ${oldKey}`;
  const fresh = `Bearer ${newKey}`;
  const wrong = arrivals.filter((a) => a.credential !== old && a.credential !== fresh);
  assert.deepEqual(wrong.map((a) => a.credential.length), [], 'every request carried the old or the new key, never an empty or partial one');
  assert.ok(arrivals.some((a) => a.at < changedAt && a.credential === old), 'the old key was in use before the change');
  assert.ok(!arrivals.some((a) => a.at < changedAt && a.credential === fresh), 'the new key was not used before the change');
  const first = arrivals.findIndex((a) => a.credential === fresh);
  assert.ok(first >= 0, 'the upstream saw the new key');
  const firstNewMs = arrivals[first].at - changedAt;
  assert.ok(firstNewMs < 1_000, `the new key arrived ${firstNewMs.toFixed(0)} ms after the change (limit 1000 ms)`);
  const stale = arrivals.slice(first).filter((a: Arrival) => a.credential === old);
  assert.equal(stale.length, 0, 'no request with the old key after the first with the new one');
  return { result, firstNewMs, callsAfterChange: arrivals.filter((a) => a.at >= changedAt).length };
}

for (const [how, write] of [['an atomic rename', replaceAtomically], ['an in-place write', writeInPlace]] as const) {
  test(`key rotation under load, by ${how}: zero failed calls, the upstream sees the new key within one second`, async (t) => {
    const oldKey = secretValue('sk-rot-old');
    const newKey = secretValue('sk-rot-new');
    const keyFile = tempFile('openai-key', `${oldKey}\n`);
    const warden: Sidecar = await startWarden(keyFilePolicy(keyFile), true);
    try {
      const r = await rotateUnderLoad(warden.trafficUrl, 8, oldKey, newKey, async () => {
        const at = performance.now();
        write(keyFile, `${newKey}\n`);
        return at;
      });
      t.diagnostic(`${how}: ${r.result.ok} calls by 8 clients, ${r.callsAfterChange} after the change; first new-key request ${r.firstNewMs.toFixed(1)} ms after the file change; 0 failed`);
      const status = await (await request(`${warden.adminUrl}/status`)).body.json() as { state: string };
      assert.equal(status.state, 'green');
    } finally {
      await warden.shutdown();
    }
  });
}

test('SIGHUP makes a running `warden proxy` (file watching off) read its keys again: under load, zero failed calls, the new key within one second', async (t) => {
  const oldKey = secretValue('sk-hup-old');
  const newKey = secretValue('sk-hup-new');
  const keyFile = tempFile('openai-key', `${oldKey}\n`);
  const child = await spawnProxy(keyFilePolicy(keyFile), ['--no-watch']);
  try {
    const r = await rotateUnderLoad(child.trafficUrl, 4, oldKey, newKey, async () => {
      replaceAtomically(keyFile, `${newKey}\n`);
      // With watching off the change alone does nothing: the signal is what applies it.
      await sleep(700);
      const at = performance.now();
      child.proc.kill('SIGHUP');
      return at;
    });
    t.diagnostic(`SIGHUP: ${r.result.ok} calls by 4 clients; first new-key request ${r.firstNewMs.toFixed(1)} ms after the signal; 0 failed`);
    await waitFor(() => child.lines.some((l) => l.includes('"credential rotated"')), 2_000, 'the rotation log line');
    const line = JSON.parse(child.lines.find((l) => l.includes('"credential rotated"'))!);
    assert.equal(line.via, 'reload');
    assert.match(line.fingerprint, /^[0-9a-f]{8}$/);
    assert.match(line.previous, /^[0-9a-f]{8}$/);
    const all = child.lines.join('\n');
    assert.ok(!all.includes(oldKey) && !all.includes(newKey), 'the log names keys by fingerprint only');
  } finally {
    assert.equal(await child.stop(), 0);
  }
});

test('an empty or torn key file never replaces a working key; /status says so, and the next good write takes effect', async () => {
  const oldKey = secretValue('sk-torn-old');
  const newKey = secretValue('sk-torn-new');
  const keyFile = tempFile('openai-key', `${oldKey}\n`);
  const warden = await startWarden(keyFilePolicy(keyFile), true);
  const sent = async (): Promise<string> => {
    const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    return String(fake.requests.at(-1)!.headers.authorization);
  };
  const status = async () => (await request(`${warden.adminUrl}/status`)).body.json() as Promise<{ state: string; reasons: string[] }>;
  try {
    for (const [what, text, problem] of [
      ['empty', '', /is empty/],
      ['a line break inside', `${newKey.slice(0, 10)}\n${newKey.slice(10)}`, /line break or control character/],
      ['whitespace only', ' \n', /is empty/],
    ] as const) {
      writeInPlace(keyFile, text);
      await waitFor(async () => problem.test((await status()).reasons.join('\n')), 2_000, `/status to notice the ${what} file`);
      assert.equal(await sent(), `Bearer ${oldKey}`, `${what}: the old key stays`);
      const reasons = (await status()).reasons.join('\n');
      assert.match(reasons, problem);
      assert.match(reasons, /upstream openai: .*apiKeyFile .*still using the value read before \(fingerprint [0-9a-f]{8}\)/);
      assert.ok(!reasons.includes(oldKey.slice(7)), 'the reason never shows the key');
    }
    const at = performance.now();
    writeInPlace(keyFile, newKey);
    await waitFor(async () => (await sent()) === `Bearer ${newKey}`, 1_000, 'the new key');
    assert.ok(performance.now() - at < 1_000);
    assert.equal((await status()).state, 'green');
  } finally {
    await warden.shutdown();
  }
});

test('a key file missing at start turns /status yellow; the key is used as soon as the file appears', async () => {
  const key = secretValue('sk-late');
  const dir = tempDataDir();
  const keyFile = join(dir, 'not-yet', 'openai-key');
  const warden = await startWarden(keyFilePolicy(keyFile), true);
  try {
    const first = await (await request(`${warden.adminUrl}/status`)).body.json() as { state: string; reasons: string[] };
    assert.equal(first.state, 'yellow');
    assert.match(first.reasons.join(), /upstream openai: cannot read apiKeyFile .*openai-key \(ENOENT\)/);
    // The directory itself did not exist, so only the stat poll can see the file arrive.
    mkdirSync(join(dir, 'not-yet'));
    writeFileSync(keyFile, key);
    const seen = recordCredentials(fake);
    await waitFor(async () => {
      const res = await request(`${warden.trafficUrl}/v1/models`);
      await res.body.text();
      return seen.at(-1)?.credential === `Bearer ${key}`;
    }, 2_000, 'the key from the new file');
    fake.setHandler(undefined);
    assert.equal((await (await request(`${warden.adminUrl}/status`)).body.json() as { state: string }).state, 'green');
  } finally {
    await warden.shutdown();
  }
});

test('POST /policy/reload reads the keys again even when the policy is unchanged (file watching off)', async () => {
  const oldKey = secretValue('sk-reload-old');
  const newKey = secretValue('sk-reload-new');
  const keyFile = tempFile('openai-key', oldKey);
  const warden = await startWarden(keyFilePolicy(keyFile), false);
  try {
    const seen = recordCredentials(fake);
    const call = async () => (await request(`${warden.trafficUrl}/v1/models`)).body.text();
    await call();
    replaceAtomically(keyFile, newKey);
    await sleep(700);
    await call();
    assert.deepEqual(seen.map((a) => a.credential), [`Bearer ${oldKey}`, `Bearer ${oldKey}`], 'without watching, a change waits for a reload');
    const res = await request(`${warden.adminUrl}/policy/reload`, { method: 'POST' });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    await call();
    assert.equal(seen.at(-1)!.credential, `Bearer ${newKey}`);
  } finally {
    fake.setHandler(undefined);
    await warden.shutdown();
  }
});

test('the stat poll sees a change where the directory cannot be watched', async () => {
  const dir = join(tempDataDir(), 'mounted-later');
  const file = join(dir, 'key');
  const errors: Error[] = [];
  let changes = 0;
  const w = watchFileChanges(file, () => changes++, { pollMs: 100, onWatchError: (err) => errors.push(err) });
  try {
    assert.equal(errors.length, 1, 'no directory to watch');
    mkdirSync(dir);
    writeFileSync(file, 'k');
    await waitFor(() => changes > 0, 1_000, 'the poll to notice the file');
  } finally {
    w.close();
  }
});
