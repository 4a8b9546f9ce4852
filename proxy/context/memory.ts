// Externalized memory: every message a context window drops is kept raw, per agent and session, in
// SQLite with an FTS5 index, and the ones most relevant to the latest user turn (BM25) come back as
// a marked note. It outlives window slides and sidecar restarts; a session's memory can be listed,
// searched and erased (a person's right to erasure).
import { createHmac, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';

export interface Memory {
  id: number;
  session: string;
  role: string;
  text: string;
  /** When it was dropped from the window. */
  at: string;
}

export class MemoryStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly match: Database.Statement;
  private readonly listStmt: Database.Statement;
  private readonly key: Buffer;
  private readonly erasedStmt: Database.Statement;

  /** Opens (creating) the store at `path`; ':memory:' keeps it in memory. */
  constructor(path: string) {
    this.db = new Database(path, { timeout: 2_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Erased text is overwritten in the file, not left in free pages.
    this.db.pragma('secure_delete = ON');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS memories (
        id INTEGER PRIMARY KEY, agent TEXT NOT NULL, session TEXT NOT NULL, role TEXT NOT NULL,
        text TEXT NOT NULL, hash TEXT NOT NULL, at TEXT NOT NULL, UNIQUE (agent, session, hash)
      ) STRICT;
      CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(text, content='memories', content_rowid='id', tokenize='porter unicode61');
      CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text);
      END;
      CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
      END;
      -- Erased messages, by keyed hash only: the agent keeps resending its conversation, and an
      -- erased message must not come back the next time a window drops it.
      CREATE TABLE IF NOT EXISTS erased (agent TEXT NOT NULL, session TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (agent, session, hash)) STRICT;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      -- The session's latest summary of the units a window dropped (made once per slide, kept across restarts).
      CREATE TABLE IF NOT EXISTS summaries (agent TEXT NOT NULL, session TEXT NOT NULL, dropped INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (agent, session)) STRICT;
    `);
    // The hash key stays in the file: without it, a tombstone of a short secret could be brute-forced.
    this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('hash_key', randomBytes(32).toString('hex'));
    this.key = Buffer.from((this.db.prepare("SELECT value FROM meta WHERE key = 'hash_key'").get() as { value: string }).value, 'hex');
    // The same message dropped again (each request resends the conversation) is stored once.
    this.insert = this.db.prepare(`INSERT OR IGNORE INTO memories (agent, session, role, text, hash, at) SELECT @agent, @session, @role, @text, @hash, @at
      WHERE NOT EXISTS (SELECT 1 FROM erased WHERE agent = @agent AND session = @session AND hash = @hash)`);
    this.match = this.db.prepare(`SELECT m.id, m.session, m.role, m.text, m.at FROM memories_fts f JOIN memories m ON m.id = f.rowid
      WHERE memories_fts MATCH ? AND m.agent = ? AND m.session = ? ORDER BY bm25(memories_fts) LIMIT ?`);
    this.erasedStmt = this.db.prepare('SELECT 1 FROM erased WHERE agent = ? AND session = ? AND hash = ?');
    this.listStmt = this.db.prepare('SELECT id, session, role, text, at FROM memories WHERE agent = ? AND session = ? ORDER BY id LIMIT ? OFFSET ?');
  }

  /** Keeps messages a window dropped. */
  store(agent: string, session: string, messages: readonly { role: string; text: string }[]): number {
    const at = new Date().toISOString();
    let added = 0;
    this.db.transaction(() => {
      for (const m of messages) {
        if (!m.text.trim()) continue;
        added += this.insert.run({ agent, session, role: m.role, text: m.text, hash: this.hashOf(m.role, m.text), at }).changes;
      }
    })();
    return added;
  }

  /** The session's memories most relevant to `query` (BM25), best first. */
  recall(agent: string, session: string, query: string, k: number): Memory[] {
    const terms = ftsQuery(query);
    if (!terms) return [];
    return this.match.all(terms, agent, session, k) as Memory[];
  }

  list(agent: string, session: string, limit = 100, offset = 0): Memory[] {
    return this.listStmt.all(agent, session, limit, offset) as Memory[];
  }

  /** Erases a session's memory and summary, for good: the same messages are not kept or summarized again; returns how many went. */
  erase(agent: string, session: string): number {
    return this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO erased (agent, session, hash) SELECT agent, session, hash FROM memories WHERE agent = ? AND session = ?').run(agent, session);
      this.db.prepare('DELETE FROM summaries WHERE agent = ? AND session = ?').run(agent, session);
      return this.db.prepare('DELETE FROM memories WHERE agent = ? AND session = ?').run(agent, session).changes;
    })();
  }

  /**
   * Erases a session and makes sure the text is gone from the files too: the index rebuilt without
   * it, and the write-ahead log (which still holds the old pages) checkpointed and truncated.
   */
  eraseDurably(agent: string, session: string): number {
    const n = this.erase(agent, session);
    this.db.exec("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')");
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return n;
  }

  /** Whether a person had this message erased from the session (it is then neither kept nor summarized). */
  isErased(agent: string, session: string, role: string, text: string): boolean {
    return this.erasedStmt.get(agent, session, this.hashOf(role, text)) !== undefined;
  }

  summary(agent: string, session: string): { dropped: number; text: string } | undefined {
    return this.db.prepare('SELECT dropped, text FROM summaries WHERE agent = ? AND session = ?').get(agent, session) as { dropped: number; text: string } | undefined;
  }

  saveSummary(agent: string, session: string, dropped: number, text: string): void {
    this.db.prepare('INSERT INTO summaries (agent, session, dropped, text) VALUES (?, ?, ?, ?) ON CONFLICT (agent, session) DO UPDATE SET dropped = excluded.dropped, text = excluded.text').run(agent, session, dropped, text);
  }

  private hashOf(role: string, text: string): string {
    return createHmac('sha256', this.key).update(role).update('\u0000').update(text).digest('hex');
  }

  close(): void {
    this.db.close();
  }
}

// Words too common to say what a turn is about; matching on them would recall everything.
const STOP = new Set('a an and are as at be but by can did do does for from had has have he her his how i if in is it its me my of on or our she so that the their them they this to was we were what when where which who why will with you your'.split(' '));

/** The user's words as an FTS5 query: each word quoted (no operator injection), any may match. */
function ftsQuery(text: string): string {
  const words = [...new Set((text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}_-]*/gu) ?? []).filter((w) => !STOP.has(w) && w.length > 1))].slice(0, 32);
  return words.map((w) => `"${w.replace(/"/g, '""')}"`).join(' OR ');
}
