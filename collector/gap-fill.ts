// Filling a log's gap at the collector. A gap (records deleted before shipping, or a batch the
// sidecar dead-lettered) stops the log's Merkle frontier where the hole begins. Records that fill
// the hole in a later batch (`warden audit reship`) are checked against both neighbours; then the
// frontier takes the leaves it stopped short of, checking every checkpoint that waited, and the gap
// alerts up to where it stops are resolved.
import type { MerkleFrontier } from '../proxy/audit/merkle.ts';
import type { IngestTx, IntegrityAlert } from './ingest.ts';

export const ZERO_HASH = '0'.repeat(64);

/**
 * Leaves read at a time when a filled gap lets the Merkle frontier catch up, and pages in one batch:
 * a gap filled far back does not hold one ingest (and its log's lock) for the whole log after it.
 */
export interface CatchUpLimits {
  page: number;
  pages: number;
}

export const CATCH_UP: CatchUpLimits = Object.freeze({ page: 10_000, pages: 10 });

/** The prev_hash a stored record's body names, if it names one (the stores' `prevHashAt`). */
export function prevHashOf(body: string): string | undefined {
  try {
    const prev = (JSON.parse(body) as { prev_hash?: unknown }).prev_hash;
    return typeof prev === 'string' ? prev : undefined;
  } catch {
    return undefined;
  }
}

interface GapContext {
  tx: IngestTx;
  logId: string;
  fleet: string;
  frontier: MerkleFrontier;
  limits: CatchUpLimits;
  raise(a: IntegrityAlert): Promise<void>;
}

/** One batch's filling of its log's holes. */
export class GapFiller {
  /** Records this batch filled holes with. */
  filled = 0;
  readonly #c: GapContext;
  // Leaves of the records this batch filled holes with, by seq: a run of them links among itself
  // without a query, and only its ends are checked against what the store holds.
  readonly #fills = new Map<number, string>();

  constructor(c: GapContext) {
    this.#c = c;
  }

  /**
   * A record for a seq the log has a hole at (`wellFormed`: its own checks passed). Stored like any
   * record, and checked against the record before it; the one after is checked by `checkEnds`.
   */
  async fill(seq: number, parsed: Record<string, any>, body: string, leaf: Buffer, wellFormed: boolean): Promise<void> {
    const { tx, logId, fleet } = this.#c;
    let verified = wellFormed;
    const prev = seq === 1 ? ZERO_HASH : this.#fills.get(seq - 1) ?? (await tx.leafAt(logId, seq - 1))?.toString('hex');
    if (prev === undefined) verified = false; // still a hole before it
    else if (parsed.prev_hash !== prev) {
      verified = false;
      await this.#c.raise({ logId, seq, kind: 'chain_break', detail: `record ${seq}, which came late to fill a gap, does not link to record ${seq - 1}` });
    }
    await tx.insertRecord({ logId, seq, ts: String(parsed.ts ?? ''), event: String(parsed.event ?? ''), leaf, body, parsed, verified }, fleet);
    this.#fills.set(seq, leaf.toString('hex'));
    this.filled++;
  }

  /** The records held just after each run of fills must link to its last one. */
  async checkEnds(): Promise<void> {
    const { tx, logId } = this.#c;
    for (const [seq, leaf] of this.#fills) {
      if (this.#fills.has(seq + 1)) continue;
      const next = await tx.prevHashAt(logId, seq + 1);
      if (next !== undefined && next !== leaf) {
        await this.#c.raise({ logId, seq: seq + 1, kind: 'chain_break', detail: `record ${seq + 1}'s prev_hash does not link to record ${seq}, which came late to fill a gap` });
      }
    }
  }

  /**
   * The frontier takes the leaves it stopped short of, as far as they now run without a hole (a page
   * at a time, and at most `limits.pages` in one batch: the next batch goes on), and checks each
   * checkpoint held on the way (those came while roots could not be computed); each gap alert up to
   * where it stops is resolved.
   */
  async catchUp(size: number): Promise<void> {
    const { tx, logId, frontier, limits } = this.#c;
    const from = frontier.size;
    for (let pages = 0; pages < limits.pages; pages++) {
      const page = await tx.leavesAfter(logId, frontier.size, size, limits.page);
      const roots = page.length > 0 ? await tx.checkpointRoots(logId, frontier.size, page[page.length - 1].seq) : new Map<number, string>();
      for (const { seq, leaf } of page) {
        if (seq !== frontier.size + 1) break;
        frontier.append(leaf);
        const signed = roots.get(frontier.size);
        if (signed !== undefined && signed !== frontier.root().toString('hex')) {
          await this.#c.raise({ logId, seq: frontier.size, kind: 'root_mismatch', detail: `the signed root at size ${frontier.size} does not match the records held, now that the gap before it is filled (the log was rewritten)` });
        }
      }
      if (page.length < limits.page || frontier.size !== page[page.length - 1].seq) break;
    }
    if (frontier.size > from) await tx.resolveGaps(logId, frontier.size);
  }
}
