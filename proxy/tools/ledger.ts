// The tool ledger: Warden's memory of every tool call a model issued and every tool result that came
// back through Warden, so a later model request can be held to it. A tool result in a conversation
// must answer a call id the model really issued (in a response Warden relayed), and for a tool that
// runs through Warden its content must be what the tool returned. A model (or an agent framework)
// that invents a result for a broken tool, edits one, or answers a call that was never made, is
// caught here. SQLite in the data directory, so the memory survives a restart of the sidecar.
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { canonicalize } from '../audit/canonical-json.ts';

export interface IssuedCall {
  callId: string;
  tool: string;
  /** The arguments as the model wrote them. */
  arguments: string;
}

export interface LedgerEntry {
  tool: string;
  argsHash: string;
  session?: string;
  /** Hashes of the forms of the result an agent may pass back (see resultForms); undefined until one is recorded. */
  resultHashes?: string[];
}

/** SHA-256 of a value's canonical form: JSON text is compared as JSON, other text with whitespace collapsed. */
export function contentHash(content: unknown): string {
  let canonical: string;
  if (typeof content === 'string') {
    try {
      canonical = canonicalize(JSON.parse(content));
    } catch {
      canonical = JSON.stringify(content.replace(/\s+/g, ' ').trim());
    }
  } else {
    canonical = canonicalize(content ?? null);
  }
  return createHash('sha256').update(canonical).digest('hex');
}

/** Arguments as JSON text (a model's) or a value (an HTTP or MCP call's), hashed alike; none is {}. */
function argsHash(args: unknown): string {
  return contentHash(args === undefined || (typeof args === 'string' && args.trim() === '') ? {} : args);
}

/** The value with null-valued object keys dropped (SDKs serialise absent optionals either way). */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, withoutNulls(x)]));
}

/**
 * The forms in which an agent may fairly hand a result back to its model: the whole result, an MCP
 * result's structuredContent, its content blocks (all, or one), or their text (joined), each with
 * and without null-valued keys.
 */
export function resultForms(result: unknown): string[] {
  const values: unknown[] = [result];
  const r = result as { structuredContent?: unknown; content?: unknown } | null;
  if (r && typeof r === 'object' && !Array.isArray(r)) {
    if (r.structuredContent !== undefined) values.push(r.structuredContent);
    if (Array.isArray(r.content)) {
      values.push(r.content, ...r.content);
      const texts = r.content.filter((b) => b?.type === 'text' && typeof b.text === 'string').map((b) => b.text as string);
      if (texts.length > 0) values.push(texts.join('\n'), texts.join(''));
    }
  }
  return [...new Set(values.flatMap((v) => [contentHash(v), contentHash(withoutNulls(v))]))];
}

// Issued calls without a result are matched to a tool call through Warden by tool and arguments;
// how far back to look, so an old identical call does not soak up a new result.
const MATCH_WINDOW_MS = 24 * 3600 * 1000;
const MAX_FORMS = 64;

export class ToolLedger {
  private readonly db: Database.Database;
  private readonly insertIssued: Database.Statement;
  private readonly getEntry: Database.Statement;
  private readonly matchIssued: Database.Statement;
  private readonly setResult: Database.Statement;
  private readonly insertNote: Database.Statement;
  private readonly popNotes: Database.Statement;
  private readonly pruneCalls: Database.Statement;
  private readonly pruneNotes: Database.Statement;

