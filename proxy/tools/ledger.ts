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

/**
 * The forms in which an agent may fairly hand a result back to its model: the whole result, an MCP
 * result's structuredContent, or its text content (one block, or all of them joined).
 */
export function resultForms(result: unknown): string[] {
  const forms = new Set<string>([contentHash(result)]);
  const r = result as { structuredContent?: unknown; content?: unknown } | null;
  if (r && typeof r === 'object' && !Array.isArray(r)) {
    if (r.structuredContent !== undefined) forms.add(contentHash(r.structuredContent));
    if (Array.isArray(r.content)) {
      const texts = r.content.filter((b) => b?.type === 'text' && typeof b.text === 'string').map((b) => b.text as string);
      if (texts.length > 0) {
        forms.add(contentHash(texts.join('\n')));
        forms.add(contentHash(texts.join('')));
        forms.add(contentHash(r.content));
      }
    }
  }
  return [...forms];
}

// Issued calls without a result are matched to a tool call through Warden by tool and arguments;
// how far back to look, so an old identical call does not soak up a new result.
const MATCH_WINDOW_MS = 24 * 3600 * 1000;

export class ToolLedger {
  private readonly db: Database.Database;
  private readonly insertIssued: Database.Statement;
  private readonly getEntry: Database.Statement;
  private readonly matchIssued: Database.Statement;
  private readonly setResult: Database.Statement;
  private readonly insertNote: Database.Statement;
  private readonly popNotes: Database.Statement;

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
        PRIMARY KEY (agent, call_id)
      ) STRICT;
      CREATE INDEX IF NOT EXISTS tool_calls_open ON tool_calls (agent, tool, args_hash, issued_at) WHERE result_hashes IS NULL;
      CREATE TABLE IF NOT EXISTS session_notes (
        id INTEGER PRIMARY KEY, agent TEXT NOT NULL, session TEXT NOT NULL, note TEXT NOT NULL, at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS session_notes_by_session ON session_notes (agent, session);
    `);
    this.insertIssued = this.db.prepare('INSERT OR IGNORE INTO tool_calls (agent, call_id, session, tool, args_hash, issued_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.getEntry = this.db.prepare('SELECT tool, args_hash AS argsHash, session, result_hashes AS resultHashes FROM tool_calls WHERE agent = ? AND call_id = ?');
    this.matchIssued = this.db.prepare(`SELECT call_id AS callId FROM tool_calls WHERE agent = ? AND tool = ? AND args_hash = ? AND result_hashes IS NULL
      AND issued_at >= ? AND (? IS NULL OR session IS ? OR session IS NULL) ORDER BY issued_at DESC LIMIT 1`);
    this.setResult = this.db.prepare('UPDATE tool_calls SET result_hashes = ?, result_at = ? WHERE agent = ? AND call_id = ?');
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
   * A tool result that came back through Warden. Matched to the model's call by its id when the agent
   * sent one, else by tool and arguments (the latest open call). Returns the call id it answered, or
   * undefined when no issued call matches (the agent called the tool on its own: recorded under a
   * synthetic id so a later claim of it still finds nothing issued).
   */
  recordResult(agent: string, session: string | undefined, tool: string, args: unknown, result: unknown, callId?: string): string | undefined {
    const id = callId ?? (this.matchIssued.get(agent, tool, argsHash(args), Date.now() - MATCH_WINDOW_MS, session ?? null, session ?? null) as { callId: string } | undefined)?.callId;
    if (!id) return undefined;
    this.setResult.run(resultForms(result).join(','), Date.now(), agent, id);
    return id;
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
