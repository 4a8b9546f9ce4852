// SIGTERM during a 3 s stream: the stream completes, new connections are refused, the process exits 0.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { policyFor, spawnWarden, tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;

before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

test('graceful shutdown drains the stream in flight and refuses new connections', async () => {
  const w = await spawnWarden(tempFile('p.yaml', policyFor(fake.url)));
  const port = Number(new URL(w.trafficUrl).port);
  const res = await request(`${w.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-scenario': 'words=30;event-delay-ms=100' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a slow answer' }] }),
  });
  let text = '';
  const done = new Promise<void>((resolve, reject) => {
    res.body.on('data', (d: Buffer) => (text += d.toString()));
    res.body.on('end', resolve);
    res.body.on('error', reject);
  });
  await waitFor(() => text.includes('data: '), 5_000, 'the first event');
  const signalledAt = Date.now();
  w.proc.kill('SIGTERM');
  await waitFor(() => refused(port), 2_000, 'new connections to be refused');
  assert.ok(!text.includes('[DONE]'), 'the stream was still running when new connections were refused');
  await done;
  assert.ok(text.trimEnd().endsWith('data: [DONE]'), 'the stream completed');
  assert.equal(await w.exited, 0);
  assert.ok(Date.now() - signalledAt > 1_000, 'the process waited for the stream');
  assert.ok(w.lines.some((l) => l.includes('"msg":"stopped"')));
});

test('a second SIGTERM during the drain exits at once (143), and the log still has its last lines', async () => {
  const w = await spawnWarden(tempFile('p2.yaml', policyFor(fake.url)));
  const res = await request(`${w.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-scenario': 'words=50;event-delay-ms=100' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'a slow answer' }] }),
  });
  let text = '';
  res.body.on('data', (d: Buffer) => (text += d.toString()));
  res.body.on('error', () => undefined);
  await waitFor(() => text.includes('data: '), 5_000, 'the first event');
  w.proc.kill('SIGTERM');
  await waitFor(() => w.lines.some((l) => l.includes('stop signal received')), 2_000, 'the first signal to be logged');
  const second = Date.now();
  w.proc.kill('SIGTERM');
  assert.equal(await w.exited, 143);
  assert.ok(Date.now() - second < 2_000, 'the second signal did not wait for the 5 s stream');
  assert.ok(!text.includes('[DONE]'));
});