  /** Opens (creating) the ledger at `path`; ':memory:' keeps it in memory. */
  constructor(path: string) {
    this.db = new Database(path, { timeout: 2_000 });
    this.db.pragma('journal_mode = WAL');
    // A lost ledger write after a power cut costs a false alarm, never a missed call record.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tool_calls (
        agent TEXT NOT NULL, call_id TEXT NOT NULL, session TEXT, tool TEXT NOT NULL, args_hash TEXT NOT NULL,
        issued_at INTEGER NOT NULL, result_hashes TEXT, result_at INTEGER,
        -- 1 once the tool itself answered; a degradation result leaves the call open to a retry.
        result_final INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (agent, call_id)
      ) STRICT;
      CREATE INDEX IF NOT EXISTS tool_calls_open ON tool_calls (agent, tool, args_hash, issued_at) WHERE result_final = 0;
      CREATE INDEX IF NOT EXISTS tool_calls_age ON tool_calls (issued_at);
      CREATE TABLE IF NOT EXISTS session_notes (
        id INTEGER PRIMARY KEY, agent TEXT NOT NULL, session TEXT NOT NULL, note TEXT NOT NULL, at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS session_notes_by_session ON session_notes (agent, session);
    `);
    // A provider that reuses call ids (call_0 in every turn) makes the newest issue the one that counts.
    this.insertIssued = this.db.prepare(`INSERT INTO tool_calls (agent, call_id, session, tool, args_hash, issued_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (agent, call_id) DO UPDATE SET session = excluded.session, tool = excluded.tool, args_hash = excluded.args_hash,
        issued_at = excluded.issued_at, result_hashes = NULL, result_at = NULL, result_final = 0
      WHERE excluded.tool <> tool OR excluded.args_hash <> args_hash`);
    this.getEntry = this.db.prepare('SELECT tool, args_hash AS argsHash, session, result_hashes AS resultHashes FROM tool_calls WHERE agent = ? AND call_id = ?');
    this.matchIssued = this.db.prepare(`SELECT call_id AS callId FROM tool_calls WHERE agent = ? AND tool = ? AND args_hash = ? AND result_final = 0
      AND issued_at >= ? AND (? IS NULL OR session IS ? OR session IS NULL) ORDER BY issued_at DESC LIMIT 1`);
    this.setResult = this.db.prepare('UPDATE tool_calls SET result_hashes = ?, result_at = ?, result_final = max(result_final, ?) WHERE agent = ? AND call_id = ?');
    this.pruneCalls = this.db.prepare('DELETE FROM tool_calls WHERE issued_at < ?');
    this.pruneNotes = this.db.prepare('DELETE FROM session_notes WHERE at < ?');
    this.insertNote = this.db.prepare('INSERT INTO session_notes (agent, session, note, at) VALUES (?, ?, ?, ?)');
    this.popNotes = this.db.prepare('DELETE FROM session_notes WHERE agent = ? AND session = ? RETURNING note, id');
  }

  /** A note for the next model request in the session (a tool failed: the model should know). */
  addNote(agent: string, session: string, note: string): void {
    this.insertNote.run(agent, session, note, Date.now());
  }

  /** The session's pending notes, oldest first; each is handed out once. */
  takeNotes(agent: string, session: string): string[] {
    return (this.popNotes.all(agent, session) as { note: string; id: number }[]).sort((a, b) => a.id - b.id).map((r) => r.note);
  }

  /** The tool calls a model response handed to the agent. */
  recordIssued(agent: string, session: string | undefined, calls: readonly IssuedCall[]): void {
    if (calls.length === 0) return;
    const now = Date.now();
    this.db.transaction(() => {
      for (const c of calls) if (c.callId) this.insertIssued.run(agent, c.callId, session ?? null, c.tool, argsHash(c.arguments), now);
    })();
  }

  /**
   * A tool result that came back through Warden (`final` false for a degradation result Warden made
   * up for a failed call, which a retry may still answer). It answers the call id the agent named only
   * if that call was for this tool with these arguments; else the latest open call with both. Every
   * result the tool gave for a call is accepted later. Returns the call id, or undefined when no issued
   * call matches: the result is then owned by no call, and a conversation that claims it is caught.
   */
  recordResult(agent: string, session: string | undefined, tool: string, args: unknown, result: unknown, final: boolean, callId?: string): string | undefined {
    const hash = argsHash(args);
    const named = callId ? this.lookup(agent, callId) : undefined;
    const id = named && named.tool === tool && named.argsHash === hash
      ? callId
      : (this.matchIssued.get(agent, tool, hash, Date.now() - MATCH_WINDOW_MS, session ?? null, session ?? null) as { callId: string } | undefined)?.callId;
    if (!id) return undefined;
    const known = this.lookup(agent, id)?.resultHashes ?? [];
    // Bounded: a call answered again and again keeps its latest forms.
    this.setResult.run([...new Set([...known, ...resultForms(result)])].slice(-MAX_FORMS).join(','), Date.now(), final ? 1 : 0, agent, id);
    return id;
  }

  /** Forgets calls and notes older than `ms`; a conversation that old quoting a result is flagged. */
  prune(ms: number): number {
    const before = Date.now() - ms;
    this.pruneNotes.run(before);
    return this.pruneCalls.run(before).changes;
  }

  /** What the ledger knows of a call id. */
  lookup(agent: string, callId: string): LedgerEntry | undefined {
    const row = this.getEntry.get(agent, callId) as { tool: string; argsHash: string; session: string | null; resultHashes: string | null } | undefined;
    if (!row) return undefined;
    return { tool: row.tool, argsHash: row.argsHash, session: row.session ?? undefined, resultHashes: row.resultHashes?.split(',') };
  }

  close(): void {
    this.db.close();
  }
}
