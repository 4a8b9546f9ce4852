// The collector's PostgreSQL store: stateless collector replicas over one database. Each batch is one
// transaction that first locks its log's row, so replicas ingesting the same log take turns while
// different logs ingest in parallel. Same tables and query semantics as the SQLite store.
import pg from 'pg';
import { MerkleFrontier } from '../proxy/audit/merkle.ts';
import type { Checkpoint } from '../proxy/audit/signing.ts';
import { currentPrices } from './dashboard-sql.ts';
import { ingestBatch, MalformedBatchError, type IngestTx, type LogHead } from './ingest.ts';
import { priceBook, recordFacts, type PriceBook } from './record-facts.ts';
import { AGENT_COLUMNS, BatchRollup, DAILY_COLUMNS, ROLLUP_INDEXES, rollupBackfill, upsertAgents, upsertDaily } from './rollups.ts';
import { FLEET_INDEXES, PRE_FLEET_INDEXES, recordFilter, type CollectorStore, type RecordQuery } from './store.ts';

// Applied in order, each once, in its own transaction: append, never edit a shipped one.
// Text columns that are compared or ordered are COLLATE "C" so ordering is bytewise, as in SQLite,
// whatever the database's locale; ts stays ISO text so ranges compare as in the SQLite store.
const MIGRATIONS: string[] = [
  `CREATE TABLE logs (
    log_id text COLLATE "C" PRIMARY KEY, agent_id text, fleet text, size bigint NOT NULL, head_leaf text, frontier text,
    checkpoint_size bigint NOT NULL, first_seen text NOT NULL, last_seen text NOT NULL
  );
  CREATE TABLE records (
    log_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, ts text COLLATE "C" NOT NULL, event text NOT NULL,
    agent_id text, agent_version text, session text, task text, model text, status integer,
    input_tokens bigint, output_tokens bigint, cost_usd double precision,
    verified boolean NOT NULL, leaf bytea NOT NULL, body text NOT NULL, fleet text NOT NULL, received_at text NOT NULL,
    PRIMARY KEY (log_id, seq)
  );
  CREATE INDEX records_agent_ts ON records(agent_id, ts);
  CREATE INDEX records_task ON records(task);
  CREATE INDEX records_session ON records(session);
  CREATE INDEX records_ts ON records(ts);
  CREATE TABLE checkpoints (log_id text COLLATE "C" NOT NULL, size bigint NOT NULL, root text NOT NULL, body text NOT NULL, PRIMARY KEY (log_id, size));
  CREATE TABLE alerts (id bigserial PRIMARY KEY, log_id text NOT NULL, seq bigint NOT NULL, kind text NOT NULL, detail text NOT NULL, at text NOT NULL);`,
  // The dashboard: more facts per record (record-facts.ts), tags, the collector's price history, and
  // the facts of records already held filled in from their bodies. jsonb refuses some text JSON
  // allows (\u0000, a lone surrogate): such a body is left unfilled rather than failing the migration.
  `ALTER TABLE records ADD COLUMN latency_ms double precision, ADD COLUMN tool text, ADD COLUMN error text, ADD COLUMN price_source text;
  CREATE INDEX records_agent_event_ts ON records(agent_id, event, ts);
  CREATE TABLE record_tags (
    log_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, agent_id text, ts text COLLATE "C" NOT NULL, tag_kind text NOT NULL, tag text NOT NULL, tool text
  );
  CREATE INDEX record_tags_agent ON record_tags(agent_id, tag_kind, ts);
  CREATE INDEX record_tags_kind_ts ON record_tags(tag_kind, ts);
  CREATE TABLE prices (id bigserial PRIMARY KEY, model text NOT NULL, input_per_mtok double precision NOT NULL, output_per_mtok double precision NOT NULL, since text NOT NULL);
  CREATE FUNCTION pg_temp.warden_jsonb(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
  BEGIN
    RETURN t::jsonb;
  EXCEPTION WHEN others THEN
    RETURN NULL;
  END $$;
  CREATE TEMP TABLE warden_backfill ON COMMIT DROP AS SELECT log_id, seq, agent_id, ts, pg_temp.warden_jsonb(body) AS j FROM records;
  UPDATE records r SET
    latency_ms = CASE WHEN jsonb_typeof(b.j->'latency_ms') = 'number' THEN
      CASE WHEN abs((b.j->>'latency_ms')::numeric) < 1e300 THEN (b.j->>'latency_ms')::double precision END END,
    tool = coalesce(CASE WHEN jsonb_typeof(b.j->'tool'->'name') = 'string' THEN b.j->'tool'->>'name' END,
      CASE WHEN jsonb_typeof(b.j->'escalation'->'tool') = 'string' THEN b.j->'escalation'->>'tool' END),
    error = coalesce(CASE WHEN jsonb_typeof(b.j->'error') = 'string' THEN b.j->>'error' END,
      CASE WHEN jsonb_typeof(b.j->'stream_error') = 'string' THEN b.j->>'stream_error' END)
  FROM warden_backfill b WHERE b.j IS NOT NULL AND r.log_id = b.log_id AND r.seq = b.seq;
  UPDATE records SET price_source = 'sidecar' WHERE cost_usd IS NOT NULL;
  INSERT INTO record_tags (log_id, seq, agent_id, ts, tag_kind, tag, tool)
    SELECT b.log_id, b.seq, b.agent_id, b.ts, 'violation', v->>'kind', CASE WHEN jsonb_typeof(v->'tool') = 'string' THEN v->>'tool' END
    FROM warden_backfill b, jsonb_array_elements(CASE WHEN jsonb_typeof(b.j->'violations') = 'array' THEN b.j->'violations' ELSE '[]'::jsonb END) v
    WHERE jsonb_typeof(v->'kind') = 'string';
  INSERT INTO record_tags (log_id, seq, agent_id, ts, tag_kind, tag, tool)
    SELECT b.log_id, b.seq, b.agent_id, b.ts, 'hallucination', s->>'name',
      CASE WHEN jsonb_typeof(b.j->'tool'->'name') = 'string' THEN b.j->'tool'->>'name' END
    FROM warden_backfill b, jsonb_array_elements(CASE WHEN jsonb_typeof(b.j->'tool'->'signals'->'signals') = 'array' THEN b.j->'tool'->'signals'->'signals' ELSE '[]'::jsonb END) s
    WHERE jsonb_typeof(s->'name') = 'string';
  DROP FUNCTION pg_temp.warden_jsonb(text);`,
  // Every read is one fleet's: tags, alerts and prices get the fleet records and logs already had
  // (tags from their record, alerts from their log; prices from before have none and stay shared,
  // see currentPrices), and the indexes lead with the fleet so one fleet's pages never scan another's
  // rows. The indexes they replace are dropped: each is a prefix-less copy a fleet's query cannot use.
  `ALTER TABLE record_tags ADD COLUMN fleet text;
  UPDATE record_tags t SET fleet = r.fleet FROM records r WHERE r.log_id = t.log_id AND r.seq = t.seq;
  ALTER TABLE alerts ADD COLUMN fleet text;
  UPDATE alerts a SET fleet = l.fleet FROM logs l WHERE l.log_id = a.log_id COLLATE "C";
  ALTER TABLE prices ADD COLUMN fleet text;
  DROP INDEX IF EXISTS ${PRE_FLEET_INDEXES.join(', ')};
${FLEET_INDEXES}`,
  // The dashboard's rollups (rollups.ts), kept at ingest from now on and filled here from the records
  // already held, as ingest would have built them. day, times and versions are compared: "C" as ts.
  // The SHARE lock holds ingest (other replicas included) until the backfill commits, so no batch
  // lands between the snapshot it reads and the rollups it writes.
  `LOCK TABLE records IN SHARE MODE;
  CREATE TABLE daily_rollups (
    fleet text NOT NULL, day text COLLATE "C" NOT NULL, agent_id text, task text, model text,
    calls bigint NOT NULL, errors bigint NOT NULL, input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, cost_usd double precision NOT NULL
  );
  CREATE TABLE agent_rollups (
    fleet text NOT NULL, agent_id text NOT NULL, first_seen text COLLATE "C" NOT NULL, last_seen text COLLATE "C" NOT NULL,
    version text COLLATE "C", version_seen text COLLATE "C", PRIMARY KEY (fleet, agent_id)
  );
${ROLLUP_INDEXES}
${rollupBackfill(' COLLATE "C"')}`,
];

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

