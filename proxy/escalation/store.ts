// The escalation queue's storage: $WARDEN_DATA_DIR/escalations.db (SQLite, WAL). Each held call is a
// row with its deadline written down, so a sidecar restart keeps the clock, and a decision made while
// nobody waits (the agent's request was cut by a restart) is there when the call is sent again. A
// webhook outbox beside it lets notifications resume after a restart too.
import { createHash, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { canonicalize } from '../audit/canonical-json.ts';

export type EscalationState = 'pending' | 'approved' | 'rejected' | 'timed_out';
export type EscalationKind = 'tool_call' | 'model_answer';

/** One answer a person may pick (a parallel jury's distinct answers, its pick first). */
export interface Candidate {
  text: string;
  toolCalls?: unknown;
  confidence?: number;
  votes?: number;
}

/** What a person decided, as stored. */
export interface DecisionRecord {
  by?: string;
  note?: string;
  /** Approved tool call: the arguments to run it with (edited, or the original ones), and their hash. */
  args?: unknown;
  argsHash?: string;
  edited?: boolean;
  /** Approved model answer: the candidate picked. */
  choice?: number;
}

export interface Escalation {
  id: string;
  kind: EscalationKind;
  state: EscalationState;
  /** Identifies the held call, so the same call sent again attaches to its escalation. */
  key: string;
  agent: string;
  session?: string;
  task?: string;
  /** The request that opened it. */
  requestId: string;
  tool?: string;
  reason: string;
  /** Tool call: its arguments, their hash, and the tool's argument schema when it was held. */
  args?: unknown;
  argsHash?: string;
  argsSchema?: unknown;
  candidates?: Candidate[];
  /** Epoch milliseconds. */
  createdAt: number;
  deadline: number;
  decidedAt?: number;
  /** When the held call got its outcome: it is not handed to a later call. */
  consumedAt?: number;
  decision?: DecisionRecord;
}

export type NewEscalation = Omit<Escalation, 'state' | 'decidedAt' | 'consumedAt' | 'decision'>;

/**
 * A jury's answer kept with its escalation, as the upstream sent it (candidates hold only what the
 * reviewer reads), so the same call sent again after a restart gets the person's pick replayed
 * without asking the upstream again. Dropped once delivered, or with the escalation.
 */
export interface KeptAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  /** The upstream and model that answered. */
  upstream: string;
  model?: string;
  confidence?: number;
}

