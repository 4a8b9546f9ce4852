// The token ids this sidecar has accepted, each kept until its token expires, so a token seen once is
// refused the second time. In memory and per sidecar: a callee with several replicas behind one
// address has one cache each, and the request binding (a token vouches for one method, path and body)
// plus the short lifetime are what bound a replay across them. Bounded: when it is full of live
// tokens, new ones are refused (fail closed) rather than an unexpired id forgotten.
export type Claim = 'ok' | 'replayed' | 'full';

export class ReplayCache {
  private readonly maxEntries: number;
  // Insertion order is close to expiry order (lifetimes are short and alike), so the expired ones
  // are mostly at the head and cheap to drop.
  private readonly seen = new Map<string, number>();

  constructor(maxEntries = 100_000) {
    this.maxEntries = maxEntries;
  }

  /** Remembers `key` until `expiresAt` (ms); says whether it was already there, or there is no room. */
  claim(key: string, expiresAt: number, now: number): Claim {
    this.dropExpired(now, false);
    const until = this.seen.get(key);
    if (until !== undefined && until > now) return 'replayed';
    if (this.seen.size >= this.maxEntries) {
      this.dropExpired(now, true);
      if (this.seen.size >= this.maxEntries) return 'full';
    }
    this.seen.set(key, expiresAt);
    return 'ok';
  }

  get size(): number {
    return this.seen.size;
  }

  /** Drops expired ids: from the head until a live one, or (`all`) everywhere. */
  private dropExpired(now: number, all: boolean): void {
    for (const [key, until] of this.seen) {
      if (until > now) {
        if (!all) return;
        continue;
      }
      this.seen.delete(key);
    }
  }
}
