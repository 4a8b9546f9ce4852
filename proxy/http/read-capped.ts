// Reads a response body whole under a byte cap, with plain stream events: on a small model call the
// promises and end-of-stream bookkeeping of a `for await` loop cost more than the rest of the read.
import type { Readable } from 'node:stream';

export interface Capped {
  /** The whole body; when `over`, the bytes that came before the chunk that passed the cap. */
  bytes: Buffer;
  /** The body passed the cap: it was destroyed and the rest left unread. */
  over: boolean;
}

function ignore(): void {}

/** What `for await` throws for a stream destroyed without an error before its end. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Reads `body` (a byte stream: Buffer chunks) whole unless it passes `limitBytes`. Rejects with the
 * stream's own error (an abort, a body timeout, a reset), so callers map it as they would any;
 * `chunks`, an empty array the caller passes, holds what arrived before the error.
 */
export function readCapped(body: Readable, limitBytes: number, chunks: Buffer[] = []): Promise<Capped> {
  if (body.readableEnded) return Promise.resolve({ bytes: Buffer.alloc(0), over: false });
  if (body.closed) {
    // Destroyed already; its 'error' may still be on its way, and must not go unheard.
    body.on('error', ignore);
    return Promise.reject(body.errored ?? prematureClose());
  }
  // A stream being destroyed (undici finishes an unread body's destroy a turn later, with an
  // AbortError) ends through the listeners below, as for any other.
  return new Promise((resolve, reject) => {
    let size = 0;
    const bytes = () => (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limitBytes) {
        cleanup();
        // undici's body answers a plain destroy with an 'error' (an AbortError) that no one waits for now.
        body.on('error', ignore);
        body.destroy();
        resolve({ bytes: bytes(), over: true });
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve({ bytes: bytes(), over: false });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    // 'close' comes after 'end' or 'error'; alone it means the stream was destroyed mid-body.
    const onClose = () => onError(prematureClose());
    function cleanup() {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    }
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    // A 'data' listener does not restart a stream someone paused; the read must not hang on it.
    body.resume();
  });
}
