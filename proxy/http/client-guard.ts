// How the traffic listener protects itself from clients that are slow or speak broken HTTP: deadlines
// for a request's headers and body (slow-loris), and an answer in Warden's error shape for requests
// Node's HTTP parser refuses. Those never reach the handler, so they leave no audit record (there is no
// request to record, only bytes); they are logged instead.
import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ClientTimeoutError, HeadersTooLargeError, MalformedHttpError, type WardenError } from '../errors.ts';
import { providers } from '../providers/index.ts';

export interface ClientTimeouts {
  /** From a connection's first byte (or a keep-alive request's) to the end of its headers. */
  headerMs: number;
  /** From the end of the headers to the end of the body; a body that trickles in is cut with a 408. */
  bodyMs: number;
}

// Agents talk to their sidecar over loopback: a minute is plenty for any body under the size cap.
export const DEFAULT_CLIENT_TIMEOUTS: ClientTimeouts = { headerMs: 30_000, bodyMs: 60_000 };

/** The http.Server options that enforce the deadlines. */
export function guardedServerOptions(t: ClientTimeouts): ServerOptions {
  return {
    headersTimeout: t.headerMs,
    // Warden's own body deadline (readBody) answers first, with a 408 in the provider's shape and a
    // record. Node's requestTimeout is the backstop for bodies no handler reads (an error answered
    // before the body came): without it such a connection would stay open for as long as it trickles.
    requestTimeout: t.headerMs + t.bodyMs + 5_000,
    // Node checks both deadlines on this interval (default 30 s, which would double a short deadline).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(t.headerMs / 4))),
    keepAliveTimeout: 65_000,
  };
}

type ClientError = Error & { code?: string; rawPacket?: Buffer };

function wardenErrorFor(err: ClientError, t: ClientTimeouts): WardenError {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ClientTimeoutError('headers', t.headerMs);
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError();
    default:
      return new MalformedHttpError(err.code ?? err.message);
  }
}

/**
 * The server's clientError handler. Like Node's default, it answers only when no response is under
 * way on the socket (bytes of a half-sent response must not be followed by another), then closes.
 */
export function answerClientError(log: Logger, t: ClientTimeouts, err: ClientError, socket: Duplex): void {
  // Node's handle on the response in progress; not in its typings, but what its own default reads.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const wardenError = wardenErrorFor(err, t);
  log.warn({ code: wardenError.code, cause: err.code ?? err.message, status: wardenError.status }, 'request refused before routing');
  // The request line, when the parser got that far, says which SDK is listening for the error.
  const head = err.rawPacket?.subarray(0, 64).toString('latin1') ?? '';
  const provider = /^[A-Z]+ \/anthropic\//.test(head) ? providers.anthropic : /^[A-Z]+ \/mcp\//.test(head) ? providers.mcp : providers.openai;
  const body = provider.errorBody(wardenError);
  socket.end(`HTTP/1.1 ${wardenError.status} ${STATUS_CODES[wardenError.status]}\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
}
