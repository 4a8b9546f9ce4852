// Streamed calls at their edges: an upstream whose last event lacks its blank line, a client that
// leaves mid-stream or while a stalled stream is being retried, or that stops reading (streamed or not). Each call still ends, reaches the
// agent whole where it can, and leaves a record of what the agent received.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditRecords } from '../helpers/audit.ts';
import { anthropicEvents, chatEvents, chatJson, script, scriptedSidecars, sse } from '../helpers/scripted.ts';
import { waitFor } from '../helpers/warden.ts';

const sidecars = scriptedSidecars('stream-edges.yaml');
const { wardenWith } = sidecars;

const streamed = (w: Sidecar, path: string, body: object, signal?: AbortSignal, headers: Record<string, string> = {}) => fetch(`${w.trafficUrl}${path}`, {
  method: 'POST', signal, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ ...body, stream: true }),
});

test('an upstream\'s last event without its blank line still reaches the agent, and counts', async () => {
  const { w, dataDir } = await wardenWith();
  script(sidecars.fake, (_req, n, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (n === 0) {
      for (const e of chatEvents('hello world').slice(0, -1)) res.write(e);
      res.end('data: [DONE]');
      return;
    }
    const events = anthropicEvents(['hi ', 'there']);
    for (const e of events.slice(0, -1)) res.write(e);
    res.end(events.at(-1)!.trimEnd());
  });
  const openai = await (await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).text();
  assert.ok(openai.endsWith('data: [DONE]'), `the agent got the last event as sent: ${JSON.stringify(openai.slice(-40))}`);
  const anthropic = await (await streamed(w, '/anthropic/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'x' }] })).text();
  assert.ok(anthropic.endsWith('data: {"type":"message_stop"}'), `the agent got message_stop: ${JSON.stringify(anthropic.slice(-60))}`);
  const [first, second] = auditRecords(dataDir).slice(-2);
  assert.equal(first.response?.value?.text, 'hello world');
  assert.equal(second.response?.value?.text, 'hi there');
});

test('a client that leaves mid-stream: the upstream call ends and the record keeps what the agent had received', async () => {
  const { w, dataDir } = await wardenWith();
  sidecars.fake.setHandler(undefined);
  const ac = new AbortController();
  const res = await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'a long story' }] }, ac.signal, { 'x-fake-scenario': 'words=400;event-delay-ms=20' });
  const reader = res.body!.getReader();
  let got = '';
  while ((got.match(/\n\n/g) ?? []).length < 6) got += new TextDecoder().decode((await reader.read()).value);
  ac.abort();
  await waitFor(() => w.ctx.inFlight === 0 && auditRecords(dataDir).length === 1, 5_000, 'the call to end and be recorded');
  const record = auditRecords(dataDir)[0];
  assert.equal(record.status, 499);
  assert.ok(typeof record.response?.value?.text === 'string' && record.response.value.text.length > 0, `partial output recorded: ${JSON.stringify(record.response)?.slice(0, 200)}`);
});

test('a client that leaves while a stalled stream is being retried: the call ends, its slot is freed, and it is recorded', async () => {
  const { w, dataDir } = await wardenWith('retries:\n  timeouts: { idleMs: 300 }\n  onStall: retry\n  backoff: { baseMs: 1, capMs: 2 }\n');
  const seen = script(sidecars.fake, (_req, n, res) => {
    if (n === 0) sse(res, chatEvents('a b c'), 0); // headers, then silence
    // The retry is never answered: the client leaves while Warden waits for it.
  });
  const ac = new AbortController();
  const call = streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, ac.signal).catch(() => undefined);
  await waitFor(() => seen.length === 2, 5_000, 'the retry to reach the upstream');
  ac.abort();
  await call;
  await waitFor(() => w.ctx.inFlight === 0 && auditRecords(dataDir).length === 1, 5_000, 'the call to end and be recorded');
  assert.equal(auditRecords(dataDir)[0].status, 499);
});

