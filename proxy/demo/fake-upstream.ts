// A fake model upstream that speaks the OpenAI (chat completions, responses, embeddings, models) and
// Anthropic (messages, count_tokens, models) wire formats, JSON and SSE, closely enough that the
// official SDKs parse all of it. `warden demo`, the integration tests and the benchmarks run on it,
// so it is dependency-free, deterministic and cheap per request. OpenAI's base URL is `${url}/v1`,
// Anthropic's is `${url}`; GET /v1/models answers in Anthropic's shape when anthropic-version is sent.
//
// What the model says (fakeReplyFor computes it without a server):
// - when the last message is a tool result: "Tool said: <the result>";
// - when the request declares tools and the last user message holds `[[call NAME {json args}]]`
//   markers: one tool call per marker, arguments verbatim (NAME need not be declared). A tool_choice
//   naming a function forces a call to it (its marker's arguments, else {}); required/any without a
//   marker calls the first tool with {}; none forbids calls;
// - otherwise "You said: <the last user message>".
// Echoed text has its whitespace collapsed and keeps its first 64 words. `words=N` repeats the
// reply's words to exactly N; the request's max tokens cut it (finish "length" / "max_tokens").
// Usage: input tokens = ceil(characters of all message text, system prompt and tool results
// included, / 4) + 3 per message (a system prompt or instructions count as one message); output
// tokens = the reply's word count, or ceil((name + arguments characters) / 4) per tool call.
//
// Scenarios: the request header `x-fake-scenario`, `;`-separated `key=value` (bad ones get a 400):
//   status=N          answer with that error (400 401 403 404 429 500 503 529 …) in the provider's shape
//   retry-after=N     add Retry-After: N to the error
//   delay-ms=N        wait N ms before the response headers
//   event-delay-ms=N  wait N ms between SSE events
//   stall-after=N     write N SSE events, then nothing until the client leaves (60 s at most); a JSON
//                     reply stalls before its first byte
//   reset-after=N     write N SSE events, then destroy the socket; a JSON reply resets before any byte
//   words=N           make a text reply exactly N words long
//   logprob=X         every token's logprob, when the request asks for logprobs
//   times=N           status, stall-after and reset-after apply to the first N requests carrying this
//                     exact scenario header, then it is answered normally (a transient failure to retry)
//   id=N              ignored: makes a scenario header unique, so its `times` count starts afresh
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ANTHROPIC, countTokensTurn, messagesTurn, sendAnthropicModels, sendMessage, sendTokenCount } from './fake-anthropic.ts';
import { OPENAI, chatTurn, responsesTurn, sendChat, sendEmbeddings, sendOpenAIModels, sendResponse } from './fake-openai.ts';
import { NO_SCENARIO, parseScenario, pause, writeJson, type Exchange, type Scenario } from './fake-sse.ts';

export { fakeEmbedding } from './fake-openai.ts';

export interface RecordedRequest {
  method: string;
  /** The request target as sent, query string included. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Empty once the exchange is over when the fake runs with `recordBodies: false`. */
  body: Buffer;
  /** Set true when the client closed the connection before the response finished. */
  clientClosed: boolean;
}

/** Answers a request itself when it returns true; tests install one to take over the fake. */
export type RawHandler = (req: RecordedRequest, res: ServerResponse) => boolean | Promise<boolean>;

export interface FakeUpstream {
  /** e.g. http://127.0.0.1:43123, no trailing slash. */
  url: string;
  port: number;
  /** Every request in arrival order, the last 10,000 at most. */
  requests: RecordedRequest[];
  setHandler(h: RawHandler | undefined): void;
  /** Awaited before each SSE event is written, so a test can gate a stream. */
  beforeEvent: ((eventIndex: number, req: RecordedRequest) => Promise<void>) | undefined;
  onClientClose: ((req: RecordedRequest) => void) | undefined;
  /** Closes the server and every connection. */
  close(): Promise<void>;
}

export interface FakeUpstreamOptions {
  host?: string;
  port?: number;
  /** False drops request bodies from `requests` once answered (benchmarks). */
  recordBodies?: boolean;
  /** Added before every response's headers. */
  latencyMs?: number;
}

/** A request body, already parsed; the fake reads it loosely, as the real APIs' validators would. */
export type JsonBody = Record<string, any>;

/** What a request asks of the model, read from any of the APIs by its provider module. */
export interface FakeTurn {
  /** The model that serves the request: the dated snapshot of an alias, else the name asked for. */
  model: string;
  /** Every text the model reads, for the input-token count. */
  texts: string[];
  messages: number;
  lastUser: string;
  /** Set when the last message is a tool result. */
  toolResult?: string;
  tools: string[];
  toolChoice: 'auto' | 'none' | 'required' | { name: string };
  maxTokens?: number;
}

