// A model call's answer is read by the stages, so Warden asks for it unencoded (accept-encoding:
// identity). An upstream (or a proxy before it) that compresses it anyway must not thereby carry a
// secret or a tool call past the stages as unreadable bytes: a coding Node can undo is undone, and the
// agent gets the plain answer; any other is refused.
import { pipeline, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { UpstreamEncodingError } from '../errors.ts';
import type { UpstreamResponse } from './upstream-client.ts';

const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
  // zlib has zstd from Node 23.8 (and 22.15).
  ...('createZstdDecompress' in zlib ? { zstd: () => (zlib as unknown as { createZstdDecompress(): Transform }).createZstdDecompress() } : {}),
};

/** The response with its body decoded when the upstream sent it content-coded; throws UpstreamEncodingError for a coding it cannot undo. */
export function decodedResponse(upstream: string, up: UpstreamResponse): UpstreamResponse {
  const coding = String(up.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity') return up;
  const decoder = DECODERS[coding]?.();
  if (!decoder) {
    up.body.resume();
    throw new UpstreamEncodingError(upstream, coding);
  }
  // A corrupt body fails the decoder, which the reader then sees as the upstream breaking off; the
  // message says it was the coding (the same error object reaches every listener, this one first).
  decoder.once('error', (err: Error) => {
    err.message = `the ${coding} body does not decode: ${err.message}`;
  });
  pipeline(up.body, decoder, () => {});
  const { 'content-encoding': _coding, 'content-length': _length, ...headers } = up.headers;
  return { ...up, headers, body: decoder };
}
