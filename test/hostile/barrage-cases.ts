// The hostile requests the barrage sends over raw sockets, each with what must come back and how many
// audit records it must leave. Records: a request whose headers Node's parser accepted reached
// Warden's handler and leaves one, whatever became of it (a call's record, or for one refused before
// it became a call, such as a bad path, an `event: request` record; a client that left, status 499).
// Bytes the parser refused (bad framing, smuggling, invalid characters, oversized headers, headers
// too slow, HTTP/1.1 without Host, CONNECT) never became a request and leave none: Warden answers
// those from its clientError handler (Node itself for a missing Host) and logs them.
import type { Socket } from 'node:net';
import { requestBytes, sleep } from './raw-exchange.ts';

/** What one response must be. `warden-*`: Warden's own error, in that SDK's shape; `pass`: an upstream's or tool's answer. */
export interface Expect {
  status: number;
  shape: 'warden-openai' | 'warden-anthropic' | 'warden-mcp' | 'node' | 'pass';
  code?: string;
}

export interface Case {
  name: string;
  send: Buffer | ((socket: Socket) => Promise<void>);
  /** One per response the connection must carry; empty: none at all. */
  expect: Expect[];
  records: number;
  /** Warden must close the connection after its answer. */
  closes?: boolean;
}

const J = 'content-type: application/json';
const openai = (status: number, code: string): Expect => ({ status, shape: 'warden-openai', code });
const anthropic = (status: number, code: string): Expect => ({ status, shape: 'warden-anthropic', code });
const mcp = (status: number, code: string): Expect => ({ status, shape: 'warden-mcp', code });
const pass = (status: number): Expect => ({ status, shape: 'pass' });
const malformed = openai(400, 'WARDEN_ERR_MALFORMED_HTTP');

function post(path: string, body: string | Buffer, extra: string[] = []): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return requestBytes([`POST ${path} HTTP/1.1`, 'host: warden', J, 'accept: application/json, text/event-stream', `content-length: ${bytes.length}`, ...extra].join('\r\n'), bytes);
}
const get = (path: string, extra: string[] = []) => requestBytes([`GET ${path} HTTP/1.1`, 'host: warden', ...extra].join('\r\n'));
const raw = (text: string) => Buffer.from(text, 'latin1');

const chat = (content: string) => JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
const DEEP = '['.repeat(100_000) + ']'.repeat(100_000);
const TRAP = { toString: 1, valueOf: 1 };
export const OVER_CAP = 300 * 1024; // the barrage policy's limits.maxBodyBytes is 256KiB

/** Sends `start`, then header bytes one at a time, forever (until the server cuts it). */
function trickleHeaders(start: string) {
  return async (s: Socket) => {
    for (const ch of start) {
      if (s.destroyed) return;
      s.write(ch);
      await sleep(200);
    }
    while (!s.destroyed) {
      s.write('a');
      await sleep(200);
    }
  };
}

/** Sends the head, then the body one byte at a time, forever (until the server cuts it). */
function trickle(head: string, chunked = false) {
  return async (s: Socket) => {
    s.write(`${head}\r\n\r\n`);
    for (let i = 0; !s.destroyed; i++) {
      s.write(chunked ? '1\r\n \r\n' : i === 0 ? '{' : ' ');
      await sleep(200);
    }
  };
}

