// Streams are relayed event by event (never buffered whole), and an agent that hangs up mid-stream
// closes the upstream request too.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;

before(async () => {
  fake = await startFakeUpstream();
  // A pinned model makes Warden rewrite the request, while every event still passes untouched.
  warden = await startWarden(tempFile('s.yaml', policyFor(fake.url, 'usage: { streamUsage: client }\nmodels:\n  gpt-4o: { pin: gpt-4o-2024-11-20 }\n')));
});
after(async () => {
  fake.beforeEvent = undefined;
  fake.onClientClose = undefined;
  await warden.shutdown();
  await fake.close();
});

function countEvents(text: string): number {
  return text.split('\n\n').length - 1;
}

for (const [name, path, body] of [
  ['openai chat', '/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'one two three four five six' }] }],
  ['anthropic messages', '/anthropic/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'one two three four' }] }],
] as const) {
  test(`${name}: the client has event k before the upstream releases event k+1`, async () => {
    const gates: (() => void)[] = [];
    fake.beforeEvent = (i) => new Promise<void>((resolve) => {
      gates[i] = resolve;
    });
    const res = await request(`${warden.trafficUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    let received = '';
    let ended = false;
    res.body.on('data', (d: Buffer) => (received += d.toString()));
    res.body.on('end', () => (ended = true));
    let k = 0;
    for (; ; k++) {
      await waitFor(() => gates[k] !== undefined || ended, 5_000, `upstream waiting on event ${k}`);
      if (ended) break;
      assert.equal(countEvents(received), k, `client has exactly the ${k} released events before event ${k} is released`);
      gates[k]();
      await waitFor(() => countEvents(received) === k + 1, 5_000, `event ${k} to reach the client`);
    }
    assert.ok(k >= 5, `saw ${k} gated events`);
    fake.beforeEvent = undefined;
  });
}

test('a client abort mid-stream closes the upstream request', async () => {
  let closed: string | undefined;
  fake.onClientClose = (req) => (closed = req.path);
  const controller = new AbortController();
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', signal: controller.signal,
    headers: { 'content-type': 'application/json', 'x-fake-scenario': 'words=400;event-delay-ms=20' },
    body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'long story' }] }),
  });
  let events = 0;
  await new Promise<void>((resolve) => {
    res.body.on('data', (d: Buffer) => {
      events += countEvents(d.toString());
      if (events >= 3) resolve();
    });
  });
  controller.abort();
  res.body.on('error', () => {});
  await waitFor(() => closed !== undefined, 5_000, 'the fake upstream to see the close');
  assert.equal(closed, '/v1/chat/completions');
  const last = fake.requests.at(-1)!;
  assert.equal(last.clientClosed, true);
});
