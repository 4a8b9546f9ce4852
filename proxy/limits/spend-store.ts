// What each agent and task spent per UTC day, in SQLite in the data directory (limits.db), so a
// restarted sidecar does not hand a spent budget a fresh day. One row per day, agent and scope: the
// agent's total, and one per task id.
import Database from 'better-sqlite3';

// Only today's rows decide anything; a week is kept for anyone looking into a budget after the fact.
const KEEP_DAYS = 7;
const DAY_MS = 86_400_000;

/** The UTC day of an instant, as YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
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
    return (this.getSpent.get(day, agent, scopeOf(task)) as { usd: number } | undefined)?.usd ?? 0;
  }

  /** Adds one call's cost to the agent's total for the day and, with a task, to the task's. */
  add(day: string, agent: string, task: string | undefined, usd: number): void {
    this.db.transaction(() => {
      this.addSpent.run(day, agent, scopeOf(undefined), usd);
      if (task !== undefined) this.addSpent.run(day, agent, scopeOf(task), usd);
    })();
    if (day !== this.prunedThrough) this.prune(day);
  }

  /** Forgets days older than the week kept before `today`. */
  prune(today: string): number {
    this.prunedThrough = today;
    return this.pruneDays.run(utcDay(Date.parse(today) - KEEP_DAYS * DAY_MS)).changes;
  }

  close(): void {
    this.db.close();
  }
}