test('a success under an unexpected content type still goes through the stages: nothing rides past sanitization', async () => {
  const { w } = await wardenWith('sanitize: {}\n');
  const email = 'jane.doe@example.com';
  script(sidecars.fake, (_req, n, res) => {
    if (n === 0) {
      // JSON under a content type that does not say so.
      const body = JSON.stringify({
        id: 'chatcmpl-s', object: 'chat.completion', created: 1, model: 'gpt-4o-2024-11-20',
        choices: [{ index: 0, message: { role: 'assistant', content: `write to ${email}`, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
      });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      return;
    }
    // An event stream the agent did not ask for.
    sse(res, chatEvents(`write to ${email}`));
  });
  const ask = () => fetch(`${w.trafficUrl}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
  }).then((r) => r.text());
  const plain = await ask();
  assert.ok(plain.includes('write to') && !plain.includes(email), `masked: ${plain.slice(0, 300)}`);
  const stream = await ask();
  assert.ok(stream.includes('[DONE]') && !stream.includes(email) && !stream.includes('jane.doe'), `masked: ${stream.slice(-600)}`);
});

test('a stream that stalls after a tool call whose arguments parse: the call is not vouched for, since the model never finished it', async () => {
  const { w, dataDir } = await wardenWith('retries:\n  timeouts: { idleMs: 300 }\ntools:\n  save_contact: { args: { type: object, required: [email] } }\n');
  const base = { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-11-20' };
  const delta = (d: object) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: d, logprobs: null, finish_reason: null }] })}\n\n`;
  script(sidecars.fake, (_req, _n, res) => sse(res, [
    delta({ role: 'assistant', content: null }),
    delta({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'save_contact', arguments: '' } }] }),
    delta({ tool_calls: [{ index: 0, function: { arguments: '{"email":"a@example.com"}' } }] }),
  ], 3)); // then silence: no finish_reason, no [DONE]
  const text = await (await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'save it' }], tools: [{ type: 'function', function: { name: 'save_contact', parameters: { type: 'object' } } }] })).text();
  assert.ok(!text.includes('"arguments":"{\\"email\\"'), `the unfinished call did not reach the agent: ${text.slice(-500)}`);
  const record = auditRecords(dataDir).at(-1)!;
  const violations = (record.decisions as { stage: string; decision: string; detail?: { kind?: string } }[]).filter((d) => d.detail?.kind === 'invalid_arguments');
  assert.ok(violations.length > 0, `an invalid_arguments violation: ${JSON.stringify(record.decisions).slice(0, 800)}`);
});

test('an upstream that keeps streaming after its terminal event is cut off, not held without bound', async () => {
  const { w, dataDir } = await wardenWith();
  const junk = `data: ${JSON.stringify({ filler: 'x'.repeat(64 * 1024) })}\n\n`;
  script(sidecars.fake, (_req, _n, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of chatEvents('hello world')) res.write(e);
    // 8 MiB more after [DONE], each write waiting for the last (a real stream's pace).
    let left = 128;
    const more = () => {
      while (left-- > 0) if (!res.write(junk)) return void res.once('drain', more);
      res.end();
    };
    more();
  });
  const text = await (await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).text();
  assert.ok(text.includes('data: [DONE]'));
  assert.ok(text.length < 5 * 1024 * 1024, `the agent got ${text.length} bytes`);
  const record = auditRecords(dataDir).at(-1)!;
  assert.ok((record.decisions as { decision: string }[]).some((d) => d.decision === 'ended-after-terminal'));
  assert.equal(record.response?.value?.text, 'hello world');
});

test('an upstream stream that ends cleanly before its finish is passed on as it came, and the record says it ended unfinished', async () => {
  const { w, dataDir } = await wardenWith();
  const events = chatEvents('a b c');
  script(sidecars.fake, (_req, n, res) => sse(res, n === 0 ? events.slice(0, -2) : events));
  const cut = await (await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).text();
  assert.equal(cut, events.slice(0, -2).join(''));
  const whole = await (await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).text();
  assert.equal(whole, events.join(''));
  const [unfinished, finished] = auditRecords(dataDir).slice(-2).map((r) => ((r.decisions ?? []) as { decision: string }[]).some((d) => d.decision === 'ended-without-terminal'));
  assert.deepEqual([unfinished, finished], [true, false]);
});

test('an oversized event cut by a stall is ended where it stands: Warden\'s closing events are events of their own', async () => {
  const { w } = await wardenWith('retries:\n  timeouts: { idleMs: 300 }\n');
  script(sidecars.fake, (_req, _n, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chatEvents('hi')[0]);
    res.write(`data: ${'a'.repeat(5 * 1024 * 1024)}`); // past the 4 MiB an event may be held, then silence
  });
  const text = await (await streamed(w, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).text();
  const events = text.split('\n\n').filter(Boolean);
  const big = events.findIndex((e) => e.startsWith('data: aaaa'));
  assert.ok(big > 0, 'the oversized event went through');
  assert.match(events[big], /^data: a+$/, 'nothing of Warden\'s is glued onto the cut event');
  const after = events.slice(big + 1);
  assert.ok(after.length > 0, 'Warden closed the stream with events of its own');
  for (const e of after) {
    assert.ok(e.startsWith('data: '), e.slice(0, 80));
    if (e !== 'data: [DONE]') JSON.parse(e.slice('data: '.length));
  }
});

/** A client that sends its request and then reads nothing, with its connection left open. */
async function neverReads(url: string, path: string, body: object): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.pause(); // Node stops reading from the kernel once a few KB wait: then the kernel's buffers fill, then Warden's
  const text = JSON.stringify(body);
  socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  return socket;
}

/** An upstream that sends `chunk` as fast as it is read, until its client goes (4096 times at most); `closed` says it went. */
function firehose(contentType: string, chunk: string): { closed: () => boolean } {
  let closed = false;
  script(sidecars.fake, async (_req, _n, res) => {
    res.once('close', () => { closed = true; });
    res.writeHead(200, { 'content-type': contentType });
    const drainedOrClosed = () => new Promise<void>((resolve) => {
      const go = () => { res.off('drain', go).off('close', go); resolve(); };
      res.on('drain', go).on('close', go);
    });
    for (let i = 0; i < 4096 && !res.destroyed; i++) if (!res.write(chunk)) await drainedOrClosed();
    res.end();
  });
  return { closed: () => closed };
}