export const CASES: Case[] = [
  // Bodies Warden parses.
  { name: 'malformed JSON (chat)', send: post('/v1/chat/completions', '{"model":'), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'malformed JSON (messages)', send: post('/anthropic/v1/messages', '{nope'), expect: [anthropic(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'JSON 100k arrays deep', send: post('/v1/chat/completions', DEEP), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'JSON 100k deep inside a valid request', send: post('/v1/responses', `{"model":"gpt-4o","input":"hi","metadata":${DEEP}}`), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'invalid UTF-8', send: post('/v1/chat/completions', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'raw NUL in a JSON string', send: post('/v1/chat/completions', '{"model":"gpt-4o","messages":[{"role":"user","content":"a\0b"}]}'), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'escaped NUL and a lone surrogate', send: post('/v1/chat/completions', chat('a\\u0000b\\ud800').replace(/\\\\/g, '\\')), expect: [pass(200)], records: 1 },
  { name: 'empty body', send: post('/v1/chat/completions', ''), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'a JSON array for a body', send: post('/v1/responses', '[]'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: 'toString traps in roles, parts and tool names', send: post('/v1/chat/completions', JSON.stringify({ model: 'gpt-4o', messages: [{ role: TRAP, content: [{ type: TRAP, text: 'x' }] }], tools: [{ type: 'function', function: { name: TRAP } }] })), expect: [pass(200)], records: 1 },
  { name: 'toString trap as a content part type (Anthropic)', send: post('/anthropic/v1/messages', JSON.stringify({ model: 'claude-x', max_tokens: 5, messages: [{ role: 'user', content: [{ type: TRAP, text: 'x' }, { type: 'text', text: 'hi' }] }] })), expect: [pass(200)], records: 1 },
  { name: '__proto__ keys', send: post('/v1/chat/completions', '{"model":"gpt-4o","__proto__":{"stream":true},"messages":[{"role":"user","content":"hi","__proto__":{"role":"system"}}]}'), expect: [pass(200)], records: 1 },
  // Size caps.
  { name: 'declared body over the cap', send: requestBytes(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\n${J}\r\ncontent-length: 10485760`), expect: [openai(413, 'WARDEN_ERR_BODY_TOO_LARGE')], records: 1, closes: true },
  { name: 'chunked body over the cap', send: requestBytes(`POST /anthropic/v1/messages HTTP/1.1\r\nhost: w\r\n${J}\r\ntransfer-encoding: chunked`, `${OVER_CAP.toString(16)}\r\n${'a'.repeat(OVER_CAP)}\r\n0\r\n\r\n`), expect: [anthropic(413, 'WARDEN_ERR_BODY_TOO_LARGE')], records: 1, closes: true },
  { name: 'tool body over the cap', send: post('/tools/lookup_order', 'x'.repeat(OVER_CAP)), expect: [openai(413, 'WARDEN_ERR_BODY_TOO_LARGE')], records: 1, closes: true },
  { name: 'MCP body over the cap', send: post('/mcp/crm', 'x'.repeat(OVER_CAP)), expect: [mcp(413, 'WARDEN_ERR_BODY_TOO_LARGE')], records: 1, closes: true },
  // Framing and characters Node's HTTP parser refuses: no request, no record.
  { name: 'two Content-Lengths', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}x`), expect: [malformed], records: 0, closes: true },
  { name: 'two equal Content-Lengths', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}`), expect: [malformed], records: 0, closes: true },
  { name: 'CL.TE smuggling', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/models HTTP/1.1\r\nhost: w\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'TE.TE smuggling', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ntransfer-encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n0\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  // Refused only once the headers are complete, after Node handed the request to Warden: it leaves a record.
  { name: 'an unknown transfer coding', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ntransfer-encoding: xchunked\r\n\r\n0\r\n\r\n`), expect: [malformed], records: 1, closes: true },
  { name: 'bare CR in a header value (injection)', send: raw(`GET /v1/models HTTP/1.1\r\nhost: w\r\nx-warden-session: a\rset-cookie: x\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  // The request line says which SDK is listening, so the refusal takes its shape.
  { name: 'header injection on the Anthropic route', send: raw(`POST /anthropic/v1/messages HTTP/1.1\r\nhost: w\r\nanthropic-version: 1\rx: y\r\n\r\n`), expect: [anthropic(400, 'WARDEN_ERR_MALFORMED_HTTP')], records: 0, closes: true },
  { name: 'smuggling on the MCP route', send: raw(`POST /mcp/crm HTTP/1.1\r\nhost: w\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{}`), expect: [mcp(400, 'WARDEN_ERR_MALFORMED_HTTP')], records: 0, closes: true },
  { name: 'obs-fold header continuation (injection)', send: raw(`GET /v1/models HTTP/1.1\r\nhost: w\r\nx-warden-session: a\r\n set-cookie: x\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'NUL in a header value', send: raw(`GET /v1/models HTTP/1.1\r\nhost: w\r\nx-warden-task: a\0b\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'space before a header colon', send: raw(`GET /v1/models HTTP/1.1\r\nhost: w\r\ncontent-length : 5\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'NUL in the URL', send: raw(`GET /tools/a\0b HTTP/1.1\r\nhost: w\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'raw UTF-8 in the URL', send: raw(`GET /tools/\xc3\xa9 HTTP/1.1\r\nhost: w\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'an unknown method', send: raw(`BREW /v1/chat/completions HTTP/1.1\r\nhost: w\r\n\r\n`), expect: [malformed], records: 0, closes: true },
  { name: 'an HTTP/2 preface', send: raw('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), expect: [malformed], records: 0, closes: true },
  { name: 'a TLS hello', send: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), expect: [malformed], records: 0, closes: true },
  { name: 'a negative Content-Length', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ncontent-length: -1\r\n\r\n{}`), expect: [malformed], records: 0, closes: true },
  { name: 'a 23-digit Content-Length', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\ncontent-length: 99999999999999999999999\r\n\r\n{}`), expect: [malformed], records: 0, closes: true },
  { name: 'a 70 KB URL', send: get(`/v1/${'a'.repeat(70_000)}`), expect: [openai(431, 'WARDEN_ERR_HEADERS_TOO_LARGE')], records: 0, closes: true },
  { name: '3,000 headers', send: get('/v1/models', Array.from({ length: 3_000 }, (_, i) => `x-h${i}: 1`)), expect: [openai(431, 'WARDEN_ERR_HEADERS_TOO_LARGE')], records: 0, closes: true },
  { name: 'HTTP/1.1 without Host (Node\'s own 400)', send: raw('GET /v1/models HTTP/1.1\r\n\r\n'), expect: [{ status: 400, shape: 'node' }], records: 0, closes: true },
  { name: 'CONNECT (no tunnels)', send: raw('CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n\r\n'), expect: [], records: 0, closes: true },
  // The headers parsed, so the request reached Warden (and leaves a record); its chunked body then broke the parser.
  { name: 'a bad chunk size after good headers', send: raw(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\n${J}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`), expect: [malformed], records: 1, closes: true },
  // Paths.
  { name: '/tools/../admin', send: get('/tools/../admin'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: '/tools/%2e%2e/admin', send: get('/tools/%2e%2e/admin'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: 'encoded slashes climbing out of a tool', send: post('/tools/lookup_order%2F..%2F..%2Fadmin', '{}'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: '/tools/lookup_order/..', send: post('/tools/lookup_order/..', '{}'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: '/mcp/x/../../', send: post('/mcp/x/../../', '{}'), expect: [mcp(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: '/mcp/crm/..%2f..%2fetc', send: post('/mcp/crm/..%2f..%2fetc', '{}'), expect: [mcp(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: 'a backslash traversal', send: get('/v1/..%5c..%5cadmin'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: 'a broken percent escape', send: get('/v1/%zz'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: 'an encoded slash inside a tool name', send: post('/tools/a%2Fb', '{}'), expect: [openai(404, 'WARDEN_ERR_UNKNOWN_TOOL')], records: 1 },
  { name: 'double-encoded dots', send: post('/tools/%252e%252e', '{}'), expect: [openai(404, 'WARDEN_ERR_UNKNOWN_TOOL')], records: 1 },
  { name: 'an undeclared MCP server', send: post('/mcp/nope', '{}'), expect: [mcp(404, 'WARDEN_ERR_UNKNOWN_UPSTREAM')], records: 1 },
  { name: 'a tool with a query string', send: post('/tools/lookup_order?x=1', '{}'), expect: [openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 1 },
  { name: 'OPTIONS *', send: raw('OPTIONS * HTTP/1.1\r\nhost: w\r\n\r\n'), expect: [openai(404, 'WARDEN_ERR_ROUTE_NOT_FOUND')], records: 1 },
  { name: 'an absolute-form target', send: get('http://evil.example/v1/models'), expect: [openai(404, 'WARDEN_ERR_ROUTE_NOT_FOUND')], records: 1 },
  { name: 'an 8 KB path', send: get(`/nothing/${'a'.repeat(8_000)}`), expect: [openai(404, 'WARDEN_ERR_ROUTE_NOT_FOUND')], records: 1 },
  { name: 'a WebDAV method on a model path (passes through)', send: raw('PROPFIND /v1/chat/completions HTTP/1.1\r\nhost: w\r\n\r\n'), expect: [pass(404)], records: 1 },
  // Odd header values Node lets through, and pipelining.
  { name: 'latin-1 session, traversal in the task id, a literal %0d%0a', send: post('/v1/chat/completions', chat('hi'), ['x-warden-session: \xff\xfe\x80', 'x-warden-task: ../../etc/passwd', 'x-warden-tool-call-id: a%0d%0aset-cookie: x']), expect: [pass(200)], records: 1 },
  { name: 'three pipelined requests', send: Buffer.concat([post('/v1/chat/completions', '{'), get('/v1/models'), get('/tools/../x')]), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON'), pass(200), openai(400, 'WARDEN_ERR_INVALID_REQUEST')], records: 3 },
  // Tools and MCP.
  { name: 'tool: malformed JSON', send: post('/tools/lookup_order', '{"order_id":'), expect: [openai(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'tool: a toString trap for an argument', send: post('/tools/lookup_order', JSON.stringify({ order_id: TRAP })), expect: [pass(200)], records: 1 },
  { name: 'a tool that answers JSON 100k deep', send: post('/tools/deep_result', '{}'), expect: [pass(200)], records: 1 },
  { name: 'a tool that answers toString traps and __proto__', send: post('/tools/trap_result', '{}'), expect: [pass(200)], records: 1 },
  { name: 'MCP: malformed JSON', send: post('/mcp/crm', '{"jsonrpc":'), expect: [mcp(400, 'WARDEN_ERR_INVALID_JSON')], records: 1 },
  { name: 'MCP: a toString trap for a tool name', send: post('/mcp/crm', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: TRAP, arguments: {} } })), expect: [pass(200)], records: 1 },
  { name: 'MCP: a batch of junk', send: post('/mcp/crm', JSON.stringify([1, null, 'x', { id: {}, method: 'tools/call', params: null }, { id: 2, method: { a: 1 } }])), expect: [pass(200)], records: 1 },
];

/** Clients too slow to finish a request (the barrage runs Warden with a 1 s header and 1.5 s body deadline). */
export const SLOW_CASES: Case[] = [
  { name: 'headers one byte at a time', send: trickleHeaders('GET /v1/models HTTP/1.1\r\nhost: w\r\nx-a: '), expect: [openai(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 0, closes: true },
  { name: 'a connection that never sends a byte', send: async () => {}, expect: [openai(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 0, closes: true },
  { name: 'a keep-alive request, then a second one too slow', send: async (s) => {
    s.write(get('/v1/models'));
    await sleep(300);
    await trickleHeaders('GET /v1/models HTTP/1.1\r\nhost: w\r\n')(s);
  }, expect: [pass(200), openai(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 1, closes: true },
  // Between requests a keep-alive connection is idle, not slow: keepAliveTimeout governs it, not the header deadline.
  { name: 'a keep-alive connection idle past the header deadline', send: async (s) => {
    s.write(get('/v1/models'));
    await sleep(2_500);
    s.write(get('/v1/models'));
  }, expect: [pass(200), pass(200)], records: 2 },
  { name: 'a chat body that trickles', send: trickle(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\n${J}\r\ncontent-length: 100000`), expect: [openai(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 1, closes: true },
  { name: 'a chunked messages body that trickles', send: trickle(`POST /anthropic/v1/messages HTTP/1.1\r\nhost: w\r\n${J}\r\ntransfer-encoding: chunked`, true), expect: [anthropic(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 1, closes: true },
  { name: 'a tool body that trickles', send: trickle(`POST /tools/lookup_order HTTP/1.1\r\nhost: w\r\n${J}\r\ncontent-length: 1000`), expect: [openai(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 1, closes: true },
  { name: 'an MCP body that trickles', send: trickle(`POST /mcp/crm HTTP/1.1\r\nhost: w\r\n${J}\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked`, true), expect: [mcp(408, 'WARDEN_ERR_CLIENT_TIMEOUT')], records: 1, closes: true },
  // Answered before the body matters, and the connection is not kept for the rest of it.
  { name: 'a trickling body to an unknown route', send: trickle(`POST /nothing HTTP/1.1\r\nhost: w\r\n${J}\r\ncontent-length: 1000`), expect: [openai(404, 'WARDEN_ERR_ROUTE_NOT_FOUND')], records: 1, closes: true },
  { name: 'a client that leaves halfway through its body', send: async (s) => {
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: w\r\n${J}\r\ncontent-length: 1000\r\n\r\n{"model":`);
    await sleep(300);
    s.destroy();
  }, expect: [], records: 1 },
];
