// Ships the audit log to the central collector, from the writer thread: contiguous seq ranges (at
// most 500 records and 1 MiB a batch), gzip'd, with an idempotency key, checkpoints alongside. It
// never gives up: 429, 5xx, other unexpected answers and network failures back off (full jitter,
// capped at 60 s, Retry-After honoured); a batch too large for the collector (413) is sent again in
// halves; a batch the collector rejects as malformed (400, 422), or one it keeps taking none of, goes
// to a dead-letter table and raises an alert, and shipping moves on, while the records themselves stay
// (pruning stops before the first dead-lettered one). Progress is the collector's own
// `committed_through`, never past what was sent; a collector that says it lacks records below what it
// holds (restored from a backup) has shipping rewound to them.
import { retryAfterMs } from '../retry/backoff.ts';
import { postBatch, takeRecords, type Batch, type RecordRow } from './collector-batch.ts';
import { getMeta, prunedBase, SET_META, type Db } from './store.ts';

export interface ShipperOptions {
  db: Db;
  logId: string;
  url: string;
  token: string;
  maxRecords?: number;
  maxBytes?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  requestTimeoutMs?: number;
  report(event: ShipperEvent): void;
}

export type ShipperEvent =
  | { type: 'shipped'; through: number }
  | { type: 'refill'; from: number; through: number; result: 'resent' | 'lost'; detail: string }
  | { type: 'ship-failed'; reason: 'network' | 'throttled' | 'server' | 'unauthorized' | 'too_large' | 'rejected'; detail: string; retryInMs?: number };

// The collector read the batch and refused it as malformed: sending it again cannot help.
const REJECTED = new Set([400, 422]);
// A collector that answers a batch this many times in a row without taking a record of it (a record
// whose body names another seq, say) has refused it as surely as with a 400.
const MAX_STALLS = 3;

export interface Shipper {
  /** Records were committed: ship soon. */
  notify(): void;
  /** Stops after at most `graceMs` more of trying to ship what is left. */
  stop(graceMs: number): Promise<void>;
}

/** A range of the log the collector lacks below what it holds: its first gap. */
interface Missing {
  from: number;
  through: number;
}

const seqOf = (v: unknown): number | undefined => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : undefined);

/** The collector's `committed_through` (when its answer is JSON that holds a whole number there) and the first gap it reports. */
function readAnswer(text: string): { through?: number; missing?: Missing } {
  try {
    const answer = JSON.parse(text) as { committed_through?: unknown; missing_from?: unknown; missing_through?: unknown };
    const from = seqOf(answer?.missing_from);
    const through = seqOf(answer?.missing_through);
    return { through: seqOf(answer?.committed_through), missing: from && through && from <= through ? { from, through } : undefined };
  } catch {
    return {};
  }
}

