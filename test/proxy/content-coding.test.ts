// An upstream that compresses a model call's answer though asked for none (accept-encoding: identity)
// cannot carry it past the stages: gzip, deflate and brotli are decoded and the stages read the plain
// answer, which is what the agent gets; a coding Warden cannot undo is refused with a 502.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let warden: Sidecar;

before(async () => {
  fake = await startFakeUpstream();
  warden = await startWarden(tempFile('cc.yaml', policyFor(fake.url, 'sanitize: { detectors: [email] }\nusage: { streamUsage: client }\n')));
});
after(async () => {
  await warden.shutdown();
  await fake.close();
});

const ANSWER = JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'Write to bob@example.com' }, finish_reason: 'stop' }] });
const STREAM = [
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Write to bob@example.com' }, finish_reason: null }] })}\n\n`,
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'gpt-4o', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
  'data: [DONE]\n\n',
].join('');

function serveEncoded(coding: string, encode: (b: Buffer) => Buffer, body: string, contentType: string): void {
  fake.setHandler((_req, res) => {
    res.writeHead(200, { 'content-type': contentType, 'content-encoding': coding });
    res.end(encode(Buffer.from(body)));
    return true;
  });
}

async function ask(stream = false) {
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

for (const [coding, encode] of [['gzip', gzipSync], ['deflate', deflateSync], ['br', brotliCompressSync]] as const) {
  test(`a ${coding} answer is decoded, so the stages read it: sanitized, and sent plain`, async () => {
    try {
      serveEncoded(coding, encode, ANSWER, 'application/json');
      const whole = await ask();
      assert.equal(whole.status, 200, whole.text);
      assert.equal(whole.headers['content-encoding'], undefined);
      assert.doesNotMatch(whole.text, /bob@example\.com/);
      assert.equal(JSON.parse(whole.text).choices[0].message.content, 'Write to <EMAIL>');
      serveEncoded(coding, encode, STREAM, 'text/event-stream');
      const streamed = await ask(true);
      assert.equal(streamed.headers['content-encoding'], undefined);
      assert.match(streamed.text, /<EMAIL>/);
      assert.doesNotMatch(streamed.text, /bob@example\.com/);
    } finally {
      fake.setHandler(undefined);
    }
  });
}

test('a coding Warden cannot undo is refused with a 502 in the provider\'s shape, not passed on unread', async () => {
  try {
    serveEncoded('compress', (b) => b, ANSWER, 'application/json');
    const before = fake.requests.length;
    const r = await ask();
    assert.equal(r.status, 502);
    assert.equal(fake.requests.length - before, 1, 'not asked again: the same coding would come back');
    assert.equal(JSON.parse(r.text).error.code, 'WARDEN_ERR_UPSTREAM_ENCODING');
    assert.doesNotMatch(r.text, /bob@example\.com/);
  } finally {
    fake.setHandler(undefined);
  }
});

test('a corrupt gzip answer is a 502 that says the body does not decode', async () => {
  try {
    serveEncoded('gzip', (b) => Buffer.concat([gzipSync(b).subarray(0, 10), Buffer.from('not deflate data at all')]), ANSWER, 'application/json');
    const r = await ask();
    assert.equal(r.status, 502, r.text);
    assert.match(JSON.parse(r.text).error.message, /the gzip body does not decode/);
  } finally {
    fake.setHandler(undefined);
  }
});

test('a compressed request is refused as such (400), not as invalid UTF-8', async () => {
  const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: gzipSync(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })),
  });
  const err = (await res.body.json() as { error: { message: string; code: string } }).error;
  assert.equal(res.statusCode, 400);
  assert.match(err.message, /request body is content-coded \(gzip\): send model calls as plain JSON/);
});
