// Small readers shared by the adapters: wire bodies are untrusted JSON, so every access is checked.
import { InvalidRequestError } from '../errors.ts';
import type { Message } from '../canonical.ts';
import { stringifyLike } from './exact-numbers.ts';
import type { HeldEvent, Json, TextMap } from './types.ts';

/** The value as a plain object, or undefined. */
export function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

/** The value as an array, or an empty one. */
export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** The value as a string, or undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The value as a finite number, or undefined. */
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The request body's model, which every model endpoint requires. */
export function requireModel(body: Json, endpoint: string): string {
  const model = body.model;
  if (typeof model !== 'string' || model.length === 0) {
    throw new InvalidRequestError(`${endpoint} request needs a "model" string`);
  }
  return model;
}

/** Joins the text of a content value: a string, or an array of parts with `text` fields. */
export function joinText(content: unknown, partTypes?: ReadonlySet<string>): string {
  if (typeof content === 'string') return content;
  let out = '';
  for (const part of arr(content)) {
    const p = obj(part);
    if (!p || typeof p.text !== 'string') continue;
    // Not String(p.type): a part like {"type":{"toString":1}} would make it throw.
    if (partTypes && !partTypes.has(p.type as string)) continue;
    out += p.text;
  }
  return out;
}

/** Arguments for a tool call as JSON text, whether the wire carried text or an object. */
export function argumentsText(v: unknown): string {
  if (typeof v === 'string') return v;
  return v === undefined ? '' : JSON.stringify(v);
}

/** Parses JSON argument text for wire formats that carry objects; invalid text is kept as a string. */
export function argumentsValue(text: string): unknown {
  try {
    return text === '' ? {} : JSON.parse(text);
  } catch {
    return text;
  }
}

/** A held SSE event's JSON payload; undefined for comments and anything that is not a JSON object. */
export function payloadOf(h: HeldEvent): Json | undefined {
  if (h.data === undefined) return undefined;
  try {
    return obj(JSON.parse(h.data));
  } catch {
    return undefined;
  }
}

/** One SSE event, with an `event:` line when it has a name; numbers `source` (the event it rewrites) spelt exactly are kept so. */
export function sseBytes(data: Json, event: string | undefined, source?: string): Buffer {
  const text = source === undefined ? JSON.stringify(data) : stringifyLike(data, source);
  return Buffer.from(`${event === undefined ? '' : `event: ${event}\n`}data: ${text}\n\n`);
}

/** Maps the text of a content value (a string, or the parts with a `text` field, of `partTypes` when given); the same value when nothing changed. */
export function mapContentText(content: unknown, f: (text: string) => string, partTypes?: ReadonlySet<string>): unknown {
  if (typeof content === 'string') return f(content);
  if (!Array.isArray(content)) return content;
  let changed = false;
  const parts = content.map((part) => {
    const p = obj(part);
    if (!p || typeof p.text !== 'string' || (partTypes && !partTypes.has(p.type as string))) return part;
    const text = f(p.text);
    if (text === p.text) return part;
    changed = true;
    return { ...p, text };
  });
  return changed ? parts : content;
}

/** A message a stage made (no wire original): its text, tool calls' arguments and tool results mapped. */
export function mapCanonicalText(m: Message, map: TextMap): Message {
  const toolResults = m.toolResults?.map((r) => {
    const content = map(r.content, 'tool-result');
    return content === r.content ? r : { ...r, content };
  });
  const toolCalls = m.toolCalls?.map((c) => {
    const args = map(c.arguments, 'tool-call');
    return args === c.arguments ? c : { ...c, arguments: args };
  });
  // A tool message's text is its results' content, mapped once.
  const text = m.role === 'tool' && toolResults ? toolResults.map((r) => r.content).join('') : map(m.text, 'text');
  const same = text === m.text && (toolResults ?? []).every((r, i) => r === m.toolResults![i]) && (toolCalls ?? []).every((c, i) => c === m.toolCalls![i]);
  return same ? m : { ...m, text, toolResults, toolCalls };
}
