// The sidecar's limits: requests and tokens per minute, calls in flight, USD per UTC day, per agent
// and per task (x-warden-task), and irreversible tool calls per hour. One Limiter lives as long as the
// sidecar (RuntimeServices), so a policy reload neither refills a bucket nor forgets a day's spend;
// each call is judged against the limits of the policy it runs under. Daily spend is in SQLite and
// survives a restart; the rate buckets are in memory, and a restart starts them full.
import type { LimitsConfig } from '../../policies/types.ts';
import type { CallContext } from '../stage.ts';
import { msToUtcMidnight, utcDay, type SpendStore } from './spend-store.ts';
import { TokenBucket } from './token-bucket.ts';

/** The `limit` label of warden_rate_limited_total. */
export type LimitName =
  | 'requests_per_minute' | 'tokens_per_minute' | 'concurrent' | 'usd_per_day' | 'irreversible_tools'
  | 'task_requests_per_minute' | 'task_tokens_per_minute' | 'task_usd_per_day';

/** A limit a call ran into, and when it could go. */
export interface LimitHit {
  limit: LimitName;
  /** The policy key that set it, e.g. limits.perTask.requestsPerMinute. */
  key: string;
  value: number;
  /** Whole seconds until the limit lets the call through (at least 1): the Retry-After. */
  retryAfterSeconds: number;
  /** One sentence naming the limit and its value, for the agent, the log and the record. */
  message: string;
}

/** What a model call wants from the limits. */
export interface CallDemand {
  agent: string;
  task?: string;
  limits: LimitsConfig;
  /** Tokens to reserve (input estimate plus the output the call may produce); 0 without a token limit. */
  tokens: number;
}

/** What an admitted call holds until it ends (kept in call.state under HOLD). */
export interface Hold {
  reserved: number;
  tokenBuckets: TokenBucket[];
  slot?: { n: number };
  settled?: boolean;
}

/** The call.state key under which the limits stage leaves a call's Hold for settle(). */
export const HOLD = 'limits';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
// A full concurrency limit frees when some call ends, which nobody can predict; one second is the
// shortest wait Retry-After can say.
const CONCURRENT_RETRY_MS = 1_000;
// Task ids are the agent's to make up, so their buckets are bounded; the least recently used task
// is forgotten first (it starts full again if it comes back, still under the agent's own limits).
const MAX_TASKS = 10_000;

interface AgentState {
  requests?: TokenBucket;
  tokens?: TokenBucket;
  irreversible?: TokenBucket;
  inFlight: { n: number };
}

interface TaskState {
  requests?: TokenBucket;
  tokens?: TokenBucket;
}

interface Check {
  limit: LimitName;
  key: string;
  value: number;
  waitMs: number;
  detail: string;
}

export interface LimiterOptions {
  spend: SpendStore;
  /** Epoch milliseconds; tests pass a clock of their own. */
  now?: () => number;
  /** Counts a limit that refused a call (warden_rate_limited_total). */
  onRefused?: (limit: LimitName) => void;
  /** Settling runs as a call ends and must not throw: its faults go here (the sidecar logs them). */
  onError?: (err: unknown) => void;
}

/** Whether a policy sets any limit the limits stage checks on model calls. */
export function limitsModelCalls(l: LimitsConfig): boolean {
  return l.requestsPerMinute !== undefined || l.tokensPerMinute !== undefined || l.concurrent !== undefined || l.usdPerDay !== undefined
    || l.perTask?.requestsPerMinute !== undefined || l.perTask?.tokensPerMinute !== undefined || l.perTask?.usdPerDay !== undefined;
}

