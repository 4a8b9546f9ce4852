// Writing Warden's own answers: errors in the provider's shape, and the x-warden-* response headers.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ClientStalledError, type WardenError } from '../errors.ts';
import type { ProviderSpec } from '../providers/types.ts';

/** x-warden-request-id always; x-warden-actions when Warden changed anything. */
export function wardenHeaders(requestId: string, actions: readonly string[]): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { 'x-warden-request-id': requestId };
  if (actions.length > 0) h['x-warden-actions'] = [...new Set(actions)].join(',');
  return h;
}

/** Sends a Warden error as a complete JSON response in the provider's own error shape. */
export function sendError(res: ServerResponse, provider: ProviderSpec, err: WardenError, requestId: string, actions: readonly string[] = []): void {
  const body = provider.errorBody(err);
  const headers: OutgoingHttpHeaders = {
    ...wardenHeaders(requestId, actions),
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds);
  // An unread request body (413) would otherwise be parsed as the next request on this connection,
  // and one still arriving (408, or an error answered before the body came) would hold it open.
  if (err.status === 413 || res.req?.complete === false) headers.connection = 'close';
  res.writeHead(err.status, headers);
  res.end(body);
}

/**
 * Closes the connection when what Node still holds of an ended `res` stops going out for `maxWaitMs`:
 * a whole answer bigger than the socket's buffers, to an agent that stopped reading, would otherwise
 * stay in memory for as long as the connection lives, after its call has ended. A slow reader keeps
 * it open. Nothing is armed for the usual answer, which the kernel took whole as it was written.
 */
export function closeIfUnread(res: ServerResponse, maxWaitMs: number): void {
  // A response queued behind another on a pipelined connection has no socket yet: the one before it
  // is the one the agent is (or is not) reading.
  if (res.destroyed || !res.writableEnded || !res.socket || res.writableLength === 0) return;
  let held = unsent(res);
  const timer = setInterval(() => {
    const now = unsent(res);
    if (now < held) {
      held = now; // some went out: the agent is reading
      return;
    }
    clearInterval(timer);
    res.destroy();
  }, maxWaitMs);
  timer.unref();
  const done = () => clearInterval(timer);
  res.once('finish', done);
  res.once('close', done);
}

/**
 * Bytes of `res` not yet taken by the kernel. A body ended in one write stays whole in
 * `writableLength` until its last byte is out, so libuv's own count of what is left of the write in
 * progress is what shows a slow reader's progress (an internal of Node's stream handle; without it,
 * only whole writes count).
 */
function unsent(res: ServerResponse): number {
  const queued = (res.socket as { _handle?: { writeQueueSize?: number } } | null)?._handle?.writeQueueSize;
  return typeof queued === 'number' ? queued + res.writableLength : res.writableLength;
}

/**
 * Resolves when the response can take more bytes, or when the client has gone (or had gone already).
 * An agent that keeps its connection open but reads nothing would otherwise hold the call, its
 * upstream connection and its concurrency slot for as long as the socket lives (undici's idle timer
 * does not run while its body waits to be read). After `maxWaitMs` (the upstream's idleMs: the same
 * silence Warden allows the upstream; a slow reader frees the buffer long before), the response is
 * destroyed and the wait rejects with ClientStalledError, so the call ends and is recorded.
 */
export function drained(res: ServerResponse, maxWaitMs: number): Promise<void> {
  // A response already destroyed or ended will never say 'drain' or 'close' again.
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.off('drain', done);
      res.off('close', done);
      res.destroy();
      reject(new ClientStalledError(maxWaitMs));
    }, maxWaitMs);
    res.on('drain', done);
    res.on('close', done);
  });
}