export interface FakeToolCall {
  name: string;
  /** JSON text. */
  arguments: string;
}

export interface FakeReply {
  model: string;
  /** Empty when the reply is tool calls. */
  text: string;
  toolCalls: FakeToolCall[];
  finish: 'stop' | 'length' | 'tool_calls';
  inputTokens: number;
  outputTokens: number;
}

/** The provider-specific parts the server needs outside a route. */
export interface FakeProvider {
  newRequestId(): string;
  badJsonMessage: string;
  /** Sends an error in the provider's shape; without a message, what the real API says for the status. */
  error(ex: Exchange, status: number, message?: string, model?: string): void;
}

interface Route {
  provider: FakeProvider;
  /** Reads what the model is asked; a string is the message of a 400. */
  read?(body: JsonBody): FakeTurn | string;
  send(ex: Exchange, body: JsonBody, reply: FakeReply | undefined): void | Promise<void>;
}

const ROUTES = new Map<string, Route>([
  ['POST /v1/chat/completions', { provider: OPENAI, read: chatTurn, send: sendChat }],
  ['POST /v1/responses', { provider: OPENAI, read: responsesTurn, send: sendResponse }],
  ['POST /v1/embeddings', { provider: OPENAI, send: sendEmbeddings }],
  ['POST /v1/messages', { provider: ANTHROPIC, read: messagesTurn, send: sendMessage }],
  ['POST /v1/messages/count_tokens', { provider: ANTHROPIC, read: countTokensTurn, send: sendTokenCount }],
]);
// Both APIs list models under /v1/models; the Anthropic SDK always sends anthropic-version, OpenAI's never.
const OPENAI_MODELS: Route = { provider: OPENAI, send: sendOpenAIModels };
const ANTHROPIC_MODELS: Route = { provider: ANTHROPIC, send: sendAnthropicModels };

function findRoute(method: string, path: string, anthropic: boolean): Route | undefined {
  if (method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) return anthropic ? ANTHROPIC_MODELS : OPENAI_MODELS;
  return ROUTES.get(`${method} ${path}`);
}

const ECHO_WORDS = 64;
const CALL_MARKER = /\[\[call\s+([\w.-]+)\s*(\{[\s\S]*?\})?\s*\]\]/g;

function echoWords(text: string): string[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/, ECHO_WORDS);
}

function plannedCalls(turn: FakeTurn): FakeToolCall[] {
  const choice = turn.toolChoice;
  if (turn.tools.length === 0 || choice === 'none') return [];
  const marked = Array.from(turn.lastUser.matchAll(CALL_MARKER), (m) => ({ name: m[1], arguments: m[2] ?? '{}' }));
  if (typeof choice === 'object') {
    const forced = marked.filter((call) => call.name === choice.name);
    return forced.length > 0 ? forced : [{ name: choice.name, arguments: '{}' }];
  }
  if (marked.length > 0 || choice === 'auto') return marked;
  return [{ name: turn.tools[0], arguments: '{}' }];
}

/** Decides the reply and its usage, by the rules at the top of this file. */
function planReply(turn: FakeTurn, scenario: Scenario): FakeReply {
  let chars = 0;
  for (const text of turn.texts) chars += text.length;
  const inputTokens = Math.ceil(chars / 4) + 3 * turn.messages;
  const toolCalls = turn.toolResult === undefined ? plannedCalls(turn) : [];
  if (toolCalls.length > 0) {
    const outputTokens = toolCalls.reduce((n, call) => n + Math.ceil((call.name.length + call.arguments.length) / 4), 0);
    return { model: turn.model, text: '', toolCalls, finish: 'tool_calls', inputTokens, outputTokens };
  }
  const lead = turn.toolResult === undefined ? ['You', 'said:'] : ['Tool', 'said:'];
  let words = [...lead, ...echoWords(turn.toolResult ?? turn.lastUser)];
  if (scenario.words !== undefined) {
    const base = words;
    words = Array.from({ length: scenario.words }, (_, i) => base[i % base.length]);
  }
  const cut = turn.maxTokens !== undefined && words.length > turn.maxTokens;
  if (cut) words = words.slice(0, turn.maxTokens);
  return { model: turn.model, text: words.join(' '), toolCalls: [], finish: cut ? 'length' : 'stop', inputTokens, outputTokens: words.length };
}

/** The reply and usage the fake gives for a POST body on a model path, e.g. /v1/chat/completions. */
export function fakeReplyFor(path: string, body: JsonBody, scenario?: string): FakeReply {
  const read = ROUTES.get(`POST ${path}`)?.read;
  if (!read) throw new Error(`the fake has no model route ${path}`);
  const turn = read(body);
  const parsed = parseScenario(scenario);
  if (typeof turn === 'string') throw new Error(turn);
  if (typeof parsed === 'string') throw new Error(parsed);
  return planReply(turn, parsed);
}

