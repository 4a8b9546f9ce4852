// Reading a tool result for the hallucination signals: an MCP CallToolResult through its structured
// content or text, JSON inside text parsed, and the value walked breadth first into its leaves and
// lists. The walk is bounded (nodes, depth, characters kept, JSON-in-strings parsed), so a huge or
// deeply nested result costs the same as a moderate one; what lies past the bounds is not read.

const MAX_NODES = 10_000;
const MAX_DEPTH = 64;
/** Characters of a string leaf kept, and the largest JSON-in-a-string parsed. */
export const MAX_TEXT = 65_536;
/** Characters of JSON-in-strings parsed in all, so many embedded documents cannot add up. */
const MAX_EMBEDDED = 4 * MAX_TEXT;

type Primitive = string | number | boolean | null;
export interface Leaf {
  key: string;
  value: Primitive;
}
export interface Walked {
  leaves: Leaf[];
  arrays: Array<{ key: string; items: unknown[] }>;
  /** Whether every leaf was reached: "nothing but a success message" needs the whole result. */
  complete: boolean;
}

/** The value to score: an MCP CallToolResult's structured content or text, and JSON inside text. */
export function readResult(result: unknown): unknown {
  if (isRecord(result) && Array.isArray(result.content) && result.content.length > 0 && result.content.every((c) => isRecord(c) && typeof c.type === 'string')) {
    if (result.structuredContent !== undefined) return result.structuredContent;
    return readResult(result.content.flatMap((c) => (c.type === 'text' && typeof c.text === 'string' ? [c.text] : [])).join('\n'));
  }
  if (typeof result !== 'string') return result;
  // The whole result is parsed whatever its size: it is already in memory, and parsing is linear.
  return parseJson(result) ?? result;
}

const JSON_START = /^\s*[[{]/;

function parseJson(text: string): object | undefined {
  if (!JSON_START.test(text)) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? v : undefined;
  } catch {
    return undefined; // malformed, or nested deeper than the parser allows: scored as text
  }
}

/** Breadth first, so a result's top-level fields are read before what is deep inside it. */
export function walk(root: unknown, maxLeaves: number): Walked {
  const leaves: Leaf[] = [];
  const arrays: Walked['arrays'] = [];
  const queue: Array<{ value: unknown; key: string; depth: number }> = [{ value: root, key: '', depth: 0 }];
  let complete = true;
  let embedded = MAX_EMBEDDED;
  let i = 0;
  for (; i < queue.length && leaves.length < maxLeaves; i++) {
    const { value, key, depth } = queue[i];
    if (typeof value === 'string') {
      // JSON inside a string (a serialized payload) is walked as JSON; every attempt costs budget,
      // since malformed JSON can fail only at its last character.
      const attempt = depth > 0 && value.length <= Math.min(MAX_TEXT, embedded) && JSON_START.test(value);
      if (attempt) embedded -= value.length;
      const nested = attempt ? parseJson(value) : undefined;
      if (nested) queue.push({ value: nested, key, depth: depth + 1 });
      else leaves.push({ key, value: value.length > MAX_TEXT ? value.slice(0, MAX_TEXT) : value });
    } else if (value === null || typeof value === 'number' || typeof value === 'boolean') {
      leaves.push({ key, value });
    } else if (typeof value === 'object' && depth >= MAX_DEPTH) {
      complete = false;
    } else if (Array.isArray(value)) {
      arrays.push({ key, items: value });
      const end = Math.min(value.length, MAX_NODES - queue.length);
      for (let j = 0; j < end; j++) queue.push({ value: value[j], key, depth: depth + 1 });
      if (end < value.length) complete = false;
    } else if (isRecord(value)) {
      for (const k in value) {
        if (queue.length >= MAX_NODES) {
          complete = false;
          break;
        }
        if (Object.hasOwn(value, k)) queue.push({ value: value[k], key: k, depth: depth + 1 });
      }
    }
  }
  return { leaves, arrays, complete: complete && i >= queue.length };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