/** Starts the shipping loop. */
export function startShipper(o: ShipperOptions): Shipper {
  const maxRecords = o.maxRecords ?? 500;
  const maxBytes = o.maxBytes ?? 1024 * 1024;
  const base = o.backoffBaseMs ?? 250;
  const cap = o.backoffCapMs ?? 60_000;
  const setMeta = o.db.prepare(SET_META);
  const nextRecords = o.db.prepare('SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?');
  const nextCheckpoints = o.db.prepare('SELECT body FROM checkpoints WHERE size > ? AND size <= ? ORDER BY size');
  const deadLetter = o.db.prepare('INSERT INTO dead_letters (first_seq, last_seq, status, response, at) VALUES (?, ?, ?, ?, ?)');
  let shipped = Number(getMeta(o.db, 'shipped_through') ?? 0);
  let checkpointsShipped = Number(getMeta(o.db, 'checkpoints_shipped_through') ?? 0);
  let wake: (() => void) | undefined;
  let stopping = false;
  let stopDeadline = Infinity;
  let attempt = 0;
  // Answers in a row that took no record of the batch sent.
  let stalls = 0;
  // Halved each time the collector answers 413.
  let batchRecords = maxRecords;
  // The end of the last dead-lettered batch: a collector's committed_through never rewinds shipping past it.
  let deadThrough = (o.db.prepare('SELECT coalesce(max(last_seq), 0) AS n FROM dead_letters').get() as { n: number }).n;
  // Set once stop() gives up: a request still in flight must not touch the (closing) database.
  let halted = false;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  function nextBatch(): Batch | undefined {
    const { records, first, last } = takeRecords(nextRecords.iterate(shipped, batchRecords) as Iterable<RecordRow>, maxBytes, shipped);
    const checkpoints = (nextCheckpoints.all(checkpointsShipped, last) as { body: string }[]).map((c) => JSON.parse(c.body));
    if (records.length === 0 && checkpoints.length === 0) return undefined;
    return { first: records.length > 0 ? first : last, last, records, checkpoints };
  }

  function backoff(retryAfter: string | null): number {
    // Full jitter (AWS architecture blog): spreads a fleet's retries after a shared outage.
    const jittered = Math.random() * Math.min(cap, base * 2 ** attempt);
    attempt = Math.min(attempt + 1, 30);
    // RFC 9110 delta-seconds or an HTTP date, read as the model-call retries read it.
    const told = retryAfterMs({ 'retry-after': retryAfter ?? undefined }) ?? 0;
    // Retry-After is the server's own word: honoured, up to five minutes.
    return told > 0 ? Math.min(Math.max(told, jittered), 300_000) : jittered;
  }

  async function send(batch: Batch): Promise<number> {
    let res: Response;
    try {
      res = await postBatch(o.url, o.token, o.logId, batch, o.requestTimeoutMs ?? 30_000);
    } catch (err) {
      if (halted) return 0;
      const wait = backoff(null);
      o.report({ type: 'ship-failed', reason: 'network', detail: String((err as Error).cause ?? (err as Error).message), retryInMs: wait });
      return wait;
    }
    const text = await res.text().catch(() => '');
    if (halted) return 0;
    if (res.ok) {
      const { through, missing } = readAnswer(text);
      // A 2xx that does not say what the collector holds (a proxy's page, say) proves nothing.
      if (through === undefined) return retry('server', `HTTP ${res.status} without a committed_through: ${text.slice(0, 200)}`, res);
      const wait = acknowledged(batch, through, res.status, text);
      return missing && rewind(missing) ? 0 : wait;
    }
    if (res.status === 413 && batch.records.length > 1) {
      // Too large for the collector (or a proxy before it): the same records again, in halves, and
      // batches stay that small from then on rather than be refused again each time.
      batchRecords = Math.max(1, Math.floor(batch.records.length / 2));
      o.report({ type: 'ship-failed', reason: 'too_large', detail: `HTTP 413 for records ${batch.first}..${batch.last}: sending at most ${batchRecords} a batch` });
      return 0;
    }
    if (REJECTED.has(res.status) || res.status === 413) return deadLettered(batch, res.status, text);
    const reason = res.status === 429 ? 'throttled' : res.status === 401 || res.status === 403 ? 'unauthorized' : 'server';
    return retry(reason, `HTTP ${res.status}: ${text.slice(0, 200)}`, res);
  }

  function retry(reason: 'server' | 'throttled' | 'unauthorized', detail: string, res: Response): number {
    const wait = backoff(res.headers.get('retry-after'));
    o.report({ type: 'ship-failed', reason, detail, retryInMs: wait });
    return wait;
  }

  /** The collector took the batch, or part of it: `through` is what it holds (its word, up to what was sent). */
  function acknowledged(batch: Batch, through: number, status: number, text: string): number {
    const before = shipped;
    // Never past what was sent: a collector that claims more would have the rest pruned unsent. And
    // never back into what was dead-lettered: those records are settled, sending them again would only
    // dead-letter them again.
    shipped = Math.max(Math.min(through, batch.last), Math.min(before, deadThrough));
    if (shipped > before) {
      stalls = 0;
      attempt = 0;
    }
    checkpointsShipped = shipped < before
      ? Math.min(checkpointsShipped, shipped) // a collector restored from a backup gets its checkpoints again too
      : Math.max(checkpointsShipped, ...batch.checkpoints.map((c) => (c as { size: number }).size).filter((size) => size <= shipped));
    setMeta.run('shipped_through', String(shipped));
    setMeta.run('checkpoints_shipped_through', String(checkpointsShipped));
    o.report({ type: 'shipped', through: shipped });
    if (shipped === batch.last) return 0;
    // Part of the batch went: the rest goes next, at once.
    if (shipped > before) return 0;
    // None of it went. A collector restored from a backup holds less: the records from there go next.
    // One that keeps taking none of the same records has refused them.
    if (shipped === before && ++stalls >= MAX_STALLS) {
      stalls = 0;
      return deadLettered(batch, status, text);
    }
    const wait = backoff(null);
    o.report({ type: 'ship-failed', reason: 'server', detail: `HTTP ${status}, but the collector holds records only through ${through} of ${batch.first}..${batch.last}`, retryInMs: wait });
    return wait;
  }

  /** Keeps the evidence locally (the records stay: pruning stops before them), says so loudly, and moves on. */
  function deadLettered(batch: Batch, status: number, text: string): number {
    // A batch of checkpoints alone is kept as the empty range just past what was shipped, so that it
    // holds up no pruning of records the collector has.
    const first = batch.records.length > 0 ? batch.first : batch.last + 1;
    deadLetter.run(first, batch.last, status, text.slice(0, 4096), new Date().toISOString());
    shipped = batch.last;
    deadThrough = batch.last;
    checkpointsShipped = Math.max(checkpointsShipped, batch.last);
    // Refused alone at any size (a single record over the collector's limit): the others start again at full size.
    if (status === 413) batchRecords = maxRecords;
    setMeta.run('shipped_through', String(shipped));
    setMeta.run('checkpoints_shipped_through', String(checkpointsShipped));
    o.report({ type: 'ship-failed', reason: 'rejected', detail: `records ${batch.first}..${batch.last} dead-lettered: HTTP ${status}: ${text.slice(0, 200)}` });
    // Settled here (counted among the dead letters), so no longer waiting to ship.
    o.report({ type: 'shipped', through: shipped });
    return 0;
  }

  // Gaps already rewound to (or found beyond help) this run: each once, so a collector that keeps
  // refusing one is not fed it in a loop.
  const tried = new Set<number>();
  const refusedAround = o.db.prepare('SELECT 1 FROM dead_letters WHERE first_seq <= ? AND last_seq >= ?').pluck();

  /**
   * A collector that holds records after a gap below what was shipped lost them (restored from a
   * backup, or started again on a new store, then sent the next batch): shipping rewinds to the gap,
   * so they go again as any batch goes (retried through failures and restarts), and pruning, which
   * never passes what was shipped, keeps them meanwhile. What it holds past the gap goes again too,
   * taken as duplicates. A gap at a batch the collector refused is `warden audit reship`'s; records
   * pruned here are lost to the collector, and said so. Returns whether shipping rewound.
   */
  function rewind({ from, through }: Missing): boolean {
    const last = Math.min(through, shipped);
    if (from > last || tried.has(from) || refusedAround.get(last, from) !== undefined) return false;
    tried.add(from);
    const pruned = prunedBase(o.db)?.size ?? 0;
    if (from <= pruned) {
      o.report({ type: 'refill', from, through: Math.min(last, pruned), result: 'lost', detail: 'pruned here after the collector had acknowledged them' });
    }
    const start = Math.max(from, pruned + 1);
    if (start > last) return false;
    o.report({ type: 'refill', from: start, through: last, result: 'resent', detail: `shipping again from record ${start}` });
    shipped = start - 1;
    checkpointsShipped = Math.min(checkpointsShipped, shipped);
    setMeta.run('shipped_through', String(shipped));
    setMeta.run('checkpoints_shipped_through', String(checkpointsShipped));
    o.report({ type: 'shipped', through: shipped });
    return true;
  }

  const loop = (async () => {
    while (!halted && !(stopping && Date.now() >= stopDeadline)) {
      const batch = nextBatch();
      if (!batch) {
        if (stopping) return;
        await sleep(1_000);
        continue;
      }
      const wait = await send(batch);
      if (wait > 0) {
        if (stopping) return;
        await sleep(wait);
      }
    }
  })();

  return {
    notify() {
      if (attempt === 0) wake?.();
    },
    async stop(graceMs) {
      stopping = true;
      stopDeadline = Date.now() + graceMs;
      wake?.();
      await Promise.race([loop, new Promise((r) => setTimeout(r, graceMs + 100))]);
      halted = true;
    },
  };
}
