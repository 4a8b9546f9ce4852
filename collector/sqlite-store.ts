// The collector's SQLite store: the default, one command and no server. WAL, one writer; ingest runs
// in one IMMEDIATE transaction per batch, so a batch is stored whole or not at all.
import Database from 'better-sqlite3';
import type { Checkpoint } from '../proxy/audit/signing.ts';
import { ingestBatch, type IngestTx, type LogHead } from './ingest.ts';
import { recordFilter, type CollectorStore, type RecordQuery } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logs (
  log_id TEXT PRIMARY KEY, agent_id TEXT, fleet TEXT, size INTEGER NOT NULL, head_leaf TEXT, frontier TEXT,
  checkpoint_size INTEGER NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS records (
  log_id TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, event TEXT NOT NULL,
  agent_id TEXT, agent_version TEXT, session TEXT, task TEXT, model TEXT, status INTEGER,
  input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
  verified INTEGER NOT NULL, leaf BLOB NOT NULL, body TEXT NOT NULL, fleet TEXT NOT NULL, received_at TEXT NOT NULL,
  PRIMARY KEY (log_id, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS records_agent_ts ON records(agent_id, ts);
CREATE INDEX IF NOT EXISTS records_task ON records(task);
CREATE INDEX IF NOT EXISTS records_session ON records(session);
CREATE INDEX IF NOT EXISTS records_ts ON records(ts);
CREATE TABLE IF NOT EXISTS checkpoints (log_id TEXT NOT NULL, size INTEGER NOT NULL, root TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (log_id, size)) STRICT;
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, log_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL) STRICT;
`;

/** Opens (creating) a SQLite collector store. */
export function openSqliteStore(path: string): CollectorStore {
  const db = new Database(path, { timeout: 5_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  const q = {
    head: db.prepare('SELECT log_id, size, head_leaf, frontier, checkpoint_size FROM logs WHERE log_id = ?'),
    leafAt: db.prepare('SELECT leaf FROM records WHERE log_id = ? AND seq = ?'),
    leaves: db.prepare('SELECT leaf FROM records WHERE log_id = ? AND seq <= ? ORDER BY seq'),
    insertRecord: db.prepare(`INSERT INTO records (log_id, seq, ts, event, agent_id, agent_version, session, task, model, status,
      input_tokens, output_tokens, cost_usd, verified, leaf, body, fleet, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertCheckpoint: db.prepare('INSERT OR IGNORE INTO checkpoints (log_id, size, root, body) VALUES (?, ?, ?, ?)'),
    alert: db.prepare('INSERT INTO alerts (log_id, seq, kind, detail, at) VALUES (?, ?, ?, ?, ?)'),
    saveHead: db.prepare(`INSERT INTO logs (log_id, agent_id, fleet, size, head_leaf, frontier, checkpoint_size, first_seen, last_seen)
      VALUES (@logId, @agent, @fleet, @size, @headLeaf, @frontier, @checkpointSize, @now, @now)
      ON CONFLICT (log_id) DO UPDATE SET size = @size, head_leaf = @headLeaf, frontier = @frontier, checkpoint_size = @checkpointSize,
      last_seen = @now, agent_id = coalesce(logs.agent_id, @agent)`),
  };
  let agentOfBatch: string | null = null;
  let fleetOfBatch = '';

  const tx: IngestTx = {
    async head(logId) {
      const r = q.head.get(logId) as { log_id: string; size: number; head_leaf: string | null; frontier: string | null; checkpoint_size: number } | undefined;
      return r && { logId: r.log_id, size: r.size, headLeaf: r.head_leaf ?? undefined, frontier: r.frontier ?? undefined, checkpointSize: r.checkpoint_size };
    },
    async leafAt(logId, seq) {
      return (q.leafAt.get(logId, seq) as { leaf: Buffer } | undefined)?.leaf;
    },
    async leaves(logId, size) {
      return (q.leaves.all(logId, size) as { leaf: Buffer }[]).map((r) => r.leaf);
    },
    async insertRecord(r, fleet) {
      const p = r.parsed;
      agentOfBatch ??= p.agent?.id ?? null;
      q.insertRecord.run(r.logId, r.seq, r.ts, r.event, p.agent?.id ?? null, p.agent?.version ?? null, p.session ?? null, p.task ?? null,
        p.model?.served ?? p.model?.asked ?? null, typeof p.status === 'number' ? p.status : null, p.usage?.input_tokens ?? null,
        p.usage?.output_tokens ?? null, typeof p.cost_usd === 'number' ? p.cost_usd : null, r.verified ? 1 : 0, r.leaf, r.body, fleet, new Date().toISOString());
    },
    async insertCheckpoint(logId, cp: Checkpoint) {
      return q.insertCheckpoint.run(logId, cp.size, cp.root, JSON.stringify(cp)).changes > 0;
    },
    async alert(a) {
      q.alert.run(a.logId, a.seq, a.kind, a.detail, new Date().toISOString());
    },
    async saveHead(h: LogHead) {
      q.saveHead.run({ logId: h.logId, agent: agentOfBatch, fleet: fleetOfBatch, size: h.size, headLeaf: h.headLeaf ?? null, frontier: h.frontier ?? null, checkpointSize: h.checkpointSize, now: new Date().toISOString() });
    },
  };

  // better-sqlite3 transactions are synchronous; ingest's awaits are on already-resolved promises, so
  // BEGIN/COMMIT are issued by hand around it. Batches are serialized so no two interleave.
  let queue: Promise<unknown> = Promise.resolve();
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  return {
    ingest: (batch, fleet) => serialized(async () => {
      agentOfBatch = null;
      fleetOfBatch = fleet;
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await ingestBatch(tx, batch, fleet);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    }),
    async records(rq: RecordQuery) {
      const { where, args } = recordFilter(rq, () => '?');
      const sql = `SELECT log_id AS logId, seq, body FROM records ${where} ORDER BY log_id, seq LIMIT ?`;
      return db.prepare(sql).all(...args, rq.limit) as { logId: string; seq: number; body: string }[];
    },
    async cost(groupBy, from, to) {
      const col = groupBy === 'agent' ? 'agent_id' : 'task';
      return db.prepare(`SELECT ${col} AS key, count(*) AS calls, coalesce(sum(input_tokens), 0) AS inputTokens,
        coalesce(sum(output_tokens), 0) AS outputTokens, coalesce(sum(cost_usd), 0) AS costUsd FROM records
        WHERE event = 'model_call' AND ${col} IS NOT NULL AND ts >= ? AND ts < ? GROUP BY ${col} ORDER BY costUsd DESC`)
        .all(from ?? '', to ?? '9999') as never;
    },
    async alerts(sinceId = 0) {
      return db.prepare('SELECT id, log_id AS logId, seq, kind, detail, at FROM alerts WHERE id > ? ORDER BY id').all(sinceId) as never;
    },
    async logs() {
      return db.prepare('SELECT log_id AS logId, agent_id AS agent, size, checkpoint_size AS checkpointSize, last_seen AS lastSeen FROM logs ORDER BY log_id').all() as never;
    },
    async *logRecords(logId) {
      // Paged, so a long log is never held in memory at once.
      let after = 0;
      for (;;) {
        const page = db.prepare('SELECT seq, body FROM records WHERE log_id = ? AND seq > ? ORDER BY seq LIMIT 1000').all(logId, after) as { seq: number; body: string }[];
        if (page.length === 0) return;
        yield* page;
        after = page[page.length - 1].seq;
      }
    },
    async logCheckpoints(logId) {
      return (db.prepare('SELECT body FROM checkpoints WHERE log_id = ? ORDER BY size').all(logId) as { body: string }[]).map((r) => r.body);
    },
    async close() {
      await queue;
      db.close();
    },
  };
}
