// The JSON-RPC side of MCP that the proxy reads: message kinds, Warden's own error responses, a
// tool result's text, and bounded reads of a server's answers.
import type { Readable } from 'node:stream';
import { UpstreamUnreachableError } from '../errors.ts';
import { readCapped } from '../http/read-capped.ts';
import { MCP_WARDEN_ERROR } from '../providers/mcp.ts';

export type Json = Record<string, any>;
export type Id = string | number;

// One message (or SSE event) bigger than this passes through unread, or fails the read.
export const MAX_EVENT_BYTES = 16 * 1024 * 1024;

/** A JSON-RPC response (result or error, no method): a server's own request reusing an id is not one. */
export function isResponse(m: Json): boolean {
  return m !== null && typeof m === 'object' && m.id !== undefined && m.method === undefined && (m.result !== undefined || m.error !== undefined);
}

export function rpcError(id: Id | null, message: string, data: Json): Json {
  return { jsonrpc: '2.0', id, error: { code: MCP_WARDEN_ERROR, message, data } };
}

export function textOf(result: Json): string {
  return Array.isArray(result.content) ? result.content.filter((b: Json) => b?.type === 'text' && typeof b.text === 'string').map((b: Json) => b.text).join('\n') : '';
}

/** A result's text content, as JSON when it is JSON (what an unstructured tool's answer means). */
export function textValue(result: Json): unknown {
  const text = textOf(result);
  const parsed = tryParse(Buffer.from(text));
  return parsed === undefined ? text : parsed;
}

export function tryParse(buf: Buffer): any {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

export async function readAll(body: Readable, server: string): Promise<Buffer> {
  const { bytes, over } = await readCapped(body, MAX_EVENT_BYTES);
  if (over) throw new UpstreamUnreachableError(server, { cause: new Error(`response over ${MAX_EVENT_BYTES} bytes`) });
  return bytes;
}

/** tools/call in any letter case: a server that reads methods loosely must not run a call Warden took for another method. */
export function isToolsCall(method: unknown): boolean {
  return typeof method === 'string' && method.toLowerCase() === 'tools/call';
}

/**
 * Why messages cannot be judged, if they cannot: a call's result is checked against the call its id
 * names, so a tools/call without an id (a notification, whose result never comes back) or an id used
 * twice in one batch (one call's result judged by another's rules) would run unchecked.
 */
export function unpairable(messages: readonly Json[]): string | undefined {
  const seen = new Set<unknown>();
  for (const m of messages) {
    if (isToolsCall(m.method) && (m.id === undefined || m.id === null)) return 'a tools/call must carry an id, so that its result can be checked';
    if (m.id === undefined || typeof m.method !== 'string') continue;
    if (seen.has(m.id)) return `the id ${JSON.stringify(m.id)} is used twice in one batch: each request needs its own`;
    seen.add(m.id);
  }
  return undefined;
}
