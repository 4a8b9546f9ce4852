// Raw HTTP/1.1 over a socket, for bytes no HTTP client would send: broken framing, injected header
// lines, smuggling attempts, requests that trickle in. Collects every response on the connection
// (pipelining), framed by Content-Length, chunked encoding or close.
import { connect, type Socket } from 'node:net';

export interface RawReply {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawExchange {
  replies: RawReply[];
  /** True when the server closed (or reset) the connection; false when we gave up or had enough. */
  closedByServer: boolean;
  /** Every byte the server sent. */
  raw: Buffer;
  ms: number;
}

export interface ExchangeOptions {
  /** Stop (and close our side) once this many final responses have arrived. */
  replies?: number;
  /** Give up after this long; default 10 s. */
  timeoutMs?: number;
}

/** Splits complete responses off the front of `buf`; returns them and how many bytes they used. */
export function parseReplies(buf: Buffer, atClose: boolean): { replies: RawReply[]; used: number } {
  const replies: RawReply[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const [statusLine, ...lines] = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const name = l.slice(0, l.indexOf(':')).toLowerCase();
      const value = l.slice(l.indexOf(':') + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let bodyStart = end + 4;
    let body: Buffer;
    if (status >= 100 && status < 200) {
      at = bodyStart;
      continue;
    }
    if (headers['transfer-encoding']?.includes('chunked')) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      let done = false;
      for (;;) {
        const nl = buf.indexOf('\r\n', p);
        if (nl === -1) break;
        const size = parseInt(buf.subarray(p, nl).toString('latin1'), 16);
        if (size === 0) {
          const trailerEnd = buf.indexOf('\r\n', nl + 2);
          if (trailerEnd === -1) break;
          p = trailerEnd + 2;
          done = true;
          break;
        }
        if (nl + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(nl + 2, nl + 2 + size));
        p = nl + 2 + size + 2;
      }
      if (!done && !atClose) break;
      body = Buffer.concat(parts);
      at = done ? p : buf.length;
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (buf.length - bodyStart < length && !atClose) break;
      body = buf.subarray(bodyStart, bodyStart + length);
      at = Math.min(buf.length, bodyStart + length);
    } else {
      if (!atClose) break;
      body = buf.subarray(bodyStart);
      at = buf.length;
    }
    replies.push({ status, headers, body });
  }
  return { replies, used: at };
}

/**
 * Connects, runs `script` (it writes, and may wait between writes), and resolves once the server has
 * closed the connection, the wanted number of responses arrived, or the timeout passed.
 */
export function exchange(url: string, script: (socket: Socket) => void | Promise<void>, opts: ExchangeOptions = {}): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let raw = Buffer.alloc(0);
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ replies: parseReplies(raw, closedByServer).replies, closedByServer, raw, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 10_000);
    socket.on('data', (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      if (opts.replies !== undefined && parseReplies(raw, false).replies.length >= opts.replies) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => {
      Promise.resolve(script(socket)).catch(() => finish(true));
    });
  });
}

/** One request's bytes: the request line and header lines as given (no Host or length added), then the body. */
export function requestBytes(head: string, body: string | Buffer = ''): Buffer {
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), typeof body === 'string' ? Buffer.from(body) : body]);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