/** Whether a policy's token limits need each call's tokens estimated. */
export function countsTokens(l: LimitsConfig): boolean {
  return l.tokensPerMinute !== undefined || l.perTask?.tokensPerMinute !== undefined;
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function usd(n: number): string {
  return `$${Number(n.toFixed(6))}`;
}

export class Limiter {
  readonly #spend: SpendStore;
  readonly #now: () => number;
  readonly #onRefused: (limit: LimitName) => void;
  readonly #onError: (err: unknown) => void;
  readonly #agents = new Map<string, AgentState>();
  // A Map iterates in insertion order; re-inserting on use makes it an LRU.
  readonly #tasks = new Map<string, TaskState>();

  constructor(opts: LimiterOptions) {
    this.#spend = opts.spend;
    this.#now = opts.now ?? Date.now;
    this.#onRefused = opts.onRefused ?? (() => {});
    this.#onError = opts.onError ?? (() => {});
  }

  /**
   * Admits a model call, or names the limit that refuses it. Every limit is checked before any is
   * taken from, so a refused call costs nothing; when several refuse, the one that frees last is
   * named, because its Retry-After is the first moment the call can really go.
   */
  admit(d: CallDemand): { hold: Hold } | { hit: LimitHit } {
    const now = this.#now();
    const l = d.limits;
    const a = this.#agent(d.agent);
    const who = `agent ${d.agent}`;
    const checks: Check[] = [];
    a.requests = bucket(a.requests, l.requestsPerMinute, MINUTE_MS, now);
    a.tokens = bucket(a.tokens, l.tokensPerMinute, MINUTE_MS, now);
    if (l.concurrent !== undefined) {
      checks.push({ limit: 'concurrent', key: 'limits.concurrent', value: l.concurrent, waitMs: a.inFlight.n >= l.concurrent ? CONCURRENT_RETRY_MS : 0, detail: `calls in flight at once for ${who}; one must end first` });
    }
    if (a.requests) checks.push(this.#rate('requests_per_minute', 'limits.requestsPerMinute', a.requests, 1, `requests per minute for ${who}`, now));
    if (a.tokens) checks.push(this.#rate('tokens_per_minute', 'limits.tokensPerMinute', a.tokens, d.tokens, `tokens per minute for ${who}; this call reserves ${d.tokens}, its estimated input plus its max output`, now));
    if (l.usdPerDay !== undefined) checks.push(this.#budget('usd_per_day', 'limits.usdPerDay', l.usdPerDay, d.agent, undefined, who, now));
    let t: TaskState | undefined;
    if (d.task !== undefined && l.perTask) {
      const p = l.perTask;
      const task = `task "${d.task}" of ${who}`;
      t = this.#task(d.agent, d.task);
      t.requests = bucket(t.requests, p.requestsPerMinute, MINUTE_MS, now);
      t.tokens = bucket(t.tokens, p.tokensPerMinute, MINUTE_MS, now);
      if (t.requests) checks.push(this.#rate('task_requests_per_minute', 'limits.perTask.requestsPerMinute', t.requests, 1, `requests per minute for ${task}`, now));
      if (t.tokens) checks.push(this.#rate('task_tokens_per_minute', 'limits.perTask.tokensPerMinute', t.tokens, d.tokens, `tokens per minute for ${task}; this call reserves ${d.tokens}, its estimated input plus its max output`, now));
      if (p.usdPerDay !== undefined) checks.push(this.#budget('task_usd_per_day', 'limits.perTask.usdPerDay', p.usdPerDay, d.agent, d.task, task, now));
    }
    let worst: Check | undefined;
    for (const c of checks) if (c.waitMs > 0 && (!worst || c.waitMs > worst.waitMs)) worst = c;
    if (worst) return { hit: hitOf(worst) };

    const hold: Hold = { reserved: d.tokens, tokenBuckets: [] };
    for (const b of [a.requests, t?.requests]) b?.take(1, now);
    for (const b of [a.tokens, t?.tokens]) {
      if (!b) continue;
      b.take(d.tokens, now);
      hold.tokenBuckets.push(b);
    }
    if (l.concurrent !== undefined) {
      a.inFlight.n++;
      hold.slot = a.inFlight;
    }
    return { hold };
  }

  /**
   * Takes `count` irreversible tool calls from the agent's hourly allowance, or names the limit. A
   * batch bigger than the whole allowance is refused outright: it could never fit.
   */
  takeIrreversible(agent: string, count: number, perHour: number): LimitHit | undefined {
    const now = this.#now();
    const a = this.#agent(agent);
    const b = (a.irreversible = bucket(a.irreversible, perHour, HOUR_MS, now)!);
    const waitMs = count > perHour ? HOUR_MS : b.waitMs(count, now);
    if (waitMs === 0) {
      b.take(count, now);
      return undefined;
    }
    const what = count > 1 ? `this batch has ${count} irreversible calls` : 'the allowance is used up';
    return hitOf({ limit: 'irreversible_tools', key: 'limits.irreversibleToolCallsPerHour', value: perHour, waitMs, detail: `irreversible tool calls per hour for agent ${agent}, and ${what}` });
  }

  /** Counts a refusal the policy enforced (monitor mode records hits without refusing). */
  refused(hit: LimitHit): void {
    this.#onRefused(hit.limit);
  }

  /**
   * Ends a call: frees its concurrency slot, settles its token reservation against the usage the
   * upstream reported (refunding what it did not use, charging what it used beyond), and adds its
   * cost to the day's spend. Without reported usage the reservation stands, except for a call that
   * ended in an error answer (a refusal, an upstream error), which no provider bills. Never throws.
   */
  settle(call: CallContext | undefined, status: number): void {
    if (!call) return;
    try {
      const now = this.#now();
      const hold = call.state.get(HOLD) as Hold | undefined;
      if (hold && !hold.settled) {
        hold.settled = true;
        if (hold.slot) hold.slot.n--;
        if (hold.tokenBuckets.length > 0) {
          const u = call.usage;
          const errorAnswer = status >= 400 && status !== 499;
          const used = u ? u.inputTokens + u.outputTokens : errorAnswer ? 0 : hold.reserved;
          for (const b of hold.tokenBuckets) {
            if (used > hold.reserved) b.take(used - hold.reserved, now);
            else b.give(hold.reserved - used, now);
          }
        }
      }
      if (call.costUsd !== undefined && call.costUsd > 0) this.#spend.add(utcDay(now), call.agent.id, call.task, call.costUsd);
    } catch (err) {
      this.#onError(err);
    }
  }

  /** What the limits hold for an agent (and one of its tasks) right now: for /status-like views and tests. */
  state(agent: string, task?: string): Record<string, number | undefined> {
    const now = this.#now();
    const a = this.#agents.get(agent);
    const t = task === undefined ? undefined : this.#tasks.get(`${agent}\0${task}`);
    const day = utcDay(now);
    return {
      inFlight: a?.inFlight.n ?? 0,
      requests: a?.requests?.level(now), tokens: a?.tokens?.level(now), irreversible: a?.irreversible?.level(now),
      usdToday: this.#spend.spent(day, agent),
      ...(task === undefined ? {} : { taskRequests: t?.requests?.level(now), taskTokens: t?.tokens?.level(now), taskUsdToday: this.#spend.spent(day, agent, task) }),
    };
  }

  close(): void {
    this.#spend.close();
  }

  #rate(limit: LimitName, key: string, b: TokenBucket, cost: number, what: string, now: number): Check {
    return { limit, key, value: b.capacity, waitMs: b.waitMs(cost, now), detail: what };
  }

  #budget(limit: LimitName, key: string, value: number, agent: string, task: string | undefined, who: string, now: number): Check {
    const spent = this.#spend.spent(utcDay(now), agent, task);
    return { limit, key, value, waitMs: spent >= value ? msToUtcMidnight(now) : 0, detail: `USD per UTC day for ${who}, and ${usd(spent)} is spent today` };
  }

  #agent(id: string): AgentState {
    let a = this.#agents.get(id);
    if (!a) this.#agents.set(id, (a = { inFlight: { n: 0 } }));
    return a;
  }

  #task(agent: string, task: string): TaskState {
    const key = `${agent}\0${task}`;
    let t = this.#tasks.get(key);
    if (t) this.#tasks.delete(key);
    else t = {};
    this.#tasks.set(key, t);
    if (this.#tasks.size > MAX_TASKS) this.#tasks.delete(this.#tasks.keys().next().value!);
    return t;
  }
}

/** The bucket for a limit under the current policy: made on first use, resized on reload, dropped when the limit goes. */
function bucket(b: TokenBucket | undefined, capacity: number | undefined, periodMs: number, now: number): TokenBucket | undefined {
  if (capacity === undefined) return undefined;
  if (!b) return new TokenBucket(capacity, periodMs, now);
  b.resize(capacity, periodMs, now);
  return b;
}

function hitOf(c: Check): LimitHit {
  const retryAfterSeconds = seconds(c.waitMs);
  const budget = c.limit.endsWith('usd_per_day');
  const what = budget ? 'daily budget spent' : c.limit === 'concurrent' ? 'concurrency limit reached' : 'rate limit reached';
  const when = budget ? `it starts afresh at UTC midnight, in ${retryAfterSeconds} s` : `retry in ${retryAfterSeconds} s`;
  return {
    limit: c.limit, key: c.key, value: c.value, retryAfterSeconds,
    message: `${what}: ${c.key} is ${budget ? usd(c.value) : c.value} (${c.detail}); ${when}`,
  };
}
