// What each agent and task spent per UTC day, in SQLite in the data directory (limits.db), so a
// restarted sidecar does not hand a spent budget a fresh day. One row per day, agent and scope: the
// agent's total, and one per task id.
import Database from 'better-sqlite3';

// Only today's rows decide anything; a week is kept for anyone looking into a budget after the fact.
const KEEP_DAYS = 7;
const DAY_MS = 86_400_000;
// Costs are added in memory at once and written in one transaction this often: a write per call
// would put SQLite on every call's path. A crash loses at most this much spend (the day's budget
// under-counts by the calls in it; it never locks an agent out).
const FLUSH_MS = 1_000;
// Past this many cached day/agent/task totals the cache starts afresh (after a flush, so nothing is
// lost): a sidecar serving a million task ids a day reads them back from SQLite instead.
const MAX_CACHED = 100_000;

// The day of the last instant asked about: every call asks, and days change rarely.
let lastDay = { start: 0, end: 0, text: '' };

/** The UTC day of an instant, as YYYY-MM-DD. */
export function utcDay(ms: number): string {
  if (ms >= lastDay.start && ms < lastDay.end) return lastDay.text;
  const start = ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
  lastDay = { start, end: start + DAY_MS, text: new Date(ms).toISOString().slice(0, 10) };
  return lastDay.text;
}

/** Milliseconds from `ms` to the next UTC midnight, when a day's budget starts afresh. */
export function msToUtcMidnight(ms: number): number {
  return DAY_MS - (ms % DAY_MS);
}

function scopeOf(task: string | undefined): string {
  // The prefix keeps every task id apart from the agent's own total, whatever the id says.
  return task === undefined ? 'agent' : `task:${task}`;
}

export class SpendStore {
  private readonly db: Database.Database;
  private readonly getSpent: Database.Statement;
  private readonly addSpent: Database.Statement;
  private readonly pruneDays: Database.Statement;
  private prunedThrough = '';
  /** Spend by day, agent and scope as read or added; the store's answers come from here. */
  private readonly cache = new Map<string, number>();
  /** Added since the last flush, by the same key. */
  private readonly pending = new Map<string, { day: string; agent: string; scope: string; usd: number }>();
  private flushTimer: NodeJS.Timeout | undefined;

  /** Opens (creating) the store at `path`; ':memory:' keeps it in memory. */
  constructor(path: string) {
    this.db = new Database(path, { timeout: 2_000 });
    this.db.pragma('journal_mode = WAL');
    // A crash of the process loses nothing in WAL mode; a power cut may lose the last call's cost,
    // which under-counts a budget by one call, never locks an agent out.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS daily_spend (
        day TEXT NOT NULL, agent TEXT NOT NULL, scope TEXT NOT NULL, usd REAL NOT NULL,
        PRIMARY KEY (day, agent, scope)
      ) STRICT, WITHOUT ROWID;
    `);
    this.getSpent = this.db.prepare('SELECT usd FROM daily_spend WHERE day = ? AND agent = ? AND scope = ?');
    this.addSpent = this.db.prepare(`INSERT INTO daily_spend (day, agent, scope, usd) VALUES (?, ?, ?, ?)
      ON CONFLICT (day, agent, scope) DO UPDATE SET usd = usd + excluded.usd`);
    this.pruneDays = this.db.prepare('DELETE FROM daily_spend WHERE day < ?');
  }

  /** USD spent on a UTC day by the agent (no task) or by one of its tasks. */
  spent(day: string, agent: string, task?: string): number {
    return this.cached(day, agent, scopeOf(task));
  }

  /** Adds one call's cost to the agent's total for the day and, with a task, to the task's. */
  add(day: string, agent: string, task: string | undefined, usd: number): void {
    for (const scope of task === undefined ? [scopeOf(undefined)] : [scopeOf(undefined), scopeOf(task)]) {
      const key = `${day}\0${agent}\0${scope}`;
      this.cache.set(key, this.cached(day, agent, scope) + usd);
      const p = this.pending.get(key);
      if (p) p.usd += usd;
      else this.pending.set(key, { day, agent, scope, usd });
    }
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
    if (day !== this.prunedThrough) this.prune(day);
  }

  /** Writes the spend added since the last flush, in one transaction. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending.clear();
    this.db.transaction(() => {
      for (const r of rows) this.addSpent.run(r.day, r.agent, r.scope, r.usd);
    })();
  }

  private cached(day: string, agent: string, scope: string): number {
    const key = `${day}\0${agent}\0${scope}`;
    let usd = this.cache.get(key);
    if (usd === undefined) {
      if (this.cache.size >= MAX_CACHED) {
        this.flush();
        this.cache.clear();
      }
      usd = (this.getSpent.get(day, agent, scope) as { usd: number } | undefined)?.usd ?? 0;
      this.cache.set(key, usd);
    }
    return usd;
  }

  /** Forgets days older than the week kept before `today`. */
  prune(today: string): number {
    this.prunedThrough = today;
    for (const key of this.cache.keys()) if (key < today) this.cache.delete(key); // keys start with their day
    return this.pruneDays.run(utcDay(Date.parse(today) - KEEP_DAYS * DAY_MS)).changes;
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}
