// Relays an upstream response to the agent untouched, streaming, with backpressure.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { CallTiming } from './call-timing.ts';
import { clientResponseHeaders } from './headers.ts';
import { drained } from './respond.ts';
import type { UpstreamResponse } from './upstream-client.ts';

/**
 * Sends status, end-to-end headers and body bytes exactly as the upstream gave them. The last chunk
 * waits for `beforeEnd` (the audit record's commit under strict durability): with Content-Length
 * framing a client holding every byte has the whole response, so holding only the end would not do.
 * A write waits at most `maxWaitMs` for the agent to read (see `drained`).
 */
export async function relay(
  res: ServerResponse, up: UpstreamResponse, extra: OutgoingHttpHeaders, timing: CallTiming, beforeEnd: () => Promise<void>, maxWaitMs: number,
): Promise<void> {
  res.writeHead(up.status, { ...clientResponseHeaders(up.headers, false), ...extra });
  let held: Buffer | undefined;
  for await (const chunk of up.body as AsyncIterable<Buffer>) {
    timing.firstByte ??= performance.now();
    if (held && !res.write(held)) await drained(res, maxWaitMs);
    held = chunk;
  }
  timing.upstreamEnd = performance.now();
  await beforeEnd();
  res.end(held);
}
