// How the fake upstream delivers a reply, for both providers: a whole JSON body or an SSE stream of
// pre-rendered events, shaped by the request's scenario (stalls, resets, pauses) and gated by the
// test's beforeEvent hook. Everything waits on the exchange's signal, so a client that leaves or a
// closing fake never leaves a timer or a write behind.
import { once } from 'node:events';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FakeUpstream, RecordedRequest } from './fake-upstream.ts';

/** What the request's `x-fake-scenario` header asked for (the keys are listed in fake-upstream.ts). */
export interface Scenario {
  status?: number;
  retryAfter?: string;
  delayMs: number;
  eventDelayMs: number;
  stallAfter?: number;
  resetAfter?: number;
  words?: number;
  logprob?: number;
  /** The failure keys (status, stall-after, reset-after) apply to this many requests with the same scenario, then stop. */
  times?: number;
}

/** One request being answered. */
export interface Exchange {
  rec: RecordedRequest;
  res: ServerResponse;
  scenario: Scenario;
  /** Aborted when the connection ends, for whatever reason. */
  signal: AbortSignal;
  requestId: string;
  startedAt: number;
  /** The fake itself: its beforeEvent is read at each event, so a test may set or clear it mid-stream. */
  hooks: Pick<FakeUpstream, 'beforeEvent'>;
  /** Destroys the connection on purpose, so the close is not counted as the client's. */
  reset(): void;
}

export const NO_SCENARIO: Scenario = Object.freeze({ delayMs: 0, eventDelayMs: 0 });

// A stalled upstream holds the connection this long before giving up on it, like a load balancer would.
const STALL_MS = 60_000;

const SCENARIO_KEYS: Record<string, (s: Scenario, v: number) => void> = {
  status: (s, v) => (s.status = v),
  'retry-after': (s, v) => (s.retryAfter = String(v)),
  'delay-ms': (s, v) => (s.delayMs = v),
  'event-delay-ms': (s, v) => (s.eventDelayMs = v),
  'stall-after': (s, v) => (s.stallAfter = v),
  'reset-after': (s, v) => (s.resetAfter = v),
  words: (s, v) => (s.words = v),
  logprob: (s, v) => (s.logprob = v),
  times: (s, v) => (s.times = v),
  id: () => undefined,
};

function validValue(key: string, v: number): boolean {
  if (key === 'logprob') return Number.isFinite(v) && v <= 0;
  if (key === 'status') return Number.isInteger(v) && v >= 400 && v <= 599;
  return Number.isInteger(v) && v >= 0;
}

/** Parses `key=value;…`; a string result is the message for a 400 naming the bad part. */
export function parseScenario(header: string | string[] | undefined): Scenario | string {
  if (header === undefined) return NO_SCENARIO;
  const scenario: Scenario = { delayMs: 0, eventDelayMs: 0 };
  for (const part of String(header).split(';')) {
    if (!part.trim()) continue;
    const [key, raw = ''] = part.split('=', 2).map((s) => s.trim());
    if (!Object.hasOwn(SCENARIO_KEYS, key)) {
      return `x-fake-scenario: unknown key "${key}" (known: ${Object.keys(SCENARIO_KEYS).join(', ')})`;
    }
    const value = raw === '' ? Number.NaN : Number(raw);
    if (!validValue(key, value)) return `x-fake-scenario: bad value for ${key}: "${raw}"`;
    SCENARIO_KEYS[key](scenario, value);
  }
  return scenario;
}

/** Waits `ms`, or less when the signal fires first; true when the whole time passed. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

async function drained(res: ServerResponse, signal: AbortSignal): Promise<boolean> {
  try {
    await once(res, 'drain', { signal });
    return true;
  } catch {
    return false;
  }
}

/** Holds the connection without writing until the client leaves, then gives up on it. */
async function stall(ex: Exchange): Promise<void> {
  if (await pause(STALL_MS, ex.signal)) ex.reset();
}

/** Writes a complete JSON response with an exact Content-Length, ignoring the scenario (errors use it). */
export function writeJson(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Sends a successful JSON reply; a stall or reset scenario happens before any byte instead. */
export async function sendJson(ex: Exchange, headers: OutgoingHttpHeaders, body: unknown): Promise<void> {
  if (ex.scenario.resetAfter !== undefined) return ex.reset();
  if (ex.scenario.stallAfter !== undefined) return stall(ex);
  writeJson(ex.res, 200, headers, body);
}

/**
 * Streams pre-rendered SSE events, one write each. Event i is preceded by the scenario's pause (from
 * the second event on) and the beforeEvent gate; `stall-after`/`reset-after` N act after N events.
 */
export async function sendEvents(ex: Exchange, headers: OutgoingHttpHeaders, events: string[]): Promise<void> {
  const { res, scenario, signal } = ex;
  res.writeHead(200, headers);
  // Real APIs answer with headers first; a stall-after=0 or reset-after=0 stream depends on it.
  res.flushHeaders();
  for (let i = 0; i < events.length; i++) {
    if (i === scenario.stallAfter) return stall(ex);
    if (i === scenario.resetAfter) return ex.reset();
    if (i > 0 && scenario.eventDelayMs > 0 && !(await pause(scenario.eventDelayMs, signal))) return;
    const gate = ex.hooks.beforeEvent;
    if (gate) await gate(i, ex.rec);
    if (signal.aborted) return;
    if (!res.write(events[i]) && !(await drained(res, signal))) return;
  }
  res.end();
}

/** One SSE event: an `event:` line when named, then one `data:` line (JSON never contains a newline). */
export function sse(data: unknown, event?: string): string {
  return event === undefined ? `data: ${JSON.stringify(data)}\n\n` : `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Splits a reply into one delta per word, spaces kept, so the deltas concatenate back to the reply. */
export function wordPieces(text: string): string[] {
  if (text === '') return [];
  return text.split(' ').map((word, i) => (i === 0 ? word : ` ${word}`));
}

/** Cuts tool-argument JSON into small fragments, as the real APIs stream it (never inside a code point). */
export function fragments(text: string, size = 8): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const HEX = '0123456789abcdef';

/** A random id body of n characters; ids must look real and not collide, not be secret, so Math.random does. */
export function randomId(n: number, alphabet = ALNUM): string {
  let id = '';
  for (let i = 0; i < n; i++) id += alphabet[Math.floor(Math.random() * alphabet.length)];
  return id;
}

/** Seconds since the epoch, as every API's `created` field. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The text of a message's content: a string, or the `text` of each part of an array, space-joined. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) if (typeof part?.text === 'string') texts.push(part.text);
  return texts.join(' ');
}
