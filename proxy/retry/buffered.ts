// An attempt read whole before the agent sees any of it, so that it can be scored or judged against
// others, and then replayed: the chosen attempt goes back through the normal response path (stages,
// tool gate, record) exactly as if it had just arrived, stream or not.
import { Readable } from 'node:stream';
import { accumulate, emptyResponse, finishAccumulation, type Response, type StreamEvent } from '../canonical.ts';
import { readCapped, type Capped } from '../http/read-capped.ts';
import { SseSplitter } from '../http/sse.ts';
import { isOk, type UpstreamResponse } from '../http/upstream-client.ts';
import type { EndpointAdapter, Json, LogprobSupport } from '../providers/types.ts';
import { stringifyLike } from '../providers/exact-numbers.ts';
import { obj, sseBytes } from '../providers/wire.ts';
import { selfReport } from './confidence.ts';

// A whole attempt kept in memory; past this it is not an answer a jury can weigh.
const MAX_ATTEMPT_BYTES = 16 * 1024 * 1024;

export interface Buffered {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The bytes to replay (logprobs or the self-report marker already stripped when asked). */
  raw: Buffer;
  /** The canonical answer, for 2xx answers Warden could read. */
  response?: Response;
  confidence?: number;
}

export interface ReadOptions {
  adapter: EndpointAdapter;
  stream: boolean;
  /** Logprobs to read, and whether to strip them (the agent did not ask for them). */
  logprobs?: { support: LogprobSupport; strip: boolean };
  /** Read and strip a self-reported confidence marker. */
  selfReport: boolean;
  /** Mean token probability of the logprobs read. */
  score(logprobs: readonly number[]): number | undefined;
}

/** Reads an upstream answer whole; non-2xx answers come back with their bytes only. */
export async function readWhole(up: UpstreamResponse, opts: ReadOptions): Promise<Buffered> {
  const chunks: Buffer[] = [];
  let read: Capped;
  try {
    read = await readCapped(up.body, MAX_ATTEMPT_BYTES, chunks);
  } catch (err) {
    // A stalled or broken attempt still said something; the record keeps it.
    throw Object.assign(err as object, { partial: Buffer.concat(chunks) });
  }
  if (read.over) throw Object.assign(new Error(`attempt over ${MAX_ATTEMPT_BYTES} bytes`), { partial: read.bytes });
  const raw = read.bytes;
  if (!isOk(up.status)) return { status: up.status, headers: up.headers, raw };
  return opts.stream ? readStream(up, raw, opts) : readJson(up, raw, opts);
}

function readJson(up: UpstreamResponse, raw: Buffer, opts: ReadOptions): Buffered {
  let wire: Json | undefined;
  try {
    wire = obj(JSON.parse(raw.toString('utf8')));
  } catch {
    return { status: up.status, headers: up.headers, raw };
  }
  if (!wire) return { status: up.status, headers: up.headers, raw };
  let response = opts.adapter.parseResponse(wire);
  let confidence: number | undefined;
  if (opts.logprobs) {
    confidence = opts.score(opts.logprobs.support.ofResponse(wire));
    if (opts.logprobs.strip) opts.logprobs.support.strip(wire);
  }
  if (opts.selfReport) {
    const { score, at } = selfReport(response.text);
    confidence = score;
    response = { ...response, text: response.text.slice(0, at) };
    wire = opts.adapter.writeResponse(wire, response);
  }
  const changed = opts.selfReport || opts.logprobs?.strip;
  return { status: up.status, headers: up.headers, raw: changed ? Buffer.from(stringifyLike(wire, raw.toString('utf8'))) : raw, response, confidence };
}

function readStream(up: UpstreamResponse, raw: Buffer, opts: ReadOptions): Buffered {
  const { adapter } = opts;
  const splitter = new SseSplitter(Number.MAX_SAFE_INTEGER);
  const pieces = [...splitter.push(raw)];
  const tail = splitter.endPiece();
  if (tail) pieces.push(tail);
  const response = emptyResponse();
  const logprobs: number[] = [];
  const parsed = pieces.map((p) => {
    if (Buffer.isBuffer(p) || p.data === undefined) return undefined;
    try {
      const ev = adapter.parseStreamEvent(p.event, p.data);
      for (const e of ev?.events ?? []) accumulate(response, e);
      if (ev && opts.logprobs) logprobs.push(...opts.logprobs.support.ofEvent(ev.data));
      return ev;
    } catch {
      return undefined;
    }
  });
  finishAccumulation(response);
  let confidence = opts.logprobs ? opts.score(logprobs) : undefined;
  // Where the self-report marker starts in the answer's text: text past it is cut from the replay.
  let cutAt = Number.POSITIVE_INFINITY;
  if (opts.selfReport) {
    const report = selfReport(response.text);
    confidence = report.score;
    cutAt = report.at;
    response.text = response.text.slice(0, cutAt);
  }
  if (!opts.selfReport && !opts.logprobs?.strip) return { status: up.status, headers: up.headers, raw, response, confidence };
  let seen = 0;
  const out = pieces.map((p, i) => {
    const ev = parsed[i];
    if (Buffer.isBuffer(p) || !ev) return Buffer.isBuffer(p) ? p : p.raw;
    if (opts.logprobs?.strip) opts.logprobs.support.stripEvent(ev.data);
    const events = ev.events.flatMap((e): StreamEvent[] => {
      if (e.type !== 'text') return [e];
      const keep = Math.max(0, Math.min(e.text.length, cutAt - seen));
      seen += e.text.length;
      return keep === e.text.length ? [e] : [{ ...e, text: e.text.slice(0, keep) }];
    });
    return sseBytes(adapter.writeStreamEvent(ev, events), p.event, p.data);
  });
  return { status: up.status, headers: up.headers, raw: Buffer.concat(out), response, confidence };
}

/** What a broken-off attempt had said: its whole events (a stream), or nothing for unfinished JSON. */
export function partialResponse(raw: Buffer, adapter: EndpointAdapter, stream: boolean): Response {
  if (!stream) return emptyResponse();
  const splitter = new SseSplitter(Number.MAX_SAFE_INTEGER);
  const response = emptyResponse();
  for (const p of splitter.push(raw)) {
    if (Buffer.isBuffer(p) || p.data === undefined) continue;
    try {
      for (const e of adapter.parseStreamEvent(p.event, p.data)?.events ?? []) accumulate(response, e);
    } catch {
      // not JSON: nothing to add
    }
  }
  return finishAccumulation(response);
}

/** A buffered attempt as an upstream response, for the normal response path to replay. */
export function replay(b: Buffered): UpstreamResponse {
  const headers = { ...b.headers };
  if (headers['content-length'] !== undefined) headers['content-length'] = String(b.raw.length);
  return { status: b.status, headers, body: Readable.from([b.raw]) };
}
