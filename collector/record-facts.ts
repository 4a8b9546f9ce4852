// The facts the collector pulls out of a record at ingest, so dashboards and queries answer from
// indexed columns instead of parsing every stored body: who and what (agent, task, model, tool), how
// it went (status, error, latency), what it cost, and tags (one row per violation and per
// hallucination signal). Both stores insert exactly these, so their answers cannot drift apart.
import { costOf } from '../proxy/stages/usage-metering.ts';

/** The collector's current price for each model it prices (USD per million tokens). */
export type PriceBook = ReadonlyMap<string, { inputPerMTok: number; outputPerMTok: number }>;

export interface PriceRow {
  model: string;
  inputPerMTok: number;
  outputPerMTok: number;
}

/** The price book for rows of dashboard-sql.ts's currentPrices(). */
export function priceBook(rows: PriceRow[]): PriceBook {
  return new Map(rows.map((r) => [r.model, { inputPerMTok: r.inputPerMTok, outputPerMTok: r.outputPerMTok }]));
}

export interface RecordTag {
  kind: 'violation' | 'hallucination';
  /** The violation's kind, or the hallucination signal's name. */
  tag: string;
  tool: string | null;
}

export interface RecordFacts {
  agentId: string | null;
  agentVersion: string | null;
  session: string | null;
  task: string | null;
  model: string | null;
  status: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  costUsd: number | null;
  /** Who priced the call: the sidecar (its record carried cost_usd) or the collector (at ingest). */
  priceSource: 'sidecar' | 'collector' | null;
  latencyMs: number | null;
  tool: string | null;
  /** The error code Warden answered with, or told in-band after a stream started. */
  error: string | null;
  tags: RecordTag[];
}

// Records are evidence, not input to trust: a field of the wrong type is left out, never allowed to
// make the insert fail (which would refuse the whole batch, forever).
function str(v: unknown): string | null {
  if (typeof v === 'string') return indexable(v);
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
}

/**
 * A string as every store keeps it in a column: PostgreSQL text holds no NUL and the drivers write a
 * lone surrogate as U+FFFD. Normalized here, before rollups group by it, so two values that a store
 * would keep as one are one key (else a batch's upsert hits one row twice and fails forever).
 */
export function indexable(v: string): string {
  return (v.includes('\0') ? v.replaceAll('\0', '') : v).toWellFormed();
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function int(v: unknown): number | null {
  return Number.isSafeInteger(v) ? (v as number) : null;
}

// No call uses 2^40 tokens; a count above it is garbage, and summed by the millions in a rollup it
// would overflow a 64-bit column and fail its batch forever.
const MAX_TOKENS = 2 ** 40;

function tokens(v: unknown): number | null {
  const n = int(v);
  return n !== null && n >= 0 && n <= MAX_TOKENS ? n : null;
}

/** The status column is a 32-bit integer in PostgreSQL. */
function status(v: unknown): number | null {
  const n = int(v);
  return n !== null && Math.abs(n) < 2 ** 31 ? n : null;
}

function tagsOf(p: Record<string, any>): RecordTag[] {
  const tags: RecordTag[] = [];
  if (Array.isArray(p.violations)) {
    for (const v of p.violations) {
      const kind = typeof v?.kind === 'string' ? v.kind : null;
      if (kind !== null) tags.push({ kind: 'violation', tag: indexable(kind), tool: typeof v.tool === 'string' ? indexable(v.tool) : null });
    }
  }
  // Every signal the sidecar recorded on a tool result, flagged or not: each is weak evidence alone,
  // and the dashboard shows which tools keep producing them.
  const signals = p.tool?.signals?.signals;
  if (Array.isArray(signals)) {
    const tool = typeof p.tool.name === 'string' ? indexable(p.tool.name) : null;
    for (const s of signals) if (typeof s?.name === 'string') tags.push({ kind: 'hallucination', tag: indexable(s.name), tool });
  }
  return tags;
}

/**
 * The collector's price for a model call the sidecar could not price, by the model served and else
 * the one asked, with the sidecar's own formula (no cache prices: cached tokens at the input price).
 */
function collectorCost(p: Record<string, any>, prices: PriceBook): number | null {
  if (p.event !== 'model_call' || prices.size === 0) return null;
  const input = tokens(p.usage?.input_tokens);
  const output = tokens(p.usage?.output_tokens);
  if (input === null && output === null) return null;
  const served = str(p.model?.served);
  const asked = str(p.model?.asked);
  const price = (served === null ? undefined : prices.get(served)) ?? (asked === null ? undefined : prices.get(asked));
  if (!price) return null;
  return costOf({ inputTokens: input ?? 0, outputTokens: output ?? 0, cachedInputTokens: 0, cacheWriteTokens: 0 }, price);
}

/** Everything the stores index about one parsed record, priced by `prices` when the sidecar did not. */
export function recordFacts(p: Record<string, any>, prices: PriceBook): RecordFacts {
  const sidecarCost = num(p.cost_usd);
  const collectorPrice = sidecarCost === null ? collectorCost(p, prices) : null;
  return {
    agentId: str(p.agent?.id),
    agentVersion: str(p.agent?.version),
    session: str(p.session),
    task: str(p.task),
    model: str(p.model?.served) ?? str(p.model?.asked),
    status: status(p.status),
    inputTokens: tokens(p.usage?.input_tokens),
    outputTokens: tokens(p.usage?.output_tokens),
    costUsd: sidecarCost ?? collectorPrice,
    priceSource: sidecarCost !== null ? 'sidecar' : collectorPrice !== null ? 'collector' : null,
    latencyMs: num(p.latency_ms),
    tool: str(p.tool?.name) ?? str(p.escalation?.tool),
    error: str(p.error) ?? str(p.stream_error),
    tags: tagsOf(p),
  };
}