test('a client that stops reading: after the upstream\'s idleMs the call ends, its upstream request closes, its slot frees, and the record says why', async () => {
  const filler = 'x'.repeat(16 * 1024);
  const cases = [
    // A streamed model call (the stream relay), a /v1 path Warden passes through untouched (the plain
    // relay), and an MCP server's event stream (the MCP relay).
    {
      path: '/v1/chat/completions', body: { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] }, event: 'model_call', type: 'text/event-stream',
      chunk: `data: ${JSON.stringify({ id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-11-20', choices: [{ index: 0, delta: { content: filler }, logprobs: null, finish_reason: null }] })}\n\n`,
    },
    { path: '/v1/files/file-1/content', body: {}, event: 'passthrough', type: 'application/octet-stream', chunk: filler },
    {
      path: '/mcp/crm', body: { jsonrpc: '2.0', id: 1, method: 'ping' }, event: 'model_call', type: 'text/event-stream',
      chunk: `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: filler } })}\n\n`,
    },
  ];
  for (const c of cases) {
    // A total time far beyond the test's: only the stalled writes can end these calls.
    const { w, dataDir } = await wardenWith(`  crm: { baseUrl: "${sidecars.fake.url}/mcp", provider: mcp }\nretries:\n  timeouts: { idleMs: 500, totalMs: 600000 }\n`);
    const upstream = firehose(c.type, c.chunk);
    const socket = await neverReads(w.trafficUrl, c.path, c.body);
    try {
      await waitFor(() => upstream.closed() && w.ctx.inFlight === 0 && auditRecords(dataDir, c.event).length === 1, 10_000, `${c.path}: the call to end and be recorded`);
      const [record] = auditRecords(dataDir, c.event);
      assert.equal(record.stream_error, 'WARDEN_ERR_CLIENT_STALLED', c.path);
      assert.equal(record.status, 499, c.path);
      // What the agent was sent, or its size when it is past what a record keeps whole.
      if (c.event === 'model_call') assert.ok(record.response?.bytes > 0 || record.response?.value !== undefined, `${c.path}: ${JSON.stringify(record.response)?.slice(0, 200)}`);
    } finally {
      socket.destroy();
    }
  }
});

/**
 * A whole answer far bigger than the kernel's socket buffers (so Node holds the rest until the agent
 * reads), to a client that has read none of it by the time its call has ended and been recorded.
 */
async function unreadWholeAnswer(): Promise<{ socket: Socket; size: number; dataDir: string }> {
  const { w, dataDir } = await wardenWith('retries:\n  timeouts: { idleMs: 500 }\n');
  const content = 'y'.repeat(24 * 1024 * 1024);
  script(sidecars.fake, (_req, _n, res) => chatJson(res, content));
  const socket = await neverReads(w.trafficUrl, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
  await waitFor(() => w.ctx.inFlight === 0 && auditRecords(dataDir).length === 1, 20_000, 'the call to end and be recorded')
    .catch((err) => { socket.destroy(); throw err; });
  return { socket, size: content.length, dataDir };
}

test('a whole answer the agent does not read is not held after its call: the connection closes after idleMs', async () => {
  const { socket, size, dataDir } = await unreadWholeAnswer();
  try {
    await new Promise((r) => setTimeout(r, 1_500));
    // Now read: what Node had not handed to the kernel is gone, and the connection ends.
    let received = 0;
    socket.on('data', (d: Buffer) => { received += d.length; });
    socket.on('error', () => {});
    socket.resume();
    await once(socket, 'close', { signal: AbortSignal.timeout(10_000) }).catch(() => assert.fail(`still open after reading ${received} bytes`));
    assert.ok(received < size, `the agent got ${received} of ${size}+ bytes`);
    assert.equal(auditRecords(dataDir)[0].status, 200, 'the call itself was answered');
  } finally {
    socket.destroy();
  }
});

test('a slow reader of a whole answer keeps its connection: only no progress for idleMs closes it', async () => {
  const { socket, size } = await unreadWholeAnswer();
  try {
    // ~8 MB/s: the answer takes seconds to read, far past idleMs, but some of it goes out every 100 ms.
    let received = 0;
    let budget = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
      budget -= d.length;
      if (budget <= 0) socket.pause();
    });
    const pace = setInterval(() => { budget = 800 * 1024; socket.resume(); }, 100);
    try {
      await waitFor(() => received >= size || socket.destroyed, 30_000, `the whole answer (${received} bytes so far)`);
    } finally {
      clearInterval(pace);
    }
    assert.ok(received >= size, `the agent got ${received} of ${size}+ bytes`);
  } finally {
    socket.destroy();
  }
});
