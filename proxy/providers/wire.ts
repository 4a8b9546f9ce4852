// Small readers shared by the adapters: wire bodies are untrusted JSON, so every access is checked.
import { InvalidRequestError } from '../errors.ts';
import type { HeldEvent, Json } from './types.ts';

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
    if (partTypes && !partTypes.has(String(p.type))) continue;
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

/** One SSE event, with an `event:` line when it has a name. */
export function sseBytes(data: Json, event: string | undefined): Buffer {
  return Buffer.from(`${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`);
}
