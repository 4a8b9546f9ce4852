// The Responses API repeats streamed content in its closing events: output_text.done and
// content_part.done carry the part's whole text, output_item.done the whole item, and
// function_call_arguments.done the whole arguments; response.completed lists the output again. Each
// becomes canonical end events carrying that content (so a stage that changed the deltas changes it
// alike, and the SDK, which checks the final output against what it streamed, agrees), and text a
// stage releases at a close is written as a delta event of its own, just before.
import type { StreamEvent } from '../canonical.ts';
import type { Json, ParsedStreamEvent } from './types.ts';
import { arr, num, obj, str } from './wire.ts';

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
const DELTAS = new Set(['response.output_text.delta', 'response.function_call_arguments.delta', 'response.output_item.added']);

type End = Extract<StreamEvent, { type: 'text-end' | 'tool-call-end' }>;

function itemEnds(item: Json | undefined, outputIndex: number): End[] {
  if (item?.type === 'function_call') return [{ type: 'tool-call-end', index: outputIndex, arguments: str(item.arguments) }];
  if (item?.type !== 'message') return [];
  return arr(item.content).map(obj).filter((p) => p?.type === 'output_text').map((p) => ({ type: 'text-end', index: 0, text: str(p!.text) }));
}

/** The end events of a closing event, in the order writeContentEnds writes them back. */
export function contentEnds(ev: Json): End[] {
  switch (ev.type) {
    case 'response.output_text.done':
      return [{ type: 'text-end', index: 0, text: str(ev.text) }];
    case 'response.content_part.done':
      return obj(ev.part)?.type === 'output_text' ? [{ type: 'text-end', index: 0, text: str(obj(ev.part)!.text) }] : [];
    case 'response.output_item.done':
      return itemEnds(obj(ev.item), num(ev.output_index) ?? 0);
    case 'response.function_call_arguments.done':
      return [{ type: 'tool-call-end', index: num(ev.output_index) ?? 0, arguments: str(ev.arguments) }];
    default:
      return TERMINAL.has(ev.type as string) ? arr(obj(ev.response)?.output).flatMap((item, i) => itemEnds(obj(item), i)) : [];
  }
}

/** Writes the end events' content back into a closing event's payload (in place), where it changed. */
export function writeContentEnds(out: Json, events: readonly StreamEvent[]): void {
  const ends = events.filter((e): e is End => e.type === 'text-end' || e.type === 'tool-call-end');
  if (ends.length === 0) return;
  let at = 0;
  const next = <T extends End['type']>(type: T): Extract<End, { type: T }> | undefined => {
    const e = ends[at];
    if (e?.type !== type) return undefined;
    at++;
    return e as Extract<End, { type: T }>;
  };
  const writeItem = (raw: unknown): unknown => {
    const item = obj(raw);
    if (item?.type === 'function_call') {
      const e = next('tool-call-end');
      return e?.arguments !== undefined && e.arguments !== item.arguments ? { ...item, arguments: e.arguments } : raw;
    }
    if (item?.type !== 'message') return raw;
    let changed = false;
    const content = arr(item.content).map((part) => {
      const p = obj(part);
      if (p?.type !== 'output_text') return part;
      const e = next('text-end');
      if (e?.text === undefined || e.text === p.text) return part;
      changed = true;
      return { ...p, text: e.text, ...(p.logprobs !== undefined ? { logprobs: [] } : {}) };
    });
    return changed ? { ...item, content } : raw;
  };
  switch (out.type) {
    case 'response.output_text.done': {
      const e = next('text-end');
      if (e?.text !== undefined && e.text !== out.text) Object.assign(out, { text: e.text, logprobs: [] });
      return;
    }
    case 'response.content_part.done': {
      const part = obj(out.part);
      const e = part?.type === 'output_text' ? next('text-end') : undefined;
      if (e?.text !== undefined && e.text !== part!.text) out.part = { ...part, text: e.text, ...(part!.logprobs !== undefined ? { logprobs: [] } : {}) };
      return;
    }
    case 'response.output_item.done':
      out.item = writeItem(out.item);
      return;
    case 'response.function_call_arguments.done': {
      const e = next('tool-call-end');
      if (e?.arguments !== undefined) out.arguments = e.arguments;
      return;
    }
    default: {
      const response = obj(out.response);
      if (!TERMINAL.has(out.type as string) || !response) return;
      const output = arr(response.output);
      const written = output.map(writeItem);
      if (written.some((w, i) => w !== output[i])) out.response = { ...response, output: written };
    }
  }
}

/** Where a delta for released content goes: the item, output and content indices of the closing event's content. */
function locate(ev: Json, e: StreamEvent): Json | undefined {
  const item = obj(ev.item);
  if (e.type === 'text') {
    if (ev.item_id !== undefined && ev.content_index !== undefined) return { item_id: ev.item_id, output_index: ev.output_index, content_index: ev.content_index };
    const output = item ? [[num(ev.output_index) ?? 0, item] as const] : arr(obj(ev.response)?.output).map((o, i) => [i, obj(o)] as const);
    const message = output.filter(([, o]) => o?.type === 'message').at(-1);
    if (!message) return undefined;
    const parts = arr(message[1]!.content);
    return { item_id: message[1]!.id, output_index: message[0], content_index: Math.max(0, parts.findLastIndex((p) => obj(p)?.type === 'output_text')) };
  }
  if (e.type !== 'tool-call') return undefined;
  if (ev.item_id !== undefined) return { item_id: ev.item_id, output_index: e.index };
  const target = item ?? obj(arr(obj(ev.response)?.output)[e.index]);
  return target ? { item_id: target.id, output_index: e.index } : undefined;
}

/** The payloads for a closing event with released content before it: the deltas, then the event. */
export function writeResponsesEvents(parsed: ParsedStreamEvent, events: readonly StreamEvent[], write: (p: ParsedStreamEvent, e: readonly StreamEvent[]) => Json): Json[] {
  const ev = parsed.data;
  if (DELTAS.has(ev.type as string)) return [write(parsed, events)];
  const sequence = ev.sequence_number !== undefined ? { sequence_number: ev.sequence_number } : {};
  const out: Json[] = [];
  const rest: StreamEvent[] = [];
  for (const e of events) {
    if (e.type !== 'text' && e.type !== 'tool-call') {
      rest.push(e);
      continue;
    }
    const content = e.type === 'text' ? e.text : e.argumentsDelta;
    const at = content === '' ? undefined : locate(ev, e);
    if (!at) continue;
    out.push(e.type === 'text'
      ? { type: 'response.output_text.delta', ...sequence, ...at, delta: content, logprobs: [] }
      : { type: 'response.function_call_arguments.delta', ...sequence, ...at, delta: content });
  }
  return [...out, write(parsed, rest)];
}