// PostgreSQL text cannot hold NUL, which a JSON string may: the columns pulled out of a record for
// queries drop it, so such a record is stored (its body keeps it escaped) instead of failing forever.
// Lone surrogates are written as U+FFFD here, as the driver would, so what is compared is what is stored.
function text(v: unknown): unknown {
  return typeof v === 'string' ? v.replaceAll('\0', '').toWellFormed() : v ?? null;
}

async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: the pool drops it rather than reuse it.
    client.release(broken);
  }
}

/** Applies the migrations not yet recorded; replicas starting together wait on one advisory lock. */
async function migrate(pool: pg.Pool): Promise<void> {
  for (let i = 0; i < MIGRATIONS.length; i++) {
    await inTransaction(pool, async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('warden.collector.migrate'))`);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)');
      if ((await c.query('SELECT 1 FROM schema_migrations WHERE version = $1', [i + 1])).rowCount) return;
      await c.query(MIGRATIONS[i]);
      await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [i + 1]);
    });
  }
}

/** Writes rows in multi-row INSERTs of at most INSERT_ROWS rows, emptying `rows`. */
async function insertRows(c: pg.PoolClient, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  while (rows.length > 0) {
    const chunk = rows.splice(0, INSERT_ROWS);
    const n = columns.length;
    const values = chunk.map((_, r) => `(${columns.map((_, k) => `$${r * n + k + 1}`).join(', ')})`);
    await c.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values.join(', ')}`, chunk.flat());
  }
}

