// One parsed upstream SSE event after the stream stages, written back as wire events: usually the
// event itself (untouched bytes when nothing changed), sometimes several (a stage released held text
// before a channel's closing event). Events a stage adds shift the numbering of the events after them
// on providers that number their events (the Responses API's sequence_number).
// A continuation (a second request that picks up a stalled answer) has its events mapped in too.
import type { StreamEvent } from '../canonical.ts';
import type { Continuation, EndpointAdapter, HeldEvent, Json, ParsedStreamEvent } from '../providers/types.ts';
import { stringifyLike } from '../providers/exact-numbers.ts';
import type { SseEvent } from './sse.ts';

/** Renumbering state of one stream: how many events Warden has added so far. */
export interface Numbering {
  added: number;
}

/** The wire events for a parsed event whose canonical events became `events` (`changed`: not just the parsed ones). */
export function wireEvents(adapter: EndpointAdapter, ev: SseEvent, parsed: ParsedStreamEvent, events: readonly StreamEvent[], changed: boolean, numbering: Numbering): HeldEvent[] {
  const field = adapter.streamSequence;
  const sequence = field !== undefined && typeof parsed.data[field] === 'number' ? parsed.data[field] : undefined;
  if (!changed && (sequence === undefined || numbering.added === 0)) return [ev];
  const payloads: Json[] = changed
    ? adapter.writeStreamEvents?.(parsed, events) ?? [adapter.writeStreamEvent(parsed, events)]
    : [{ ...parsed.data }];
  if (sequence !== undefined) {
    payloads.forEach((p, i) => {
      p[field!] = sequence + numbering.added + i;
    });
    numbering.added += payloads.length - 1;
  }
  const last = payloads.length - 1;
  return payloads.map((payload, i) => {
    const data = stringifyLike(payload, ev.data!);
    // Added events are named by their type, as the provider names its events (when it names them).
    const name = ev.event === undefined ? undefined : i === last ? ev.event : String(payload.type);
    return { raw: Buffer.from(name !== undefined ? `event: ${name}\ndata: ${data}\n\n` : `data: ${data}\n\n`), event: name, data };
  });
}

/** A continuation's events, mapped into the agent's stream (its comments and keep-alives dropped). */
export function spliced(pieces: (Buffer | SseEvent)[], splice: Continuation['splice']): Buffer {
  const out: Buffer[] = [];
  for (const p of pieces) {
    if (Buffer.isBuffer(p) || p.data === undefined) continue;
    const b = splice(p.event, p.data);
    if (b) out.push(b);
  }
  return Buffer.concat(out);
}
