// A retry budget, as Envoy and gRPC keep one: over a sliding window, retries may be at most a share
// of the calls made (plus a small floor, so a quiet sidecar can still retry at all). When an upstream
// is down, every call fails and wants retrying; without a budget each retry multiplies the load on
// an upstream that is already struggling, and an outage becomes a retry storm.

export interface BudgetConfig {
  /** Retries allowed per call in the window (0.2: one retry per five calls). */
  ratio: number;
  /** Retries always allowed per window, whatever the call count. */
  minRetries: number;
  windowMs: number;
}

// The window is kept as this many buckets: fine enough to slide smoothly, small enough to sum per retry.
const BUCKETS = 10;

/** Calls and retries over a sliding window, per upstream. */
export class RetryBudget {
  readonly #config: BudgetConfig;
  readonly #calls = new Array<number>(BUCKETS).fill(0);
  readonly #retries = new Array<number>(BUCKETS).fill(0);
  #bucket = 0;
  #bucketStart = 0;
  readonly #now: () => number;

  constructor(config: BudgetConfig, now: () => number = Date.now) {
    this.#config = config;
    this.#now = now;
    this.#bucketStart = now();
  }

  /** Counts a call's first attempt. */
  recordCall(): void {
    this.#advance();
    this.#calls[this.#bucket]++;
  }

  /** Takes one retry from the budget: false when the window has none left (and nothing is taken). */
  tryRetry(): boolean {
    this.#advance();
    const calls = sum(this.#calls);
    const retries = sum(this.#retries);
    if (retries >= Math.max(this.#config.minRetries, Math.floor(calls * this.#config.ratio))) return false;
    this.#retries[this.#bucket]++;
    return true;
  }

  /** Moves the window forward, clearing buckets that fell out of it. */
  #advance(): void {
    const width = this.#config.windowMs / BUCKETS;
    const steps = Math.floor((this.#now() - this.#bucketStart) / width);
    if (steps <= 0) return;
    for (let i = 0; i < Math.min(steps, BUCKETS); i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#calls[this.#bucket] = 0;
      this.#retries[this.#bucket] = 0;
    }
    this.#bucketStart += steps * width;
  }
}

function sum(a: readonly number[]): number {
  let s = 0;
  for (const n of a) s += n;
  return s;
}
