// Reads a request body into memory under a byte cap, refusing early when Content-Length already says
// too much, and parses JSON bodies with errors an agent can act on.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { BodyTooLargeError, ClientTimeoutError, InvalidJsonError, InvalidRequestError } from '../errors.ts';

// The listener sets each request's deadline once; every handler's readBody honours it without
// passing it along. A body that trickles in (slow-loris) would otherwise hold a socket, a buffer and
// an in-flight slot for as long as the client likes.
const deadlines = new WeakMap<IncomingMessage, { at: number; timeoutMs: number }>();

/** Gives the request's body `timeoutMs` from now to arrive whole; readBody answers 408 past it. */
export function setBodyDeadline(req: IncomingMessage, timeoutMs: number): void {
  deadlines.set(req, { at: Date.now() + timeoutMs, timeoutMs });
}

/** The whole body, or a BodyTooLargeError as soon as the cap is passed (the rest is not read). */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) return Promise.reject(new BodyTooLargeError(limitBytes));
  const deadline = deadlines.get(req);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = deadline && !req.complete ? setTimeout(() => {
      cleanup();
      req.pause();
      reject(new ClientTimeoutError('body', deadline.timeoutMs));
    }, Math.max(0, deadline.at - Date.now())) : undefined;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        cleanup();
        // Stop reading but keep the socket: the 413 still has to go out on it.
        req.pause();
        reject(new BodyTooLargeError(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    function cleanup() {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

// No agent's request nests this deep, and everything downstream that walks a body recursively
// (JSON.stringify, schema checks, redaction, canonical hashing) would overflow the stack long before
// JSON.parse, which does not recurse, gives up: 100k nested arrays would end as a 500, not a 400.
export const MAX_JSON_DEPTH = 512;

/** True when the byte at `at` follows an odd run of backslashes. */
function escaped(body: Buffer, at: number): boolean {
  let k = at - 1;
  while (k >= 0 && body[k] === 0x5c /* backslash */) k--;
  return (at - 1 - k) % 2 === 1;
}

/** How deep arrays and objects nest in JSON bytes (strings skipped), counting only up to `cap` + 1. */
export function nestingDepth(body: Buffer, cap: number): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === 0x22 /* " */) {
      // Strings are most of a body: jump from quote to quote natively, skipping escaped ones.
      do {
        i = body.indexOf(0x22, i + 1);
        if (i === -1) return max; // unterminated: JSON.parse refuses it
      } while (escaped(body, i));
    } else if (b === 0x5b /* [ */ || b === 0x7b /* { */) {
      if (++depth > max && (max = depth) > cap) return max;
    } else if (b === 0x5d /* ] */ || b === 0x7d /* } */) depth--;
  }
  return max;
}

/** A JSON body's value: 400 (InvalidJsonError) for invalid UTF-8 or JSON, or JSON nested past MAX_JSON_DEPTH. */
export function parseJson(body: Buffer): unknown {
  if (!isUtf8(body)) throw new InvalidJsonError('request body is not valid UTF-8');
  if (nestingDepth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new InvalidJsonError(`request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidJsonError(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A JSON body that must be an object (every model API's request is). */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  const value = parseJson(body);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidRequestError('request body must be a JSON object');
  return value as Record<string, unknown>;
}
