// Relays an upstream response to the agent untouched, streaming, with backpressure.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { CallTiming } from './call-timing.ts';
import { clientResponseHeaders } from './headers.ts';
import type { UpstreamResponse } from './upstream-client.ts';

/** Sends status, end-to-end headers and body bytes exactly as the upstream gave them. */
export async function relay(res: ServerResponse, up: UpstreamResponse, extra: OutgoingHttpHeaders, timing: CallTiming): Promise<void> {
  res.writeHead(up.status, { ...clientResponseHeaders(up.headers, false), ...extra });
  up.body.once('data', () => {
    timing.firstByte ??= performance.now();
  });
  await pipeline(up.body, res);
  timing.upstreamEnd = performance.now();
}