/** SHA-256 of a value's RFC 8785 canonical JSON (absent arguments count as {}). */
export function argsHash(args: unknown): string {
  return createHash('sha256').update(canonicalize(args ?? {})).digest('hex');
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** esc_ and 12 random base32 characters (60 bits): short enough to type, long enough never to collide. */
export function newEscalationId(): string {
  const bytes = randomBytes(12);
  let id = 'esc_';
  for (let i = 0; i < 12; i++) id += BASE32[bytes[i] & 31];
  return id;
}

interface Row {
  id: string; created_at: number; deadline: number; state: EscalationState; kind: EscalationKind; key: string;
  agent: string; session: string | null; task: string | null; request_id: string; tool: string | null; reason: string;
  subject: string; args_hash: string | null; decision: string | null; decided_at: number | null; consumed_at: number | null;
}

function fromRow(r: Row): Escalation {
  const subject = JSON.parse(r.subject) as { args?: unknown; schema?: unknown; candidates?: Candidate[] };
  return {
    id: r.id, kind: r.kind, state: r.state, key: r.key, agent: r.agent, session: r.session ?? undefined, task: r.task ?? undefined,
    requestId: r.request_id, tool: r.tool ?? undefined, reason: r.reason,
    args: subject.args, argsHash: r.args_hash ?? undefined, argsSchema: subject.schema, candidates: subject.candidates,
    createdAt: r.created_at, deadline: r.deadline, decidedAt: r.decided_at ?? undefined, consumedAt: r.consumed_at ?? undefined,
    decision: r.decision ? JSON.parse(r.decision) : undefined,
  };
}

export interface OutboxEntry {
  id: string;
  attempts: number;
}

export class EscalationStore {
  private readonly db: Database.Database;
  private readonly stmts: Record<string, Database.Statement>;

  /** Opens (creating) the store at `path`; ':memory:' keeps it in memory. */
  constructor(path: string) {
    this.db = new Database(path, { timeout: 2_000 });
    this.db.pragma('journal_mode = WAL');
    // A decision is a person's work: it must survive a power cut (decisions are rare, fsyncs cheap).
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS escalations (
        id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, deadline INTEGER NOT NULL, state TEXT NOT NULL, kind TEXT NOT NULL,
        key TEXT NOT NULL, agent TEXT NOT NULL, session TEXT, task TEXT, request_id TEXT NOT NULL, tool TEXT, reason TEXT NOT NULL,
        subject TEXT NOT NULL, args_hash TEXT, decision TEXT, decided_at INTEGER, consumed_at INTEGER,
        -- 1 once a sidecar has recorded the decision (audit event, wait histogram) and woken its waiters.
        noted INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE INDEX IF NOT EXISTS escalations_open_key ON escalations (key, created_at) WHERE consumed_at IS NULL;
      CREATE INDEX IF NOT EXISTS escalations_pending ON escalations (deadline) WHERE state = 'pending';
      CREATE INDEX IF NOT EXISTS escalations_unnoted ON escalations (noted) WHERE noted = 0;
      CREATE INDEX IF NOT EXISTS escalations_created ON escalations (created_at);
      CREATE TABLE IF NOT EXISTS kept_answers (
        escalation_id TEXT NOT NULL, idx INTEGER NOT NULL, status INTEGER NOT NULL, headers TEXT NOT NULL, raw BLOB NOT NULL,
        upstream TEXT NOT NULL, model TEXT, confidence REAL, PRIMARY KEY (escalation_id, idx)
      ) STRICT;
      CREATE TABLE IF NOT EXISTS webhook_outbox (
        escalation_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT
      ) STRICT;
    `);
    const prepare = (sql: string) => this.db.prepare(sql);
    this.stmts = {
      insert: prepare(`INSERT INTO escalations (id, created_at, deadline, state, kind, key, agent, session, task, request_id, tool, reason, subject, args_hash)
        VALUES (@id, @createdAt, @deadline, 'pending', @kind, @key, @agent, @session, @task, @requestId, @tool, @reason, @subject, @argsHash)`),
      claimable: prepare(`SELECT * FROM escalations WHERE key = ? AND consumed_at IS NULL AND (state = 'pending' OR decided_at > ?)
        ORDER BY created_at DESC LIMIT 1`),
      get: prepare('SELECT * FROM escalations WHERE id = ?'),
      list: prepare('SELECT * FROM escalations WHERE (? IS NULL OR state = ?) ORDER BY created_at DESC LIMIT ?'),
      decide: prepare(`UPDATE escalations SET state = ?, decision = ?, decided_at = ? WHERE id = ? AND state = 'pending' AND deadline > ?`),
      due: prepare(`SELECT 1 FROM escalations WHERE state = 'pending' AND deadline <= ? LIMIT 1`),
      expire: prepare(`UPDATE escalations SET state = 'timed_out', decided_at = deadline WHERE state = 'pending' AND deadline <= ?`),
      unnoted: prepare(`SELECT * FROM escalations WHERE noted = 0 AND state <> 'pending' LIMIT 500`),
      noted: prepare('UPDATE escalations SET noted = 1 WHERE id = ?'),
      consume: prepare(`UPDATE escalations SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL AND state <> 'pending'`),
      counts: prepare('SELECT state, count(*) AS n FROM escalations GROUP BY state'),
      prune: prepare(`DELETE FROM escalations WHERE state <> 'pending' AND decided_at < ?`),
      // Kept answers are the upstream's raw bytes: gone as soon as no call can attach to their escalation.
      pruneAnswers: prepare(`DELETE FROM kept_answers WHERE escalation_id NOT IN
        (SELECT id FROM escalations WHERE consumed_at IS NULL AND (state = 'pending' OR decided_at > ?))`),
      keepAnswer: prepare(`INSERT OR REPLACE INTO kept_answers (escalation_id, idx, status, headers, raw, upstream, model, confidence)
        VALUES (@id, @idx, @status, @headers, @raw, @upstream, @model, @confidence)`),
      answers: prepare('SELECT * FROM kept_answers WHERE escalation_id = ? ORDER BY idx'),
      dropAnswers: prepare('DELETE FROM kept_answers WHERE escalation_id = ?'),
      enqueue: prepare('INSERT OR IGNORE INTO webhook_outbox (escalation_id, next_at) VALUES (?, ?)'),
      dueWebhooks: prepare('SELECT escalation_id AS id, attempts FROM webhook_outbox WHERE next_at <= ? ORDER BY next_at LIMIT ?'),
      delivered: prepare('DELETE FROM webhook_outbox WHERE escalation_id = ?'),
      retryLater: prepare('UPDATE webhook_outbox SET attempts = ?, next_at = ?, last_error = ? WHERE escalation_id = ?'),
      outbox: prepare('SELECT escalation_id AS id, attempts, next_at AS nextAt, last_error AS lastError FROM webhook_outbox'),
      nextWebhook: prepare('SELECT min(next_at) AS at FROM webhook_outbox'),
    };
  }

  /** Inserts an escalation and, for a jury's, the answers kept with it: one transaction, so neither is ever without the other. */
  insert(e: NewEscalation, answers: readonly KeptAnswer[] = []): void {
    const subject = e.kind === 'tool_call' ? { args: e.args, schema: e.argsSchema } : { candidates: e.candidates };
    this.db.transaction(() => {
      this.stmts.insert.run({
        ...e, session: e.session ?? null, task: e.task ?? null, tool: e.tool ?? null, argsHash: e.argsHash ?? null, subject: JSON.stringify(subject),
      });
      answers.forEach((a, idx) => this.stmts.keepAnswer.run({
        id: e.id, idx, status: a.status, headers: JSON.stringify(a.headers), raw: a.raw, upstream: a.upstream, model: a.model ?? null, confidence: a.confidence ?? null,
      }));
    })();
  }

  /** The newest escalation with this key that a call may still attach to: pending, or decided after `decidedAfter` and not yet consumed. */
  claimable(key: string, decidedAfter: number): Escalation | undefined {
    const row = this.stmts.claimable.get(key, decidedAfter) as Row | undefined;
    return row && fromRow(row);
  }

  get(id: string): Escalation | undefined {
    const row = this.stmts.get.get(id) as Row | undefined;
    return row && fromRow(row);
  }

  /** Newest first. */
  list(state?: EscalationState, limit = 100): Escalation[] {
    return (this.stmts.list.all(state ?? null, state ?? null, limit) as Row[]).map(fromRow);
  }

  /** Records a decision on a pending escalation whose deadline has not passed; false otherwise. */
  decide(id: string, state: 'approved' | 'rejected', decision: DecisionRecord, now: number): boolean {
    return this.stmts.decide.run(state, JSON.stringify(decision), now, id, now).changes === 1;
  }

  /** Pending escalations past their deadline become timed_out (decided at the deadline). */
  expire(now: number): number {
    // Read first: this runs every quarter second, and a write transaction that changes nothing is still one.
    if (!this.stmts.due.get(now)) return 0;
    return this.stmts.expire.run(now).changes;
  }

  /** Decided escalations no sidecar has recorded yet (decided here, by the CLI on the file, or by the clock). */
  unnoted(): Escalation[] {
    return (this.stmts.unnoted.all() as Row[]).map(fromRow);
  }

  markNoted(id: string): void {
    this.stmts.noted.run(id);
  }

  /** Marks a decided escalation as delivered to its call (its kept answers are no longer needed); false when another call got it first. */
  consume(id: string, now: number): boolean {
    const first = this.stmts.consume.run(now, id).changes === 1;
    if (first) this.stmts.dropAnswers.run(id);
    return first;
  }

  /** The answers kept with an escalation, in candidate order (none: not a jury's, or already delivered). */
  answers(id: string): KeptAnswer[] {
    return (this.stmts.answers.all(id) as { status: number; headers: string; raw: Buffer; upstream: string; model: string | null; confidence: number | null }[])
      .map((r) => ({ status: r.status, headers: JSON.parse(r.headers), raw: r.raw, upstream: r.upstream, model: r.model ?? undefined, confidence: r.confidence ?? undefined }));
  }

  /** How many escalations are in each state (every state present). */
  counts(): Record<EscalationState, number> {
    const out: Record<EscalationState, number> = { pending: 0, approved: 0, rejected: 0, timed_out: 0 };
    for (const r of this.stmts.counts.all() as { state: EscalationState; n: number }[]) out[r.state] = r.n;
    return out;
  }

  /** Forgets escalations decided before `before` (the audit log keeps their record). */
  prune(before: number): number {
    return this.stmts.prune.run(before).changes;
  }

  /** Drops the kept answers of escalations no call can attach to any more (delivered, or decided before `decidedBefore`). */
  pruneAnswers(decidedBefore: number): number {
    return this.stmts.pruneAnswers.run(decidedBefore).changes;
  }

  enqueueWebhook(id: string, at: number): void {
    this.stmts.enqueue.run(id, at);
  }

  dueWebhooks(now: number, limit: number): OutboxEntry[] {
    return this.stmts.dueWebhooks.all(now, limit) as OutboxEntry[];
  }

  /** Takes a notification out of the outbox: delivered, moot (decided) or given up. */
  webhookDone(id: string): void {
    this.stmts.delivered.run(id);
  }

  /** When the next notification in the outbox is due (epoch ms); undefined when it is empty. */
  nextWebhookAt(): number | undefined {
    return (this.stmts.nextWebhook.get() as { at: number | null }).at ?? undefined;
  }

  webhookRetryAt(id: string, attempts: number, nextAt: number, error: string): void {
    this.stmts.retryLater.run(attempts, nextAt, error, id);
  }

  outbox(): { id: string; attempts: number; nextAt: number; lastError: string | null }[] {
    return this.stmts.outbox.all() as { id: string; attempts: number; nextAt: number; lastError: string | null }[];
  }

  close(): void {
    this.db.close();
  }
}

/** An escalation as the admin API and the CLI show it (times as ISO 8601; snake_case like the audit record). */
export function escalationJson(e: Escalation): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const d = e.decision;
  return {
    id: e.id, kind: e.kind, state: e.state, agent: e.agent, session: e.session, task: e.task, request_id: e.requestId,
    tool: e.tool, reason: e.reason, args: e.args, args_hash: e.argsHash, candidates: e.candidates,
    created_at: iso(e.createdAt), deadline: iso(e.deadline), decided_at: iso(e.decidedAt), consumed_at: iso(e.consumedAt),
    decision: d && { by: d.by, note: d.note, args: d.args, args_hash: d.argsHash, edited: d.edited, choice: d.choice },
  };
}
