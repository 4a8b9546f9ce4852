// A raw HTTP/1.1 exchange over a socket, for requests an HTTP client would refuse or normalise
// (hop-by-hop headers, dot segments). Reads one response framed by Content-Length or by close.
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `head` (request line and headers, without the blank line) and `body`; resolves with the response. */
export function rawRequest(url: string, head: string, body = ''): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(new Error('raw request timed out')), 10_000);
    const finish = () => {
      const text = buf.toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return false;
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const rest = buf.subarray(Buffer.byteLength(text.slice(0, end + 4)));
      const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
      if (length !== undefined && rest.length < length) return false;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.subarray(0, length).toString('utf8') });
      return true;
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      finish();
    });
    socket.on('end', () => {
      if (!finish()) reject(new Error(`incomplete response: ${buf.toString()}`));
    });
    socket.on('error', reject);
    const bodyBytes = Buffer.from(body);
    socket.write(`${head}\r\nhost: ${hostname}:${port}\r\ncontent-length: ${bodyBytes.length}\r\n\r\n`);
    // Not end(): a half-closed socket makes Node's server drop the connection before it answers.
    socket.write(bodyBytes);
  });
}
