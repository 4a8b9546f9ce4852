// Upstream answers scripted per request, in the providers' exact wire formats, for tests that need
// each attempt of one call to differ (a 429 then a success, answers A, A, B for a jury).
import type { ServerResponse } from 'node:http';
import { after, before } from 'node:test';
import { startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempDataDir, tempFile } from './warden.ts';

/**
 * One fake upstream for a test file, started before its tests, and the sidecars they start on it
 * (`policyFor` plus `extra`), all closed after them.
 */
export function scriptedSidecars(policyName: string): { readonly fake: FakeUpstream; wardenWith(extra?: string): Promise<{ w: Sidecar; dataDir: string }> } {
  let fake: FakeUpstream | undefined;
  const running: Sidecar[] = [];
  before(async () => {
    fake = await startFakeUpstream();
  });
  after(async () => {
    await Promise.all(running.map((w) => w.shutdown()));
    await fake?.close();
  });
  const started = (): FakeUpstream => {
    if (!fake) throw new Error('the fake upstream starts before the tests');
    return fake;
  };
  return {
    get fake() {
      return started();
    },
    async wardenWith(extra = '') {
      const dataDir = tempDataDir();
      const w = await startWarden(tempFile(policyName, policyFor(started().url, extra)), false, dataDir);
      running.push(w);
      return { w, dataDir };
    },
  };
}

export type Script = (req: RecordedRequest, n: number, res: ServerResponse) => void | Promise<void>;

/** Installs a handler that answers the n-th model request (0-based) with `script`; returns the requests seen. */
export function script(fake: FakeUpstream, fn: Script): RecordedRequest[] {
  const seen: RecordedRequest[] = [];
  fake.setHandler(async (req, res) => {
    const n = seen.push(req) - 1;
    await fn(req, n, res);
    return true;
  });
  return seen;
}

/** A whole OpenAI chat completion with `text`, and token logprobs when `logprob` is given. */
export function chatJson(res: ServerResponse, text: string, opts: { logprob?: number; model?: string } = {}): void {
  const words = text.split(' ');
  const logprobs = opts.logprob === undefined ? null : { content: words.map((w) => ({ token: w, logprob: opts.logprob, bytes: [], top_logprobs: [] })), refusal: null };
  const body = JSON.stringify({
    id: 'chatcmpl-s', object: 'chat.completion', created: 1, model: opts.model ?? 'gpt-4o-2024-11-20',
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs, finish_reason: 'stop' }],
    usage: { prompt_tokens: 10, completion_tokens: words.length, total_tokens: 10 + words.length },
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The SSE events of an OpenAI chat stream saying `text` word by word. */
export function chatEvents(text: string, opts: { logprob?: number } = {}): string[] {
  const base = { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-11-20' };
  const words = text.split(/(?<= )/);
  const lp = (w: string) => (opts.logprob === undefined ? null : { content: [{ token: w, logprob: opts.logprob, bytes: [], top_logprobs: [] }], refusal: null });
  return [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] },
    ...words.map((w) => ({ ...base, choices: [{ index: 0, delta: { content: w }, logprobs: lp(w), finish_reason: null }] })),
    { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] },
  ].map((e) => `data: ${JSON.stringify(e)}\n\n`).concat('data: [DONE]\n\n');
}

/** The SSE events of an Anthropic message stream saying `text` in the given pieces. */
export function anthropicEvents(pieces: readonly string[], opts: { stop?: string } = {}): string[] {
  const ev = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  return [
    ev('message_start', { type: 'message_start', message: { id: 'msg_s', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } }),
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    ...pieces.map((p) => ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } })),
    ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
    ev('message_delta', { type: 'message_delta', delta: { stop_reason: opts.stop ?? 'end_turn', stop_sequence: null }, usage: { output_tokens: pieces.length } }),
    ev('message_stop', { type: 'message_stop' }),
  ];
}

/** Writes SSE events; with `stallAfter`, writes that many and then goes silent until the client leaves. */
export function sse(res: ServerResponse, events: readonly string[], stallAfter?: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders(); // as real APIs do: headers first, so a stall after 0 events is a silent body
  const n = stallAfter ?? events.length;
  for (const e of events.slice(0, n)) res.write(e);
  if (stallAfter === undefined) res.end();
}

/** An OpenAI-shaped error answer. */
export function errorJson(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { message: `scripted ${status}`, type: status === 429 ? 'rate_limit_exceeded' : 'server_error', code: null } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
