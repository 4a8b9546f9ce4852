// Behavioural state in SQLite (evals.db in the data directory): certified baselines, the behavioural
// history (every evaluation, drift event, model change and operator action, in order), the model pins
// an operator's rollback set, and the passive monitor's baseline window. All of it must survive a
// restart: a sidecar that forgot its baseline or its rollback would quietly serve the drifted model.
import Database from 'better-sqlite3';
import type { LiveSample } from './passive.ts';
import type { Baseline } from './types.ts';

export type HistoryKind =
  | 'baseline_certified' | 'evaluation' | 'evaluation_failed' | 'drift' | 'model_change'
  | 'passive_alert' | 'accept' | 'rollback' | 'remediate';

export interface HistoryEntry {
  seq: number;
  at: string;
  agent: string;
  kind: HistoryKind;
  detail: Record<string, unknown>;
}

export interface PinOverride {
  /** The model the agent asks for. */
  alias: string;
  /** The snapshot sent upstream instead, whatever the policy pins. */
  snapshot: string;
  setAt: string;
  reason: string;
}

// History rows past this many per agent are pruned oldest first; a sidecar evaluating every 15 minutes
// keeps about a year.
const MAX_HISTORY = 50_000;

export class EvalStore {
  private readonly db: Database.Database;

  /** Opens (creating) the store at `path`; ':memory:' keeps it in memory. */
  constructor(path: string) {
    this.db = new Database(path, { timeout: 2_000 });
    this.db.pragma('journal_mode = WAL');
    // Baselines, rollbacks and drift events are rare and must not be lost to a power cut.
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS baselines (
        id TEXT PRIMARY KEY, agent TEXT NOT NULL, certified_at TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS baselines_agent ON baselines (agent, active);
      CREATE TABLE IF NOT EXISTS history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, agent TEXT NOT NULL,
        kind TEXT NOT NULL, detail TEXT NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS history_agent ON history (agent, seq);
      CREATE TABLE IF NOT EXISTS pins (
        agent TEXT NOT NULL, alias TEXT NOT NULL, snapshot TEXT NOT NULL, set_at TEXT NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (agent, alias)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS passive_baseline (
        agent TEXT PRIMARY KEY, samples TEXT NOT NULL, saved_at TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;
    `);
  }

  /** Stores a baseline and makes it the agent's active one (the previous stays, for the record). */
  saveBaseline(b: Baseline): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE baselines SET active = 0 WHERE agent = ?').run(b.agent);
      this.db.prepare('INSERT OR REPLACE INTO baselines (id, agent, certified_at, active, body) VALUES (?, ?, ?, 1, ?)')
        .run(b.id, b.agent, b.certifiedAt, JSON.stringify(b));
    })();
  }

  /** The agent's active baseline, if one was certified. */
  activeBaseline(agent: string): Baseline | undefined {
    const row = this.db.prepare('SELECT body FROM baselines WHERE agent = ? AND active = 1').get(agent) as { body: string } | undefined;
    return row && (JSON.parse(row.body) as Baseline);
  }

  /** Every baseline of the agent, newest first, without their trials. */
  baselines(agent: string): { id: string; certifiedAt: string; active: boolean }[] {
    return (this.db.prepare('SELECT id, certified_at, active FROM baselines WHERE agent = ? ORDER BY certified_at DESC').all(agent) as { id: string; certified_at: string; active: number }[])
      .map((r) => ({ id: r.id, certifiedAt: r.certified_at, active: r.active === 1 }));
  }

  /** Appends to the behavioural history and returns the entry. */
  addHistory(agent: string, kind: HistoryKind, detail: Record<string, unknown>, at = new Date()): HistoryEntry {
    const iso = at.toISOString();
    const { lastInsertRowid } = this.db.prepare('INSERT INTO history (at, agent, kind, detail) VALUES (?, ?, ?, ?)').run(iso, agent, kind, JSON.stringify(detail));
    const seq = Number(lastInsertRowid);
    if (seq % 1_000 === 0) this.db.prepare('DELETE FROM history WHERE agent = ? AND seq <= ?').run(agent, seq - MAX_HISTORY);
    return { seq, at: iso, agent, kind, detail };
  }

  /** The agent's history, newest first; `kinds` filters. */
  history(agent: string, opts: { limit?: number; kinds?: readonly HistoryKind[] } = {}): HistoryEntry[] {
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 10_000));
    const kinds = opts.kinds?.length ? opts.kinds : undefined;
    const rows = this.db.prepare(`SELECT seq, at, agent, kind, detail FROM history WHERE agent = ?${kinds ? ` AND kind IN (${kinds.map(() => '?').join(',')})` : ''} ORDER BY seq DESC LIMIT ?`)
      .all(agent, ...(kinds ?? []), limit) as { seq: number; at: string; agent: string; kind: HistoryKind; detail: string }[];
    return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** Pins `alias` to `snapshot` for the agent, above whatever the policy says. */
  setPin(agent: string, alias: string, snapshot: string, reason: string): PinOverride {
    const setAt = new Date().toISOString();
    this.db.prepare('INSERT OR REPLACE INTO pins (agent, alias, snapshot, set_at, reason) VALUES (?, ?, ?, ?, ?)').run(agent, alias, snapshot, setAt, reason);
    return { alias, snapshot, setAt, reason };
  }

  /** Removes an operator's pin; the policy's pin (or none) applies again. */
  clearPin(agent: string, alias: string): boolean {
    return this.db.prepare('DELETE FROM pins WHERE agent = ? AND alias = ?').run(agent, alias).changes > 0;
  }

  /** The operator's pins for the agent. */
  pins(agent: string): PinOverride[] {
    return (this.db.prepare('SELECT alias, snapshot, set_at, reason FROM pins WHERE agent = ?').all(agent) as { alias: string; snapshot: string; set_at: string; reason: string }[])
      .map((r) => ({ alias: r.alias, snapshot: r.snapshot, setAt: r.set_at, reason: r.reason }));
  }

  /** Keeps the passive monitor's baseline window, so a restart compares with the same period. */
  savePassiveBaseline(agent: string, samples: readonly LiveSample[]): void {
    this.db.prepare('INSERT OR REPLACE INTO passive_baseline (agent, samples, saved_at) VALUES (?, ?, ?)').run(agent, JSON.stringify(samples), new Date().toISOString());
  }

  /** The passive baseline window saved for the agent, if any. */
  passiveBaseline(agent: string): LiveSample[] | undefined {
    const row = this.db.prepare('SELECT samples FROM passive_baseline WHERE agent = ?').get(agent) as { samples: string } | undefined;
    return row && (JSON.parse(row.samples) as LiveSample[]);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
