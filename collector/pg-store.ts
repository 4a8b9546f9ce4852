// The collector's PostgreSQL store: stateless collector replicas over one database. Each batch is one
// transaction that first locks its log's row, so replicas ingesting the same log take turns while
// different logs ingest in parallel. Same tables and query semantics as the SQLite store.
import pg from 'pg';
import { MerkleFrontier } from '../proxy/audit/merkle.ts';
import type { Checkpoint } from '../proxy/audit/signing.ts';
import { currentPrices } from './dashboard-sql.ts';
import { prevHashOf } from './gap-fill.ts';
import { MalformedBatchError } from './batch-shape.ts';
import { ingestBatch, type IngestTx, type LogHead } from './ingest.ts';
import { indexable, priceBook, recordFacts, type PriceBook } from './record-facts.ts';
import { inTransaction, migrate } from './pg-migrations.ts';
import { AGENT_COLUMNS, BatchRollup, DAILY_COLUMNS, upsertAgents, upsertDaily } from './rollups.ts';
import { recordFilter, withoutNullResolved, type CollectorStore, type RecordQuery } from './store.ts';


const RECORD_COLUMNS = ['log_id', 'seq', 'ts', 'event', 'agent_id', 'agent_version', 'session', 'task', 'model', 'status',
  'input_tokens', 'output_tokens', 'cost_usd', 'price_source', 'latency_ms', 'tool', 'error', 'verified', 'leaf', 'body', 'fleet', 'received_at'];
const TAG_COLUMNS = ['log_id', 'seq', 'agent_id', 'ts', 'tag_kind', 'tag', 'tool', 'fleet'];
// A multi-row INSERT stays well under PostgreSQL's 65,535 bind parameters.
const INSERT_ROWS = 1_000;

// seq, sizes, counts (int8) and sums (numeric) arrive as strings by default; every value the store
// returns is far below 2^53 (ingest refuses unsafe seqs), so plain numbers are exact.
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, Number);
types.setTypeParser(pg.types.builtins.NUMERIC, Number);

/**
 * Writes rows in statements of at most INSERT_ROWS rows, emptying `rows`: `sql` makes the statement
 * from its VALUES list (an INSERT, or an upsert).
 */
async function writeRows(c: pg.PoolClient, n: number, rows: unknown[][], sql: (values: string) => string): Promise<void> {
  while (rows.length > 0) {
    const chunk = rows.splice(0, INSERT_ROWS);
    const values = chunk.map((_, r) => `(${Array.from({ length: n }, (_, k) => `$${r * n + k + 1}`).join(', ')})`);
    await c.query(sql(values.join(', ')), chunk.flat());
  }
}

function insertRows(c: pg.PoolClient, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  return writeRows(c, columns.length, rows, (values) => `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values}`);
}

/** Adds a batch's rollup rows (each key once per batch). */
async function upsertRollups(c: pg.PoolClient, rollup: BatchRollup): Promise<void> {
  const { daily, agents } = rollup.rows();
  await writeRows(c, DAILY_COLUMNS.length, daily, upsertDaily);
  await writeRows(c, AGENT_COLUMNS.length, agents, upsertAgents);
}

