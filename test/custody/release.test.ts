// Credentials follow the running policy: each runtime leases the ones it reads, and when a reload
// has replaced it and it has closed, a key file no runtime names any more stops being watched and
// polled. Moving apiKeyFile back and forth does not pile up watches, a reload that fails releases
// what it had taken, and a credential both runtimes use is never dropped in between.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { request } from 'undici';
import { KeyCustody } from '../../proxy/auth/key-custody.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { startSidecar } from '../../proxy/sidecar.ts';
import { policyFor, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';
import { recordCredentials, replaceAtomically, secretValue, sleep } from './load.ts';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
});
after(() => fake.close());

test('a lease holds its credentials; the last lease released stops the watch, one held outside any lease stays', async () => {
  const custody = new KeyCustody({ log: pino({ level: 'silent' }), watch: true, pollMs: 50 });
  try {
    const a = { file: tempFile('a-key', secretValue('sk-a')) };
    const b = { file: tempFile('b-key', secretValue('sk-b')) };
    const first = custody.lease();
    const second = custody.lease();
    const held = first.secret(a, 'apiKeyFile');
    assert.equal(first.secret(a, 'apiKeyFile'), held, 'asked twice by one runtime, counted once');
    assert.equal(second.secret(a, 'apiKeyFile'), held, 'two runtimes share one holder');
    second.secret(b, 'apiKeyFile');
    assert.equal(custody.size, 2);
    first.release();
    assert.equal(custody.size, 2, 'the second lease still holds both');
    second.release();
    second.release();
    assert.equal(custody.size, 0);
    // A released holder's secret keeps its value, and no longer follows the file.
    const value = held.value;
    replaceAtomically(a.file, secretValue('sk-a-new'));
    await sleep(200);
    assert.equal(held.value, value);
    // A closed runtime asking again gets a read, not a new watch.
    assert.ok(first.secret(a, 'apiKeyFile').value);
    assert.equal(custody.size, 0);
    custody.secret(a, 'apiKeyFile');
    const third = custody.lease();
    third.secret(a, 'apiKeyFile');
    third.release();
    assert.equal(custody.size, 1, 'held outside a lease: for the life of the custody');
  } finally {
    custody.close();
  }
});

test('a reload to a policy with another key file stops watching the old one; switching back and forth does not pile up watches', async () => {
  const keyOf = (name: string) => {
    const value = secretValue(`sk-${name}`);
    return { value, file: tempFile(`${name}-key`, value) };
  };
  const one = keyOf('one');
  const two = keyOf('two');
  const policyWith = (keyFile: string, agentKeyFile?: string) => policyFor(fake.url).replace(`baseUrl: "${fake.url}/v1" }`, `baseUrl: "${fake.url}/v1", apiKeyFile: "${keyFile}" }`)
    + (agentKeyFile ? `auth: { tokenFile: "${agentKeyFile}" }\n` : '');
  const policyFile = tempFile('policy.yaml', policyWith(one.file));
  let logged = '';
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, done) { logged += chunk; done(); } }));
  const warden = await startSidecar({
    policyFile, dataDir: tempDataDir(), listen: { host: '127.0.0.1', port: 0 }, adminListen: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 1_000, watchPolicy: true, logger,
  });
  const custody = warden.ctx.services.custody!;
  const reload = async (text: string) => {
    replaceAtomically(policyFile, text);
    const res = await request(`${warden.adminUrl}/policy/reload`, { method: 'POST' });
    const body = await res.body.json() as { ok?: boolean };
    return { status: res.statusCode, body };
  };
  const sent = async () => {
    const seen = recordCredentials(fake);
    await (await request(`${warden.trafficUrl}/v1/models`)).body.text();
    fake.setHandler(undefined);
    return seen.at(-1)?.credential;
  };
  try {
    assert.equal(custody.size, 1);
    assert.equal(await sent(), `Bearer ${one.value}`);

    assert.equal((await reload(policyWith(two.file))).status, 200);
    assert.equal(await sent(), `Bearer ${two.value}`);
    // The old runtime closes once its pools are idle; then only the new file is held.
    await waitFor(() => custody.size === 1, 2_000, 'the old key file to be released');
    // The new file is watched (a change to it is logged within the poll's 500 ms); the old file's
    // watch and poll are gone, so a change to it is not even noticed.
    logged = '';
    two.value = secretValue('sk-two-rotated');
    replaceAtomically(two.file, two.value);
    await waitFor(() => logged.includes('credential rotated'), 2_000, 'the new file\'s rotation to be logged');
    logged = '';
    replaceAtomically(one.file, secretValue('sk-one-rotated'));
    await sleep(700);
    assert.doesNotMatch(logged, /credential (rotated|loaded)/);
    assert.equal(await sent(), `Bearer ${two.value}`);

    for (let i = 0; i < 5; i++) {
      await reload(policyWith(i % 2 ? two.file : one.file));
      await waitFor(() => custody.size === 1, 2_000, `reload ${i}: one key file held`);
    }

    // A reload that fails after taking a credential (the agent token is read, then the trusted key
    // file is missing) lets go of it: only the running policy's key stays held.
    const token = tempFile('agent-token', secretValue('wt-release'));
    const broken = `${policyWith(two.file, token)}agents: { trust: { a-agent: { publicKeyFile: "/nonexistent/a.pub" } } }\n`;
    const refused = await reload(broken);
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(custody.size, 1);
  } finally {
    await warden.shutdown();
  }
});
