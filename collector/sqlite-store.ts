// The collector's SQLite store: the default, one command and no server. WAL, one writer; ingest runs
// in one IMMEDIATE transaction per batch, so a batch is stored whole or not at all.
import Database from 'better-sqlite3';
import type { Checkpoint } from '../proxy/audit/signing.ts';
import { currentPrices } from './dashboard-sql.ts';
import { CATCH_UP, prevHashOf, type CatchUpLimits } from './gap-fill.ts';
import { ingestBatch, type IngestTx, type LogHead } from './ingest.ts';
import { priceBook, recordFacts, type PriceBook, type PriceRow } from './record-facts.ts';
import { AGENT_COLUMNS, BatchRollup, DAILY_COLUMNS, ROLLUP_INDEXES, rollupBackfill, upsertAgents, upsertDaily } from './rollups.ts';
import { FLEET_INDEXES, PRE_FLEET_INDEXES, recordFilter, withoutNullResolved, type CollectorStore, type RecordQuery, type StoredAlert } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logs (
  log_id TEXT PRIMARY KEY, agent_id TEXT, fleet TEXT, size INTEGER NOT NULL, head_leaf TEXT, frontier TEXT,
  checkpoint_size INTEGER NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, key_id TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS records (
  log_id TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, event TEXT NOT NULL,
  agent_id TEXT, agent_version TEXT, session TEXT, task TEXT, model TEXT, status INTEGER,
  input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
  verified INTEGER NOT NULL, leaf BLOB NOT NULL, body TEXT NOT NULL, fleet TEXT NOT NULL, received_at TEXT NOT NULL,
  PRIMARY KEY (log_id, seq)
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (log_id TEXT NOT NULL, size INTEGER NOT NULL, root TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (log_id, size)) STRICT;
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, log_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS record_tags (
  log_id TEXT NOT NULL, seq INTEGER NOT NULL, agent_id TEXT, ts TEXT NOT NULL, tag_kind TEXT NOT NULL, tag TEXT NOT NULL, tool TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS prices (id INTEGER PRIMARY KEY, model TEXT NOT NULL, input_per_mtok REAL NOT NULL, output_per_mtok REAL NOT NULL, since TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS conflicts (
  log_id TEXT NOT NULL, seq INTEGER NOT NULL, leaf BLOB NOT NULL, body TEXT NOT NULL, fleet TEXT NOT NULL, received_at TEXT NOT NULL,
  PRIMARY KEY (log_id, seq, leaf)
) STRICT;
`;

// Columns added after the first release, at the end of records (ALTER TABLE can only append).
const ADDED_COLUMNS = ['latency_ms REAL', 'tool TEXT', 'error TEXT', 'price_source TEXT'];

// Fills the added columns and the tags of records stored before they existed, with the semantics of
// record-facts.ts. CASE rather than AND guards each JSON function: SQLite does not promise to
// short-circuit, and a function given text that is not JSON (a body too deeply nested for SQLite, a
// string element read as JSON) fails the whole statement. Records from then were priced by their
// sidecar or not at all: the collector had no prices.
const BACKFILL = `
UPDATE records SET
  latency_ms = CASE WHEN json_type(body, '$.latency_ms') IN ('integer', 'real') THEN json_extract(body, '$.latency_ms') END,
  tool = coalesce(CASE WHEN json_type(body, '$.tool.name') = 'text' THEN json_extract(body, '$.tool.name') END,
    CASE WHEN json_type(body, '$.escalation.tool') = 'text' THEN json_extract(body, '$.escalation.tool') END),
  error = coalesce(CASE WHEN json_type(body, '$.error') = 'text' THEN json_extract(body, '$.error') END,
    CASE WHEN json_type(body, '$.stream_error') = 'text' THEN json_extract(body, '$.stream_error') END)
WHERE json_valid(body);
UPDATE records SET price_source = 'sidecar' WHERE cost_usd IS NOT NULL;
INSERT INTO record_tags (log_id, seq, agent_id, ts, tag_kind, tag, tool)
  SELECT r.log_id, r.seq, r.agent_id, r.ts, 'violation', json_extract(v.value, '$.kind'),
    CASE WHEN json_type(v.value, '$.tool') = 'text' THEN json_extract(v.value, '$.tool') END
  FROM records r, json_each(CASE WHEN json_valid(r.body) THEN CASE WHEN json_type(r.body, '$.violations') = 'array' THEN r.body END END, '$.violations') v
  WHERE CASE WHEN v.type = 'object' THEN json_type(v.value, '$.kind') END = 'text';
INSERT INTO record_tags (log_id, seq, agent_id, ts, tag_kind, tag, tool)
  SELECT r.log_id, r.seq, r.agent_id, r.ts, 'hallucination', json_extract(s.value, '$.name'),
    CASE WHEN json_type(r.body, '$.tool.name') = 'text' THEN json_extract(r.body, '$.tool.name') END
  FROM records r, json_each(CASE WHEN json_valid(r.body) THEN CASE WHEN json_type(r.body, '$.tool.signals.signals') = 'array' THEN r.body END END, '$.tool.signals.signals') s
  WHERE CASE WHEN s.type = 'object' THEN json_type(s.value, '$.name') END = 'text';
`;

// Every read is one fleet's: tags, alerts and prices get the fleet records and logs already had
// (tags from their record, alerts from their log; prices from before have none and stay shared,
// see currentPrices), and the indexes lead with the fleet so one fleet's pages never scan another's
// rows. The indexes they replace are dropped: each is a prefix-less copy a fleet's query cannot use.
const FLEET_UPGRADE = `
ALTER TABLE record_tags ADD COLUMN fleet TEXT;
UPDATE record_tags SET fleet = (SELECT r.fleet FROM records r WHERE r.log_id = record_tags.log_id AND r.seq = record_tags.seq);
ALTER TABLE alerts ADD COLUMN fleet TEXT;
UPDATE alerts SET fleet = (SELECT l.fleet FROM logs l WHERE l.log_id = alerts.log_id);
ALTER TABLE prices ADD COLUMN fleet TEXT;
${PRE_FLEET_INDEXES.map((name) => `DROP INDEX IF EXISTS ${name};`).join('\n')}
${FLEET_INDEXES}`;

// The key that signs each log's checkpoints (ingest.ts pins it), taken for a log already held from
// its earliest checkpoint: a signer replaced before the upgrade is then alerted at the next one.
const KEY_PINS = `
ALTER TABLE logs ADD COLUMN key_id TEXT;
UPDATE logs SET key_id = (SELECT json_extract(c.body, '$.key_id') FROM checkpoints c WHERE c.log_id = logs.log_id ORDER BY c.size LIMIT 1);`;

// The dashboard's rollups (rollups.ts), created and filled from the records already held: a store
// from an earlier release gets them once, on open, as ingest would have built them.
const ROLLUPS = `
CREATE TABLE daily_rollups (
  fleet TEXT NOT NULL, day TEXT NOT NULL, agent_id TEXT, task TEXT, model TEXT,
  calls INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL
) STRICT;
CREATE TABLE agent_rollups (
  fleet TEXT NOT NULL, agent_id TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, version TEXT, version_seen TEXT,
  PRIMARY KEY (fleet, agent_id)
) STRICT;
${ROLLUP_INDEXES}
${rollupBackfill('')}`;

function hasTable(db: Database.Database, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

function hasColumn(db: Database.Database, table: string, column: string): boolean {
  return db.prepare('SELECT 1 FROM pragma_table_info(?) WHERE name = ?').get(table, column) !== undefined;
}

/**
 * Rolls back the open transaction, if one still is: SQLite ends it by itself on some errors (a full
 * disk, an I/O error), and a ROLLBACK then would throw "no transaction is active" over the real error.
 */
function rollback(db: Database.Database): void {
  if (db.inTransaction) db.exec('ROLLBACK');
}

/** Applies one schema step, once, atomically, unless `done` says the file already has it. */
function upgradeOnce(db: Database.Database, done: () => boolean, apply: () => void): void {
  if (done()) return;
  // IMMEDIATE, then a second look: two collectors opening one old file upgrade it once.
  db.exec('BEGIN IMMEDIATE');
  try {
    if (!done()) apply();
    db.exec('COMMIT');
  } catch (err) {
    rollback(db);
    throw err;
  }
}

/** Brings a store from an earlier release (or a new, empty one) to the current schema, backfilling what it lacks. */
function upgrade(db: Database.Database): void {
  upgradeOnce(db, () => hasColumn(db, 'records', 'latency_ms'), () => {
    for (const column of ADDED_COLUMNS) db.exec(`ALTER TABLE records ADD COLUMN ${column}`);
    db.exec(BACKFILL);
  });
  upgradeOnce(db, () => hasColumn(db, 'record_tags', 'fleet'), () => db.exec(FLEET_UPGRADE));
  upgradeOnce(db, () => hasColumn(db, 'logs', 'key_id'), () => db.exec(KEY_PINS));
  // When the records a gap alert said were missing have all arrived (gap-fill.ts), it is resolved, not removed.
  upgradeOnce(db, () => hasColumn(db, 'alerts', 'resolved_at'), () => db.exec('ALTER TABLE alerts ADD COLUMN resolved_at TEXT'));
  // Last: the backfill reads the columns the steps above add and fill.
  upgradeOnce(db, () => hasTable(db, 'agent_rollups'), () => db.exec(ROLLUPS));
}

const DAILY_PARAMS = DAILY_COLUMNS.map(() => '?').join(', ');
const AGENT_PARAMS = AGENT_COLUMNS.map(() => '?').join(', ');

/** Opens (creating) a SQLite collector store; `catchUp` bounds the work a filled gap adds to one batch. */
export function openSqliteStore(path: string, catchUp: CatchUpLimits = CATCH_UP): CollectorStore {
  const db = new Database(path, { timeout: 5_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  upgrade(db);
  const q = {
    head: db.prepare('SELECT log_id, size, head_leaf, frontier, checkpoint_size, fleet, key_id FROM logs WHERE log_id = ?'),
    leafAt: db.prepare('SELECT leaf FROM records WHERE log_id = ? AND seq = ?'),
    leaves: db.prepare('SELECT leaf FROM records WHERE log_id = ? AND seq <= ? ORDER BY seq'),
    leavesAfter: db.prepare('SELECT seq, leaf FROM records WHERE log_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
    bodyAt: db.prepare('SELECT body FROM records WHERE log_id = ? AND seq = ?'),
    checkpointRoots: db.prepare('SELECT size, root FROM checkpoints WHERE log_id = ? AND size > ? AND size <= ?'),
    resolveGaps: db.prepare("UPDATE alerts SET resolved_at = ? WHERE log_id = ? AND kind = 'gap' AND seq <= ? AND resolved_at IS NULL"),
    insertRecord: db.prepare(`INSERT INTO records (log_id, seq, ts, event, agent_id, agent_version, session, task, model, status,
      input_tokens, output_tokens, cost_usd, price_source, latency_ms, tool, error, verified, leaf, body, fleet, received_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertTag: db.prepare('INSERT INTO record_tags (log_id, seq, agent_id, ts, tag_kind, tag, tool, fleet) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    // One text for every fleet: the fleet is its argument.
    prices: db.prepare(currentPrices(() => '?', '').sql),
    insertPrice: db.prepare('INSERT INTO prices (model, input_per_mtok, output_per_mtok, since, fleet) VALUES (?, ?, ?, ?, ?)'),
    insertCheckpoint: db.prepare('INSERT OR IGNORE INTO checkpoints (log_id, size, root, body) VALUES (?, ?, ?, ?)'),
    insertConflict: db.prepare('INSERT OR IGNORE INTO conflicts (log_id, seq, leaf, body, fleet, received_at) VALUES (?, ?, ?, ?, ?, ?)'),
    checkpointRoot: db.prepare('SELECT root FROM checkpoints WHERE log_id = ? AND size = ?'),
    checkpointBelow: db.prepare("SELECT json_extract(body, '$.key_id') FROM checkpoints WHERE log_id = ? AND size < ? ORDER BY size DESC LIMIT 1").pluck(),
    checkpointAbove: db.prepare("SELECT json_extract(body, '$.key_id') FROM checkpoints WHERE log_id = ? AND size > ? ORDER BY size LIMIT 1").pluck(),
    alert: db.prepare('INSERT INTO alerts (log_id, seq, kind, detail, at, fleet) VALUES (?, ?, ?, ?, ?, ?)'),
    saveHead: db.prepare(`INSERT INTO logs (log_id, agent_id, fleet, size, head_leaf, frontier, checkpoint_size, first_seen, last_seen, key_id)
      VALUES (@logId, @agent, @fleet, @size, @headLeaf, @frontier, @checkpointSize, @now, @now, @keyId)
      ON CONFLICT (log_id) DO UPDATE SET size = @size, head_leaf = @headLeaf, frontier = @frontier, checkpoint_size = @checkpointSize,
      key_id = @keyId, last_seen = @now, agent_id = coalesce(logs.agent_id, @agent), fleet = coalesce(logs.fleet, @fleet)`),
    upsertDaily: db.prepare(upsertDaily(`(${DAILY_PARAMS})`)),
    upsertAgent: db.prepare(upsertAgents(`(${AGENT_PARAMS})`)),
  };
  let agentOfBatch: string | null = null;
  let fleetOfBatch = '';
  let pricesOfBatch: PriceBook = new Map();
  let rollupOfBatch = new BatchRollup('');
  // The read queries (the API's and the dashboard's) are a small fixed set of texts: each is prepared once.
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string): Database.Statement => {
    let stmt = statements.get(sql);
    if (!stmt) statements.set(sql, (stmt = db.prepare(sql)));
    return stmt;
  };

  const tx: IngestTx = {
    async head(logId) {
      const r = q.head.get(logId) as { log_id: string; size: number; head_leaf: string | null; frontier: string | null; checkpoint_size: number; fleet: string | null; key_id: string | null } | undefined;
      return r && { logId: r.log_id, size: r.size, headLeaf: r.head_leaf ?? undefined, frontier: r.frontier ?? undefined, checkpointSize: r.checkpoint_size, fleet: r.fleet ?? undefined, keyId: r.key_id ?? undefined };
    },
    async leafAt(logId, seq) {
      return (q.leafAt.get(logId, seq) as { leaf: Buffer } | undefined)?.leaf;
    },
    async leaves(logId, size) {
      return (q.leaves.all(logId, size) as { leaf: Buffer }[]).map((r) => r.leaf);
    },
    async leavesAfter(logId, after, through, limit) {
      return q.leavesAfter.all(logId, after, through, limit) as { seq: number; leaf: Buffer }[];
    },
    async prevHashAt(logId, seq) {
      const row = q.bodyAt.get(logId, seq) as { body: string } | undefined;
      return row && prevHashOf(row.body);
    },
    async checkpointRoots(logId, after, through) {
      return new Map((q.checkpointRoots.all(logId, after, through) as { size: number; root: string }[]).map((r) => [r.size, r.root]));
    },
    async resolveGaps(logId, through) {
      q.resolveGaps.run(new Date().toISOString(), logId, through + 1);
    },
    async insertRecord(r, fleet) {
      const f = recordFacts(r.parsed, pricesOfBatch);
      agentOfBatch ??= f.agentId;
      q.insertRecord.run(r.logId, r.seq, r.ts, r.event, f.agentId, f.agentVersion, f.session, f.task, f.model, f.status, f.inputTokens,
        f.outputTokens, f.costUsd, f.priceSource, f.latencyMs, f.tool, f.error, r.verified ? 1 : 0, r.leaf, r.body, fleet, new Date().toISOString());
      for (const t of f.tags) q.insertTag.run(r.logId, r.seq, f.agentId, r.ts, t.kind, t.tag, t.tool, fleet);
      // Only here, after the insert: a duplicate never reaches insertRecord, and a failed insert rolls the batch back.
      rollupOfBatch.add({ ...f, ts: r.ts, event: r.event });
    },
    async insertConflict(logId, seq, leaf, body, fleet) {
      return q.insertConflict.run(logId, seq, leaf, body, fleet, new Date().toISOString()).changes > 0;
    },
    async insertCheckpoint(logId, cp: Checkpoint) {
      return q.insertCheckpoint.run(logId, cp.size, cp.root, JSON.stringify(cp)).changes > 0;
    },
    async checkpointRoot(logId, size) {
      return (q.checkpointRoot.get(logId, size) as { root: string } | undefined)?.root;
    },
    async checkpointKeysAround(logId, size) {
      return { below: (q.checkpointBelow.get(logId, size) as string | null) ?? undefined, above: (q.checkpointAbove.get(logId, size) as string | null) ?? undefined };
    },
    async alert(a) {
      // Ingest refuses another fleet's log, so the batch's fleet is the log's.
      q.alert.run(a.logId, a.seq, a.kind, a.detail, new Date().toISOString(), fleetOfBatch);
    },
    async saveHead(h: LogHead) {
      const { daily, agents } = rollupOfBatch.rows();
      for (const row of daily) q.upsertDaily.run(...row);
      for (const row of agents) q.upsertAgent.run(...row);
      q.saveHead.run({ logId: h.logId, agent: agentOfBatch, fleet: fleetOfBatch, size: h.size, headLeaf: h.headLeaf ?? null, frontier: h.frontier ?? null, checkpointSize: h.checkpointSize, keyId: h.keyId ?? null, now: new Date().toISOString() });
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
      rollupOfBatch = new BatchRollup(fleet);
      db.exec('BEGIN IMMEDIATE');
      try {
        // Read inside the transaction: a batch is priced by one price list, its fleet's current when it was stored.
        pricesOfBatch = priceBook(q.prices.all(...currentPrices(() => '?', fleet).args) as PriceRow[]);
        const result = await ingestBatch(tx, batch, fleet, catchUp);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        rollback(db);
        throw err;
      }
    }),
    async records(fleet, rq: RecordQuery) {
      const { where, args } = recordFilter(fleet, rq, () => '?');
      const sql = `SELECT log_id AS logId, seq, body FROM records ${where} ORDER BY log_id, seq LIMIT ?`;
      return prepared(sql).all(...args, rq.limit) as { logId: string; seq: number; body: string }[];
    },
    async cost(fleet, groupBy, from, to) {
      const col = groupBy === 'agent' ? 'agent_id' : 'task';
      return prepared(`SELECT ${col} AS key, count(*) AS calls, coalesce(sum(input_tokens), 0) AS inputTokens,
        coalesce(sum(output_tokens), 0) AS outputTokens, coalesce(sum(cost_usd), 0) AS costUsd FROM records
        WHERE fleet = ? AND event = 'model_call' AND ${col} IS NOT NULL AND ts >= ? AND ts < ? GROUP BY ${col} ORDER BY costUsd DESC`)
        .all(fleet, from ?? '', to ?? '9999') as never;
    },
    async alerts(fleet, sinceId = 0) {
      return (prepared('SELECT id, log_id AS logId, seq, kind, detail, at, resolved_at AS resolvedAt FROM alerts WHERE fleet = ? AND id > ? ORDER BY id')
        .all(fleet, sinceId) as (StoredAlert & { resolvedAt: string | null })[]).map(withoutNullResolved);
    },
    async logs(fleet) {
      return prepared(`SELECT log_id AS logId, agent_id AS agent, size, checkpoint_size AS checkpointSize, last_seen AS lastSeen FROM logs
        WHERE fleet = ? ORDER BY log_id`).all(fleet) as never;
    },
    async *logRecords(fleet, logId) {
      // Paged, so a long log is never held in memory at once.
      let after = 0;
      for (;;) {
        const page = prepared('SELECT seq, body FROM records WHERE log_id = ? AND seq > ? AND fleet = ? ORDER BY seq LIMIT 1000')
          .all(logId, after, fleet) as { seq: number; body: string }[];
        if (page.length === 0) return;
        yield* page;
        after = page[page.length - 1].seq;
      }
    },
    async logCheckpoints(fleet, logId) {
      return (prepared('SELECT body FROM checkpoints WHERE log_id = ? AND EXISTS (SELECT 1 FROM logs WHERE log_id = ? AND fleet = ?) ORDER BY size')
        .all(logId, logId, fleet) as { body: string }[]).map((r) => r.body);
    },
    async logConflicts(fleet, logId) {
      return prepared('SELECT seq, body, received_at AS receivedAt FROM conflicts WHERE log_id = ? AND fleet = ? ORDER BY seq, received_at')
        .all(logId, fleet) as { seq: number; body: string; receivedAt: string }[];
    },
    placeholder: () => '?',
    async select<T>(sql: string, args: unknown[]) {
      return prepared(sql).all(...args) as T[];
    },
    // Serialized with ingest, so a price never lands inside a batch's transaction.
    insertPrice: (fleet, p) => serialized(async () => {
      q.insertPrice.run(p.model, p.inputPerMTok, p.outputPerMTok, p.since, fleet);
    }),
    async close() {
      await queue;
      db.close();
    },
  };
}
