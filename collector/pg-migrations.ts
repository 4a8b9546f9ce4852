// The PostgreSQL store's schema, as numbered migrations applied once each: replicas starting
// together take turns on one advisory lock, so each step runs exactly once whatever starts first.
import type pg from 'pg';
import { ROLLUP_INDEXES, rollupBackfill } from './rollups.ts';
import { FLEET_INDEXES, PRE_FLEET_INDEXES } from './store.ts';

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
  // The key that signs each log's checkpoints (ingest.ts pins it), taken for a log already held from
  // its earliest checkpoint (bodies the collector wrote itself: always JSON, read as json, not jsonb,
  // which refuses a \u0000 a sender may have put in a field): a signer replaced before the upgrade
  // is then alerted at the next one.
  `ALTER TABLE logs ADD COLUMN key_id text;
  UPDATE logs l SET key_id = (SELECT c.body::json->>'key_id' FROM checkpoints c WHERE c.log_id = l.log_id ORDER BY c.size LIMIT 1);`,
  // When the records a gap alert said were missing have all arrived (gap-fill.ts), it is resolved, not removed.
  'ALTER TABLE alerts ADD COLUMN resolved_at text;',
  // Records refused for their place (a second version of a seq, or one out of order), kept as evidence.
  `CREATE TABLE conflicts (
    log_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, leaf bytea NOT NULL, body text NOT NULL, fleet text NOT NULL, received_at text NOT NULL,
    PRIMARY KEY (log_id, seq, leaf)
  );`,
];

/** Runs `fn` in one transaction on one pooled connection (migrations and each ingested batch). */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
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
export async function migrate(pool: pg.Pool): Promise<void> {
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