const MAX_RECORDED = 10_000;
// Longer than any client's idle timeout (undici: 4 s), so the client, not the fake, closes idle sockets
// and never sends a request onto a socket the fake is closing.
const KEEP_ALIVE_MS = 65_000;
const EMPTY = Buffer.alloc(0);
const CLOSED = new Error('the connection closed');

// Plain events rather than `for await`: the async iterator costs more than the parsing on the hot path.
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
    // After 'end' this is a no-op; before it, the client left mid-body.
    req.on('close', () => reject(CLOSED));
  });
}

function parseBody(body: Buffer): JsonBody | undefined {
  try {
    const value = JSON.parse(body.toString());
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the fake on a loopback port chosen by the OS unless told otherwise. */
export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const { host = '127.0.0.1', port = 0, recordBodies = true, latencyMs = 0 } = opts;
  const requests: RecordedRequest[] = [];
  let handler: RawHandler | undefined;
  // Requests per scenario header, for `times=N` (bounded: the demo and tests use a handful).
  const failuresSeen = new Map<string, number>();
  let closing: Promise<void> | undefined;

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rec: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: EMPTY, clientClosed: false };
    if (requests.length >= MAX_RECORDED) requests.shift();
    requests.push(rec);
    // Most exchanges never wait on anything, so their AbortController (and the DOMException an abort
    // builds) is made only when something asks for the signal.
    let controller: AbortController | undefined;
    let ended = false;
    let resetByUs = false;
    res.on('close', () => {
      ended = true;
      controller?.abort(CLOSED);
      if (!recordBodies) rec.body = EMPTY;
      if (res.writableFinished || resetByUs || closing) return;
      rec.clientClosed = true;
      fake.onClientClose?.(rec);
    });
    rec.body = await readBody(req);
    if (handler && (await handler(rec, res))) return;

    const query = rec.path.indexOf('?');
    const path = query < 0 ? rec.path : rec.path.slice(0, query);
    const anthropic = req.headers['anthropic-version'] !== undefined;
    const route = findRoute(rec.method, path, anthropic);
    const provider = route?.provider ?? (anthropic ? ANTHROPIC : OPENAI);
    const ex: Exchange = {
      rec, res, scenario: NO_SCENARIO, requestId: provider.newRequestId(), startedAt: performance.now(), hooks: fake,
      get signal() {
        if (!controller) {
          controller = new AbortController();
          if (ended) controller.abort(CLOSED);
        }
        return controller.signal;
      },
      reset() {
        resetByUs = true;
        res.destroy();
      },
    };
    let scenario = parseScenario(req.headers['x-fake-scenario']);
    if (typeof scenario === 'string') return provider.error(ex, 400, scenario);
    if (scenario.times !== undefined) {
      const key = String(req.headers['x-fake-scenario']);
      const seen = (failuresSeen.get(key) ?? 0) + 1;
      failuresSeen.set(key, seen);
      if (seen > scenario.times) scenario = { ...scenario, status: undefined, stallAfter: undefined, resetAfter: undefined };
    }
    ex.scenario = scenario;
    const waitMs = latencyMs + scenario.delayMs;
    if (waitMs > 0 && !(await pause(waitMs, ex.signal))) return;

    const body = rec.method === 'POST' ? parseBody(rec.body) : {};
    if (scenario.status !== undefined) {
      return provider.error(ex, scenario.status, undefined, typeof body?.model === 'string' ? body.model : undefined);
    }
    if (!route) return provider.error(ex, 404, `Invalid URL (${rec.method} ${path})`);
    if (!body) return provider.error(ex, 400, provider.badJsonMessage);
    const turn = route.read?.(body);
    if (typeof turn === 'string') return provider.error(ex, 400, turn);
    await route.send(ex, body, turn && planReply(turn, scenario));
  }

  const server = createServer((req, res) => {
    serve(req, res).catch((err: Error) => {
      // A client gone mid-body lands here too; only a live exchange deserves an answer.
      if (res.headersSent || res.destroyed || req.destroyed) return void res.destroy();
      // A bug in the fake or a raw handler fails its one request loudly, never the process.
      writeJson(res, 500, {}, { error: { message: `fake upstream: ${err?.stack ?? err}`, type: 'fake_upstream_error' } });
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const fake: FakeUpstream = {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    requests,
    setHandler(h) {
      handler = h;
    },
    beforeEvent: undefined,
    onClientClose: undefined,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive and stalled connections would hold close() for a minute; end them all now.
        server.closeAllConnections();
      });
      return closing;
    },
  };
  return fake;
}
