// `warden audit reship`: sends the collector again what it once refused. The shipper dead-letters a
// batch the collector rejects (400, 422, a record too large even alone) and moves on, so the
// collector holds a gap there and the log's front can never be pruned past it. Once the collector is
// mended (a larger body limit, a fixed bug), this sends each dead-lettered range again; the collector
// fills the gap, checks the records against both neighbours and resolves its gap alert. A range is
// removed from dead_letters only when the collector holds every record of it.
import { postBatch, takeRecords, type Batch } from './collector-batch.ts';
import type { ShipperOptions } from './shipper.ts';

/** Where to, and the shipper's batch limits. */
export type ReshipOptions = Pick<ShipperOptions, 'db' | 'logId' | 'url' | 'token' | 'maxRecords' | 'maxBytes' | 'requestTimeoutMs'>;

export interface ReshipOutcome {
  first: number;
  last: number;
  /** delivered: the collector holds every record (and the range left dead_letters); else why not. */
  result: 'delivered' | 'refused';
  detail: string;
}

/** Why a reship asked of the sidecar did not run to its end: nowhere to send, shutting down, or a failure on the way. */
export type ReshipFailure = 'no_collector' | 'closing' | 'failed' | 'writer';

/** A reship asked of the sidecar that did not run to its end (some ranges may have gone: see dead_letters). */
export class ReshipError extends Error {
  readonly reason: ReshipFailure;
  constructor(message: string, reason: ReshipFailure) {
    super(message);
    this.reason = reason;
  }
}

interface DeadLetter {
  id: number;
  first_seq: number;
  last_seq: number;
}

/** Sends every dead-lettered range again, in order; returns what became of each. */
export async function reshipDeadLetters(o: ReshipOptions): Promise<ReshipOutcome[]> {
  const maxRecords = o.maxRecords ?? 500;
  const maxBytes = o.maxBytes ?? 1024 * 1024;
  const letters = o.db.prepare('SELECT id, first_seq, last_seq FROM dead_letters ORDER BY first_seq, id').all() as DeadLetter[];
  const records = o.db.prepare('SELECT seq, body FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?');
  const checkpoints = o.db.prepare('SELECT body FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size');
  const remove = o.db.prepare('DELETE FROM dead_letters WHERE id = ?');
  const outcomes: ReshipOutcome[] = [];
  for (const letter of letters) {
    const outcome = await reshipRange(letter);
    if (outcome.result === 'delivered') remove.run(letter.id);
    outcomes.push(outcome);
  }
  return outcomes;

  async function reshipRange({ first_seq: first, last_seq: last }: DeadLetter): Promise<ReshipOutcome> {
    const outcome = (result: ReshipOutcome['result'], detail: string) => ({ first, last, result, detail });
    // A batch of checkpoints alone was kept as the empty range just past the records it followed.
    if (first > last) {
      const batch = { first, last, records: [], checkpoints: readCheckpoints(last, last) };
      if (batch.checkpoints.length === 0) return outcome('refused', `the checkpoint at ${last} is no longer in the local log`);
      const answer = await send(batch);
      // Held only if the collector says so (one ahead of its records, or with a bad signature, is not kept).
      return answer.ok && answer.checkpointsHeld === batch.checkpoints.length ? outcome('delivered', 'the collector holds it')
        : outcome('refused', answer.ok ? `the collector did not keep it (${answer.alerts} integrity alerts: see its /v1/alerts)` : answer.detail);
    }
    let from = first;
    while (from <= last) {
      const batch = nextBatch(from, last);
      if (batch.records.length === 0) return outcome('refused', `records ${from}..${last} are no longer in the local log`);
      // The refused batch also carried the checkpoint taken just before its records, if there was one.
      if (from === first) batch.checkpoints = [...readCheckpoints(first - 1, first - 1), ...batch.checkpoints];
      const answer = await send(batch);
      if (!answer.ok) return outcome('refused', answer.detail);
      from = batch.last + 1;
    }
    return outcome('delivered', 'the collector holds them all');
  }

  function readCheckpoints(from: number, through: number): unknown[] {
    return (checkpoints.all(from, through) as { body: string }[]).map((c) => JSON.parse(c.body));
  }

  /** Records from..(at most) last, within the batch limits, with the checkpoints among them. */
  function nextBatch(from: number, last: number): Batch {
    // A record missing locally (a log tampered with) ends the batch: the range cannot be delivered whole.
    const taken = takeRecords(records.iterate(from, last, maxRecords) as Iterable<{ seq: number; body: string }>, maxBytes, from - 1, true);
    return { first: from, last: taken.last, records: taken.records, checkpoints: readCheckpoints(from, taken.last) };
  }

  /** One batch; ok only when the collector took every record of it (stored now, or held already). */
  async function send(batch: Batch): Promise<{ ok: true; alerts: number; checkpointsHeld: number } | { ok: false; detail: string }> {
    let res: Response;
    try {
      res = await postBatch(o.url, o.token, o.logId, batch, o.requestTimeoutMs ?? 30_000);
    } catch (err) {
      return { ok: false, detail: `the collector could not be reached: ${String((err as Error).cause ?? (err as Error).message)}` };
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) return { ok: false, detail: `HTTP ${res.status}: ${text.slice(0, 200)}` };
    let answer: { stored?: unknown; duplicates?: unknown; alerts?: unknown; checkpoints_held?: unknown };
    try {
      answer = JSON.parse(text);
    } catch {
      return { ok: false, detail: `HTTP ${res.status} that is not the collector's answer: ${text.slice(0, 200)}` };
    }
    const taken = Number(answer.stored) + Number(answer.duplicates);
    if (taken !== batch.records.length) {
      return { ok: false, detail: `the collector took ${Number.isFinite(taken) ? taken : 'none'} of records ${batch.first}..${batch.last} (${String(answer.alerts ?? 0)} integrity alerts: see its /v1/alerts)` };
    }
    return { ok: true, alerts: Number(answer.alerts) || 0, checkpointsHeld: Number(answer.checkpoints_held) || 0 };
  }
}