/** Adds a batch's rollup rows, in multi-row upserts of at most INSERT_ROWS rows (each key once per batch). */
async function upsertRollups(c: pg.PoolClient, rollup: BatchRollup): Promise<void> {
  const { daily, agents } = rollup.rows();
  for (const [rows, n, sql] of [[daily, DAILY_COLUMNS.length, upsertDaily], [agents, AGENT_COLUMNS.length, upsertAgents]] as const) {
    for (let i = 0; i < rows.length; i += INSERT_ROWS) {
      const chunk = rows.slice(i, i + INSERT_ROWS);
      const values = chunk.map((_, r) => `(${Array.from({ length: n }, (_, k) => `$${r * n + k + 1}`).join(', ')})`);
      await c.query(sql(values.join(', ')), chunk.flat());
    }
  }
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
      const r = (await c.query('SELECT size, head_leaf, frontier, checkpoint_size, fleet FROM logs WHERE log_id = $1', [logId])).rows[0];
      return r && { logId, size: r.size, headLeaf: r.head_leaf ?? undefined, frontier: r.frontier ?? undefined, checkpointSize: r.checkpoint_size, fleet: r.fleet ?? undefined };
    },
    async leafAt(logId, seq) {
      await flush();
      return (await c.query('SELECT leaf FROM records WHERE log_id = $1 AND seq = $2', [logId, seq])).rows[0]?.leaf;
    },
    async leaves(logId, size) {
      await flush();
      return (await c.query('SELECT leaf FROM records WHERE log_id = $1 AND seq <= $2 ORDER BY seq', [logId, size])).rows.map((r) => r.leaf);
    },
    async insertRecord(r) {
      const f = recordFacts(r.parsed, prices);
      const agent = text(f.agentId) as string | null;
      agentOfBatch ??= agent;
      const stored = { ts: text(r.ts) as string, event: text(r.event) as string, agentId: agent, agentVersion: text(f.agentVersion) as string | null,
        task: text(f.task) as string | null, model: text(f.model) as string | null, error: text(f.error) as string | null };
      pending.push([r.logId, r.seq, stored.ts, stored.event, agent, stored.agentVersion, text(f.session), stored.task, stored.model, f.status,
        f.inputTokens, f.outputTokens, f.costUsd, f.priceSource, f.latencyMs, text(f.tool), stored.error, r.verified, r.leaf, r.body, fleet, new Date().toISOString()]);
      for (const t of f.tags) pendingTags.push([r.logId, r.seq, agent, stored.ts, t.kind, text(t.tag), text(t.tool), fleet]);
      // The values as stored (NUL dropped), so the rollup groups as a query over records would. A
      // duplicate never reaches insertRecord, and a failed insert rolls the whole batch back.
      rollup.add({ ...stored, status: f.status, inputTokens: f.inputTokens, outputTokens: f.outputTokens, costUsd: f.costUsd });
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
        agent_id = coalesce(agent_id, $7), fleet = coalesce(fleet, $8) WHERE log_id = $1`,
      [h.logId, h.size, h.headLeaf ?? null, h.frontier ?? null, h.checkpointSize, new Date().toISOString(), agentOfBatch, fleet]);
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
      return (await pool.query('SELECT id, log_id AS "logId", seq, kind, detail, at FROM alerts WHERE fleet = $1 AND id > $2 ORDER BY id', [fleet, sinceId])).rows;
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
