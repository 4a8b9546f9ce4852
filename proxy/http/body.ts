// Reads a request body into memory under a byte cap, refusing early when Content-Length already says
// too much, and parses JSON bodies with errors an agent can act on.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { BodyTooLargeError, InvalidJsonError, InvalidRequestError } from '../errors.ts';

/** The whole body, or a BodyTooLargeError as soon as the cap is passed (the rest is not read). */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) return Promise.reject(new BodyTooLargeError(limitBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
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
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** A JSON body's value: 400 (InvalidJsonError) for invalid UTF-8 or JSON. */
export function parseJson(body: Buffer): unknown {
  if (!isUtf8(body)) throw new InvalidJsonError('request body is not valid UTF-8');
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
