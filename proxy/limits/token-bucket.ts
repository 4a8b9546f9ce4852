// A token bucket: it holds `capacity` tokens and refills continuously at `capacity` per period, so
// N calls may come at once and then one every period/N. It is the shape Anthropic documents for its
// own rate limits (and OpenAI's replenishing limits follow), so an agent's SDK already knows what to
// expect. Against a fixed window there is no boundary at which 2N calls get through; against a
// sliding log, memory is O(1) whatever the limit, and a freed slot shows up period/N after it was
// spent, which is the Retry-After an agent can act on. The level may go below zero: a call's true
// cost (its reported usage) is charged after the fact, and the debt delays the next call by exactly
// as long as the bucket takes to earn it back.

// Float noise in the refill arithmetic (a third of a token per second, summed), far below one token
// or one millisecond: without it a slot due at 20000 ms could show up at 20000.0000001.
const EPSILON = 1e-6;

export class TokenBucket {
  #capacity: number;
  #periodMs: number;
  #level: number;
  #at: number;

  /** A full bucket at `now` (epoch ms). */
  constructor(capacity: number, periodMs: number, now: number) {
    this.#capacity = capacity;
    this.#periodMs = periodMs;
    this.#level = capacity;
    this.#at = now;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** The tokens available at `now` (negative while a charge is being paid off). */
  level(now: number): number {
    // A clock that steps back (NTP) refills nothing rather than draining the bucket.
    if (now > this.#at) {
      // Multiplying before dividing keeps whole-token refills exact (3 per minute: one at 20000 ms).
      this.#level = Math.min(this.#capacity, this.#level + ((now - this.#at) * this.#capacity) / this.#periodMs);
      this.#at = now;
    }
    return this.#level;
  }

  /**
   * Whole milliseconds until `cost` tokens are there (0: now). A cost over the capacity waits for a full
   * bucket and then drives it into debt: a request bigger than the whole allowance still goes, once.
   */
  waitMs(cost: number, now: number): number {
    const need = Math.min(cost, this.#capacity);
    const level = this.level(now);
    if (level + EPSILON >= need) return 0;
    // Whole milliseconds, rounded up (the clock has no finer grain), so that at now + waitMs the call fits.
    return Math.max(1, Math.ceil(((need - level) * this.#periodMs) / this.#capacity - EPSILON));
  }

  /** Takes `cost` tokens (the caller checked waitMs first); the level may go negative. */
  take(cost: number, now: number): void {
    this.level(now);
    this.#level -= cost;
  }

  /** Gives back tokens a reservation did not use, never above the capacity. */
  give(tokens: number, now: number): void {
    this.level(now);
    this.#level = Math.min(this.#capacity, this.#level + tokens);
  }

  /**
   * Takes new settings (a policy reload) keeping what has been spent: a bucket 40 short of 100 is
   * 40 short of 200 after the limit is raised, so a reload neither refills nor drains it.
   */
  resize(capacity: number, periodMs: number, now: number): void {
    if (capacity === this.#capacity && periodMs === this.#periodMs) return;
    const spent = this.#capacity - this.level(now);
    this.#capacity = capacity;
    this.#periodMs = periodMs;
    this.#level = capacity - spent;
  }
}
