// A model upstream gone bad, installed on the fake upstream as a raw handler and chosen per request by
// the `x-hostile-upstream` header: a single 50 MB SSE line, a line that never ends, events whose data
// is not an object or not UTF-8, JSON nested 100k deep, a JSON body that is not UTF-8. Under
// /hostile-tool/{kind} the same answers come from an HTTP tool.
import type { ServerResponse } from 'node:http';
import type { RawHandler } from '../../proxy/demo/fake-upstream.ts';

export const HOSTILE_HEADER = 'x-hostile-upstream';
export const HUGE_LINE_BYTES = 50 * 1024 * 1024;
const MiB = Buffer.alloc(1024 * 1024, 0x61);

/** Writes, waiting for the socket when it is full; false once the client has gone. */
async function write(res: ServerResponse, chunk: Buffer | string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  return !res.destroyed;
}

const SSE = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

const CHUNK = (content: string) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'gpt-4o', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** Where the same fake answers as a hostile HTTP tool: `${url}${HOSTILE_TOOL_PATH}/deep-json`. */
export const HOSTILE_TOOL_PATH = '/hostile-tool';

/** The handler: answers only requests that carry the header, or tool calls under HOSTILE_TOOL_PATH. */
export const hostileUpstream: RawHandler = async (req, res) => {
  const kind = req.path.startsWith(`${HOSTILE_TOOL_PATH}/`) ? req.path.slice(HOSTILE_TOOL_PATH.length + 1) : req.headers[HOSTILE_HEADER];
  if (typeof kind !== 'string') return false;
  switch (kind) {
    case 'huge-line': {
      res.writeHead(200, SSE);
      await write(res, CHUNK('before'));
      await write(res, 'data: ');
      for (let i = 0; i < HUGE_LINE_BYTES / MiB.length; i++) if (!(await write(res, MiB))) return true;
      await write(res, `\n\n${CHUNK('after')}data: [DONE]\n\n`);
      res.end();
      return true;
    }
    case 'endless-line': {
      res.writeHead(200, SSE);
      await write(res, 'data: ');
      // Until the client (Warden) gives up on it.
      while (await write(res, MiB));
      return true;
    }
    case 'odd-events': {
      res.writeHead(200, SSE);
      for (const e of ['data: null\n\n', 'data: [1,2]\n\n', 'data: "text"\n\n', 'data: 7\n\n', 'data: {"choices":null,"model":{"toString":1}}\n\n', Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a, 0x0a]), 'event: \0\ndata: {}\n\n', CHUNK('ok'), 'data: [DONE]\n\n']) {
        await write(res, e);
      }
      res.end();
      return true;
    }
    case 'deep-json': {
      const body = `{"id":"x","model":"gpt-4o","choices":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return true;
    }
    case 'trap-json': {
      const body = '{"order_id":{"toString":1},"status":{"valueOf":1,"toString":1},"__proto__":{"status":"shipped"}}';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return true;
    }
    case 'bad-utf8-json': {
      const body = Buffer.concat([Buffer.from('{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}}]}')]);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return true;
    }
    default:
      return false;
  }
};