/** The IngestTx for one batch over one transaction's connection, pricing by `prices`. */
function ingestTx(c: pg.PoolClient, fleet: string, prices: PriceBook): IngestTx {
  let agentOfBatch: string | null = null;
  let alertsLocked = false;
  // Records are buffered and written in multi-row INSERTs (a round trip per record would dominate
  // ingest); every read of records flushes first, so the transaction always sees its own writes.
  const pending: unknown[][] = [];
  const pendingTags: unknown[][] = [];
  const rollup = new BatchRollup(fleet);

  async function flush(): Promise<void> {
    await insertRows(c, 'records', RECORD_COLUMNS, pending);
    await insertRows(c, 'record_tags', TAG_COLUMNS, pendingTags);
  }

  return {
    async head(logId) {
      const r = (await c.query('SELECT size, head_leaf, frontier, checkpoint_size, fleet, key_id FROM logs WHERE log_id = $1', [logId])).rows[0];
      return r && { logId, size: r.size, headLeaf: r.head_leaf ?? undefined, frontier: r.frontier ?? undefined, checkpointSize: r.checkpoint_size, fleet: r.fleet ?? undefined, keyId: r.key_id ?? undefined };
    },
    async leafAt(logId, seq) {
      await flush();
      return (await c.query('SELECT leaf FROM records WHERE log_id = $1 AND seq = $2', [logId, seq])).rows[0]?.leaf;
    },
    async leaves(logId, size) {
      await flush();
      return (await c.query('SELECT leaf FROM records WHERE log_id = $1 AND seq <= $2 ORDER BY seq', [logId, size])).rows.map((r) => r.leaf);
    },
    async leavesAfter(logId, after, through, limit) {
      await flush();
      return (await c.query('SELECT seq, leaf FROM records WHERE log_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4', [logId, after, through, limit])).rows;
    },
    async prevHashAt(logId, seq) {
      await flush();
      const row = (await c.query('SELECT body FROM records WHERE log_id = $1 AND seq = $2', [logId, seq])).rows[0];
      return row && prevHashOf(row.body);
    },
    async checkpointRoots(logId, after, through) {
      const rows = (await c.query('SELECT size, root FROM checkpoints WHERE log_id = $1 AND size > $2 AND size <= $3', [logId, after, through])).rows;
      return new Map(rows.map((r) => [Number(r.size), r.root as string]));
    },
    async resolveGaps(logId, through) {
      await c.query("UPDATE alerts SET resolved_at = $2 WHERE log_id = $1 AND kind = 'gap' AND seq <= $3 AND resolved_at IS NULL", [logId, new Date().toISOString(), through + 1]);
    },
    async insertRecord(r) {
      // The facts' strings are already as PostgreSQL text keeps them (record-facts.ts); ts and event,
      // taken from the record as they are, are made so too (its body keeps them exactly).
      const f = recordFacts(r.parsed, prices);
      const ts = indexable(r.ts);
      const event = indexable(r.event);
      agentOfBatch ??= f.agentId;
      pending.push([r.logId, r.seq, ts, event, f.agentId, f.agentVersion, f.session, f.task, f.model, f.status,
        f.inputTokens, f.outputTokens, f.costUsd, f.priceSource, f.latencyMs, f.tool, f.error, r.verified, r.leaf, r.body, fleet, new Date().toISOString()]);
      for (const t of f.tags) pendingTags.push([r.logId, r.seq, f.agentId, ts, t.kind, t.tag, t.tool, fleet]);
      // The values as stored, so the rollup groups as a query over records would. A duplicate never
      // reaches insertRecord, and a failed insert rolls the whole batch back.
      rollup.add({ ...f, ts, event });
    },
    async checkpointKeysAround(logId, size) {
      const key = async (sql: string) => ((await c.query(sql, [logId, size])).rows[0]?.key as string | null | undefined) ?? undefined;
      return {
        below: await key("SELECT body::json->>'key_id' AS key FROM checkpoints WHERE log_id = $1 AND size < $2 ORDER BY size DESC LIMIT 1"),
        above: await key("SELECT body::json->>'key_id' AS key FROM checkpoints WHERE log_id = $1 AND size > $2 ORDER BY size LIMIT 1"),
      };
    },
    async checkpointRoot(logId, size) {
      return (await c.query('SELECT root FROM checkpoints WHERE log_id = $1 AND size = $2', [logId, size])).rows[0]?.root;
    },
    async insertConflict(logId, seq, leaf, body, batchFleet) {
      const res = await c.query('INSERT INTO conflicts (log_id, seq, leaf, body, fleet, received_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
        [logId, seq, leaf, body, batchFleet, new Date().toISOString()]);
      return (res.rowCount ?? 0) > 0;
    },
    async insertCheckpoint(logId, cp: Checkpoint) {
      const res = await c.query('INSERT INTO checkpoints (log_id, size, root, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [logId, cp.size, cp.root, JSON.stringify(cp)]);
      return (res.rowCount ?? 0) > 0;
    },
    async alert(a) {
      // Alert ids must become visible in id order, or a reader polling `alerts(sinceId)` could skip
      // one committed late by another log's transaction. Alerts are rare; serializing them is cheap.
      if (!alertsLocked) await c.query(`SELECT pg_advisory_xact_lock(hashtext('warden.collector.alerts'))`);
      alertsLocked = true;
      // Ingest refuses another fleet's log, so the batch's fleet is the log's.
      await c.query('INSERT INTO alerts (log_id, seq, kind, detail, at, fleet) VALUES ($1, $2, $3, $4, $5, $6)',
        [a.logId, a.seq, a.kind, a.detail, new Date().toISOString(), fleet]);
    },
    async saveHead(h: LogHead) {
      await flush();
      // Last in the transaction: the rollup rows an agent's other logs also update stay locked only until the commit.
      await upsertRollups(c, rollup);
      await c.query(`UPDATE logs SET size = $2, head_leaf = $3, frontier = $4, checkpoint_size = $5, last_seen = $6,
        agent_id = coalesce(agent_id, $7), fleet = coalesce(fleet, $8), key_id = $9 WHERE log_id = $1`,
      [h.logId, h.size, h.headLeaf ?? null, h.frontier ?? null, h.checkpointSize, new Date().toISOString(), agentOfBatch, fleet, h.keyId ?? null]);
    },
  };
}

/** Opens a PostgreSQL collector store, applying any pending schema migrations. */
export async function openPgStore(connectionString: string): Promise<CollectorStore> {
  const pool = new pg.Pool({ connectionString, max: 10, types });
  // An idle connection the server dropped is discarded by the pool and the next query reconnects;
  // without a listener its 'error' event would crash the collector.
  pool.on('error', () => undefined);
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const emptyFrontier = new MerkleFrontier().serialize();

  return {
    ingest: (batch, fleet) => inTransaction(pool, async (c) => {
      if (batch.log_id.includes('\0')) throw new MalformedBatchError('log_id contains a NUL character');
      // The log's row is the lock replicas serialize on: created empty if new (the conflict wait
      // covers two replicas creating it at once), then locked until this batch commits.
      const now = new Date().toISOString();
      await c.query(`INSERT INTO logs (log_id, fleet, size, frontier, checkpoint_size, first_seen, last_seen)
        VALUES ($1, $2, 0, $3, 0, $4, $4) ON CONFLICT (log_id) DO NOTHING`, [batch.log_id, fleet, emptyFrontier, now]);
      await c.query('SELECT 1 FROM logs WHERE log_id = $1 FOR UPDATE', [batch.log_id]);
      // A batch is priced by one price list, its fleet's current when it was stored.
      const current = currentPrices((n) => `$${n}`, fleet);
      const prices = priceBook((await c.query(current.sql, current.args)).rows);
      return ingestBatch(ingestTx(c, fleet, prices), batch, fleet);
    }),
    async records(fleet, rq: RecordQuery) {
      const { where, args } = recordFilter(fleet, rq, (n) => `$${n}`);
      const sql = `SELECT log_id AS "logId", seq, body FROM records ${where} ORDER BY log_id, seq LIMIT $${args.length + 1}`;
      return (await pool.query(sql, [...args, rq.limit])).rows;
    },
    async cost(fleet, groupBy, from, to) {
      const col = groupBy === 'agent' ? 'agent_id' : 'task';
      return (await pool.query(`SELECT ${col} AS key, count(*) AS calls, coalesce(sum(input_tokens), 0) AS "inputTokens",
        coalesce(sum(output_tokens), 0) AS "outputTokens", coalesce(sum(cost_usd), 0) AS "costUsd" FROM records
        WHERE fleet = $1 AND event = 'model_call' AND ${col} IS NOT NULL AND ts >= $2 AND ts < $3 GROUP BY ${col} ORDER BY "costUsd" DESC`,
      [fleet, from ?? '', to ?? '9999'])).rows;
    },
    async alerts(fleet, sinceId = 0) {
      return (await pool.query('SELECT id, log_id AS "logId", seq, kind, detail, at, resolved_at AS "resolvedAt" FROM alerts WHERE fleet = $1 AND id > $2 ORDER BY id',
        [fleet, sinceId])).rows.map(withoutNullResolved);
    },
    async logs(fleet) {
      return (await pool.query(`SELECT log_id AS "logId", agent_id AS agent, size, checkpoint_size AS "checkpointSize", last_seen AS "lastSeen" FROM logs
        WHERE fleet = $1 ORDER BY log_id`, [fleet])).rows;
    },
    async *logRecords(fleet, logId) {
      // Paged, so a long log is never held in memory at once.
      let after = 0;
      for (;;) {
        const page = (await pool.query('SELECT seq, body FROM records WHERE log_id = $1 AND seq > $2 AND fleet = $3 ORDER BY seq LIMIT 1000',
          [logId, after, fleet])).rows as { seq: number; body: string }[];
        if (page.length === 0) return;
        yield* page;
        after = page[page.length - 1].seq;
      }
    },
    async logCheckpoints(fleet, logId) {
      return (await pool.query('SELECT body FROM checkpoints WHERE log_id = $1 AND EXISTS (SELECT 1 FROM logs WHERE log_id = $1 AND fleet = $2) ORDER BY size',
        [logId, fleet])).rows.map((r) => r.body as string);
    },
    async logConflicts(fleet, logId) {
      return (await pool.query('SELECT seq, body, received_at AS "receivedAt" FROM conflicts WHERE log_id = $1 AND fleet = $2 ORDER BY seq, received_at', [logId, fleet])).rows;
    },
    placeholder: (n) => `$${n}`,
    async select<T>(sql: string, args: unknown[]) {
      return (await pool.query(sql, args)).rows as T[];
    },
    async insertPrice(fleet, p) {
      await pool.query('INSERT INTO prices (model, input_per_mtok, output_per_mtok, since, fleet) VALUES ($1, $2, $3, $4, $5)',
        [p.model, p.inputPerMTok, p.outputPerMTok, p.since, fleet]);
    },
    async close() {
      // Waits for checked-out connections (batches in flight) to be released.
      await pool.end();
    },
  };
}
