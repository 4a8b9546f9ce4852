// Fidelity: when no stage changes a call, the upstream gets the agent's exact bytes and the agent gets
// the upstream's exact bytes, JSON and SSE alike, unknown fields and event types included.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
let passthrough: Sidecar;
let pinned: Sidecar;

before(async () => {
  fake = await startFakeUpstream();
  passthrough = await startWarden(tempFile('p.yaml', policyFor(fake.url, 'usage: { streamUsage: client }\n')));
  pinned = await startWarden(tempFile('d.yaml', policyFor(fake.url, 'models:\n  gpt-4o: { pin: gpt-4o-2024-11-20, price: { inputPerMTok: 2.5, outputPerMTok: 10 } }\n')));
});
after(async () => {
  fake.setHandler(undefined);
  await passthrough.shutdown();
  await pinned.shutdown();
  await fake.close();
});

// Odd but valid JSON: spacing, escapes, a duplicate key, unknown fields, non-ASCII text.
const REQUEST = '{ "model":"gpt-4o-mini" ,"messages":[{"role":"user","content":"caf\\u00e9 ☕ \\ud83d\\ude00"}],\n"x_unknown":{"nested":[1,2.50,1e3]},"x_unknown":true }';
const RESPONSE = '{"id":"chatcmpl-x","object":"chat.completion","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"ok ✓","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11},"service_tier":"default","x_future":{"a":1}}  \n';
const SSE = [
  ': comment line\n\n',
  'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":"","x_new":1},"finish_reason":null}],"usage":null}\n\n',
  'event: x.future_event\ndata: {"type":"x.future_event","payload":[1,2]}\n\n',
  'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"hé"},"finish_reason":null}],"usage":null}\r\n\r\n',
  'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
  'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n',
  'data: [DONE]\n\n',
].join('');

function serve(body: string, contentType: string): Buffer[] {
  const received: Buffer[] = [];
  fake.setHandler((req, res) => {
    received.push(req.body);
    res.writeHead(200, { 'content-type': contentType, 'x-upstream-header': 'kept' });
    // Split the body mid-event and mid-character to exercise reassembly.
    const bytes = Buffer.from(body);
    const cut = Math.floor(bytes.length / 3);
    res.write(bytes.subarray(0, cut));
    setTimeout(() => res.end(bytes.subarray(cut)), 5);
    return true;
  });
  return received;
}

async function send(sidecar: Sidecar, path: string, body: string) {
  const res = await request(`${sidecar.trafficUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-custom-beta': 'b1' }, body });
  return { status: res.statusCode, headers: res.headers, bytes: Buffer.from(await res.body.arrayBuffer()) };
}

test('JSON: request and response bytes are identical on both sides', async () => {
  const received = serve(RESPONSE, 'application/json');
  const got = await send(passthrough, '/v1/chat/completions', REQUEST);
  assert.equal(got.status, 200);
  assert.deepEqual(received[0], Buffer.from(REQUEST));
  assert.deepEqual(got.bytes, Buffer.from(RESPONSE));
  assert.equal(got.headers['x-upstream-header'], 'kept');
  assert.equal(got.headers['x-warden-actions'], undefined);
  assert.match(String(got.headers['x-warden-request-id']), /^[0-9a-f-]{36}$/);
});

test('SSE: request and response bytes are identical on both sides', async () => {
  const body = REQUEST.replace('"gpt-4o-mini" ,', '"gpt-4o-mini" ,"stream":true,"stream_options":{"include_usage":true},');
  const received = serve(SSE, 'text/event-stream');
  const got = await send(passthrough, '/v1/chat/completions', body);
  assert.deepEqual(received[0], Buffer.from(body));
  assert.deepEqual(got.bytes, Buffer.from(SSE));
});

test('a policy with active stages still forwards exact bytes for a call no stage changed', async () => {
  const received = serve(RESPONSE, 'application/json');
  const got = await send(pinned, '/v1/chat/completions', REQUEST);
  assert.deepEqual(received[0], Buffer.from(REQUEST));
  assert.deepEqual(got.bytes, Buffer.from(RESPONSE));
});

test('a changed call keeps every field the stages did not touch', async () => {
  const received = serve(RESPONSE, 'application/json');
  await send(pinned, '/v1/chat/completions', REQUEST.replace('gpt-4o-mini', 'gpt-4o'));
  const sent = JSON.parse(received[0].toString());
  assert.equal(sent.model, 'gpt-4o-2024-11-20');
  assert.deepEqual(sent.messages, [{ role: 'user', content: 'café ☕ 😀' }]);
  assert.equal(sent.x_unknown, true);
});

test('a changed call writes numbers past a double\'s precision as they were spelt, both ways and in streams', async () => {
  // A seed past 2^53, an id of 23 digits, a decimal of 19 significant digits, an integer JavaScript
  // writes as 1e+21: JSON.parse rounds or respells them all.
  const big = '"seed":9007199254740993,"x_id":12345678901234567890123,"x_ratio":0.1234567890123456789,"x_count":1000000000000000000000';
  const received = serve(RESPONSE, 'application/json');
  await send(pinned, '/v1/chat/completions', `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],${big}}`);
  assert.match(received[0].toString(), /"model":"gpt-4o-2024-11-20"/, 'the call was changed');
  assert.ok(received[0].toString().includes(big), received[0].toString());
  const sanitizing = await startWarden(tempFile('s.yaml', policyFor(fake.url, 'sanitize: { detectors: [email] }\nusage: { streamUsage: client }\n')));
  try {
    serve(RESPONSE.replace('"content":"ok ✓"', '"content":"mail bob@example.com"').replace('"x_future":{"a":1}', `"x_future":{${big}}`), 'application/json');
    const whole = (await send(sanitizing, '/v1/chat/completions', REQUEST)).bytes.toString();
    assert.doesNotMatch(whole, /bob@example\.com/, 'the response was changed');
    assert.ok(whole.includes(big), whole);
    serve(SSE.replace('"delta":{"content":"hé"}', `"delta":{"content":"bob@example.com"},${big}`), 'text/event-stream');
    const streamed = (await send(sanitizing, '/v1/chat/completions', REQUEST.replace('"gpt-4o-mini" ,', '"gpt-4o-mini" ,"stream":true,'))).bytes.toString();
    assert.doesNotMatch(streamed, /bob@example\.com/, 'the stream was changed');
    assert.ok(streamed.includes(big), streamed);
  } finally {
    await sanitizing.shutdown();
  }
});

test('an Anthropic stream with beta fields and unknown events passes through byte for byte', async () => {
  const events = [
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
    'event: ping\ndata: {"type": "ping"}\n\n',
    'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s1","name":"web_search","input":{}}}\n\n',
    'event: x_new_event\ndata: {"type":"x_new_event"}\n\n',
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"pause_turn","stop_sequence":null},"usage":{"output_tokens":3}}\n\n',
    'event: message_stop\ndata: {"type":"message_stop"}\n\n',
  ].join('');
  const body = '{"model":"claude-x","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}],"betas_field":1}';
  const received = serve(events, 'text/event-stream; charset=utf-8');
  const got = await send(passthrough, '/anthropic/v1/messages', body);
  assert.deepEqual(received[0], Buffer.from(body));
  assert.deepEqual(got.bytes, Buffer.from(events));
});
