// `warden audit verify|checkpoint|export|decrypt|reship`: check a log's integrity (no key needed;
// --key names the signers to trust), print its latest signed checkpoint for safekeeping elsewhere,
// export an agent's records with proofs, decrypt protected fields, and send the collector again the
// batches it refused.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { exportBundle, verifyBundle } from '../audit/bundle.ts';
import { decryptRecord, KeyError, loadKeyring } from '../audit/field-protection.ts';
import { reshipDeadLetters } from '../audit/reship.ts';
import { openAuditDb } from '../audit/store.ts';
import { latestCheckpoint, verifyAuditDb, verifyLog } from '../audit/verify.ts';
import type { Checkpoint } from '../audit/signing.ts';
import { ConfigError, UsageError } from '../errors.ts';
import {
  auditLogId, bundleShapeProblem, isoTime, collectorBase, collectorGet, collectorJson, damagedLog, dbPath, readCheckpoints, readInput, trustedKeys,
} from './audit-inputs.ts';

type Out = Pick<NodeJS.WriteStream, 'write'>;

function flags(args: string[]) {
  try {
    return parseArgs({
      args, strict: true,
      options: {
        db: { type: 'string' }, checkpoint: { type: 'string', multiple: true }, collector: { type: 'string' }, token: { type: 'string' },
        bundle: { type: 'string' }, agent: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, out: { type: 'string' },
        seq: { type: 'string' }, key: { type: 'string', multiple: true },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Runs `warden audit <sub>` and returns the exit code. */
export async function auditCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const [sub, ...rest] = args;
  const f = flags(rest);
  if (sub === 'verify' && f.bundle) {
    const text = readInput(f.bundle, '--bundle');
    const keys = trustedKeys(f.key);
    const shape = bundleShapeProblem(text);
    if (shape) {
      stderr.write(`${f.bundle}: ${shape}\n`);
      return 1;
    }
    let result;
    try {
      result = verifyBundle(text, keys);
    } catch (err) {
      // Past the shape check, what still throws is a field of the wrong kind: a bad bundle as well.
      stderr.write(`${f.bundle}: not a valid bundle (${(err as Error).message})\n`);
      return 1;
    }
    if (result.problem) {
      stderr.write(`${f.bundle}: seq ${result.problem.seq}: ${result.problem.reason}\n`);
      return 1;
    }
    stdout.write(`${f.bundle}: ok: ${result.records} records of log ${result.logId}, each proven against its signed checkpoint\n`);
    return 0;
  }
  if (sub === 'verify' && f.collector && !f.db) return verifyCollector(collectorBase(f.collector), f.token ?? process.env.WARDEN_COLLECTOR_TOKEN ?? '', trustedKeys(f.key), stdout, stderr);
  if (sub === 'export') {
    if (!f.agent || !f.from || !f.to) throw new UsageError('audit export needs --agent ID --from TIME --to TIME (ISO 8601)');
    const [from, to] = [isoTime(f.from, '--from'), isoTime(f.to, '--to')];
    // The window is from inclusive, to exclusive: one that ends where or before it starts holds nothing.
    if (from >= to) throw new UsageError(`--from ${f.from} must be before --to ${f.to}`);
    const path = dbPath(f.db);
    auditLogId(path);
    const lines = exportBundle(path, { agent: f.agent, from, to });
    const text = `${lines.join('\n')}\n`;
    if (f.out) writeOut(f.out, text);
    else stdout.write(text);
    stderr.write(`exported ${lines.filter((l) => l.startsWith('{"type":"record"')).length} records\n`);
    const { pruned_through: pruned, unproven_after_checkpoint: unproven } = JSON.parse(lines[0]) as { pruned_through: number; unproven_after_checkpoint: number };
    if (pruned > 0) stderr.write(`records 1..${pruned} were pruned here after shipping: export them from the collector (GET /v1/logs/{id}/export)\n`);
    if (unproven > 0) {
      const cp = lines[1]?.startsWith('{"type":"checkpoint"') ? (JSON.parse(lines[1]) as { checkpoint: Checkpoint }).checkpoint : undefined;
      const why = cp ? `they come after the latest checkpoint (${cp.size} records, signed ${cp.ts})` : 'the log has no checkpoint yet';
      stderr.write(`${unproven} matching records were left out: ${why}, so no checkpoint covers them and they have no inclusion proof yet; `
        + 'export again after the next checkpoint (`warden audit verify --db` checks them by chain meanwhile)\n');
    }
    return 0;
  }
  if (sub === 'verify') {
    const path = dbPath(f.db);
    const checkpoints = readCheckpoints(f.checkpoint ?? []);
    const keys = trustedKeys(f.key);
    const base = f.collector === undefined ? undefined : collectorBase(f.collector);
    const logId = auditLogId(path);
    // With --collector too, the collector's checkpoints for this log count as held elsewhere: a tail
    // cut from the local file (with its own checkpoints) still shows.
    const held = base ? await collectorCheckpoints(base, f.token ?? process.env.WARDEN_COLLECTOR_TOKEN ?? '', logId) : [];
    let result;
    try {
      result = verifyAuditDb(path, { checkpoints: [...checkpoints, ...held], trustedKeys: keys });
    } catch (err) {
      // The file is a Warden audit log (it has a log_id): damage found reading it on is the log found
      // bad (exit 1), like an altered record; a lock or an I/O error left it unchecked (exit 2).
      if (!damagedLog(err)) throw new ConfigError(`${path}: could not verify it (${(err as Error).message})`, { cause: err });
      stderr.write(`${path}: the log is damaged: ${(err as Error).message} (pages cut off or corrupt, or its tables dropped or altered)\n`);
      return 1;
    }
    if (result.problem) {
      stderr.write(`${path}: seq ${result.problem.seq}: ${result.problem.reason}\n`);
      return 1;
    }
    const pruned = result.pruned > 0 ? ` (records 1..${result.pruned} pruned after shipping; the collector holds them)` : '';
    stdout.write(`${path}: ok: log ${result.logId}, ${result.size} records, ${result.checkpoints} checkpoints verified${pruned}\n`);
    return 0;
  }
  if (sub === 'decrypt') {
    if (f.seq !== undefined && !/^[1-9][0-9]{0,15}$/.test(f.seq)) throw new UsageError(`--seq "${f.seq}": not a record's sequence number (a whole number from 1)`);
    const path = dbPath(f.db);
    auditLogId(path);
    const db = openAuditDb(path, { readonly: true });
    try {
      const keyring = loadKeyring();
      const one = f.seq ? db.prepare('SELECT body FROM records WHERE seq = ?').all(Number(f.seq)) as { body: string }[] : undefined;
      const rows = one ?? (db.prepare('SELECT body FROM records ORDER BY seq').iterate() as Iterable<{ body: string }>);
      if (one?.length === 0) {
        // Asked for one record and there is none: say so (exit 1) rather than print nothing, as if it were empty.
        const held = db.prepare('SELECT min(seq) AS first, max(seq) AS last FROM records').get() as { first: number | null; last: number | null };
        stderr.write(`${path}: no record ${f.seq} (${held.first === null ? 'the log holds none' : `it holds records ${held.first}..${held.last}`}${
          held.first !== null && Number(f.seq) < held.first ? '; the earlier ones were pruned after shipping: the collector holds them' : ''})\n`);
        return 1;
      }
      for (const row of rows) stdout.write(`${JSON.stringify(decryptRecord(JSON.parse(row.body), keyring))}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof KeyError)) throw err;
      stderr.write(`${err.message}\n`);
      return 1;
    } finally {
      db.close();
    }
  }
  if (sub === 'reship') {
    const url = f.collector ?? process.env.WARDEN_COLLECTOR_URL;
    if (!url) throw new UsageError('audit reship needs --collector URL (or WARDEN_COLLECTOR_URL)');
    const base = collectorBase(url, f.collector === undefined ? 'WARDEN_COLLECTOR_URL' : '--collector');
    const token = f.token ?? process.env.WARDEN_COLLECTOR_TOKEN ?? '';
    const path = dbPath(f.db);
    // Read-only first: opening for writing would give any SQLite file an audit log's tables.
    const logId = auditLogId(path);
    const db = openAuditDb(path);
    try {
      const outcomes = await reshipDeadLetters({ db, logId, url: base, token });
      if (outcomes.length === 0) stdout.write('no dead-lettered batches: the collector has been sent everything\n');
      // A collector that cannot be reached or refuses the token, or a URL that is no collector at all,
      // refuses every range alike: said once, as the configuration error it is (exit 2), not as ranges
      // a collector still refuses on their merits (1).
      const unusable = outcomes.filter((o) => o.result === 'refused' && UNUSABLE.test(o.detail));
      for (const o of outcomes) {
        if (unusable.includes(o)) continue;
        const what = o.first > o.last ? `the checkpoint at ${o.last}` : `records ${o.first}..${o.last}`;
        (o.result === 'delivered' ? stdout : stderr).write(`${what}: ${o.result}: ${o.detail}\n`);
      }
      if (unusable.length > 0) {
        const { detail } = unusable[0];
        const why = /^HTTP 40[13]\b/.test(detail) ? `the collector at ${base} refused the token (${detail.slice(0, 8)}): give --token T or set WARDEN_COLLECTOR_TOKEN to one of its tokens`
          : detail.startsWith('HTTP') ? `${base} is not a Warden collector (${/^HTTP \d+/.exec(detail)![0]})`
            : `cannot reach the collector at ${base}: ${/\bE[A-Z]{3,}\b/.exec(detail)?.[0] ?? detail.replace(/^the collector could not be reached: /, '')}`;
        stderr.write(`warden: ${why} (${unusable.length} dead-lettered ${unusable.length === 1 ? 'range' : 'ranges'} left for the next reship)\n`);
        return 2;
      }
      return outcomes.every((o) => o.result === 'delivered') ? 0 : 1;
    } finally {
      db.close();
    }
  }
  if (sub === 'checkpoint') {
    const path = dbPath(f.db);
    auditLogId(path);
    const cp = latestCheckpoint(path);
    if (!cp) {
      stderr.write('no checkpoint yet\n');
      return 1;
    }
    stdout.write(`${JSON.stringify(cp)}\n`);
    return 0;
  }
  throw new UsageError(`unknown audit subcommand "${sub ?? ''}" (expected: verify, checkpoint, export, decrypt, reship)`);
}

/** The collector's signed checkpoints for the log `logId`. */
async function collectorCheckpoints(base: string, token: string, logId: string): Promise<Checkpoint[]> {
  const path = `/v1/logs/${encodeURIComponent(logId)}/export`;
  const lines = (await collectorGet(base, path, token)).split('\n').filter(Boolean).map((l) => collectorJson<{ checkpoint?: Checkpoint }>(base, path, l));
  return lines.filter((l) => l.checkpoint).map((l) => l.checkpoint as Checkpoint);
}

/** Verifies every log the collector holds, from its exports; any stored integrity alert fails it too. */
async function verifyCollector(base: string, token: string, keys: Buffer[] | undefined, stdout: Out, stderr: Out): Promise<number> {
  const get = async <T>(path: string): Promise<T> => collectorJson<T>(base, path, await collectorGet(base, path, token));
  const { logs } = await get<{ logs: { logId: string }[] }>('/v1/logs');
  const { alerts } = await get<{ alerts: { logId: string; seq: number; kind: string; detail: string; resolvedAt?: string }[] }>('/v1/alerts');
  if (!Array.isArray(logs) || !Array.isArray(alerts)) throw new ConfigError(`${base}: the answer is not a Warden collector's (no logs or alerts list)`);
  let failed = 0;
  for (const { logId } of logs) {
    const path = `/v1/logs/${encodeURIComponent(logId)}/export`;
    const lines = (await collectorGet(base, path, token)).split('\n').filter(Boolean).map((l) => collectorJson<{ record?: string; checkpoint?: Checkpoint }>(base, path, l));
    let result;
    try {
      const rows = lines.filter((l) => l.record).map((l) => ({ seq: JSON.parse(l.record!).seq as number, body: l.record! }));
      result = verifyLog(logId, rows, lines.filter((l) => l.checkpoint).map((l) => l.checkpoint as Checkpoint), keys);
    } catch (err) {
      // A stored record that is not JSON (or a checkpoint of the wrong shape): the collector's copy is bad.
      failed++;
      stderr.write(`${logId}: the collector's copy is damaged: ${(err as Error).message}\n`);
      continue;
    }
    // Alerts that no longer hold do not fail the log: a gap whose records arrived since, and, once the
    // log's checkpoints all verified against the keys given, a change between two of those keys.
    const settled = (a: (typeof alerts)[number]) => a.resolvedAt !== undefined || (keys !== undefined && !result.problem && a.kind === 'key_changed');
    const logAlerts = alerts.filter((a) => a.logId === logId && !settled(a));
    if (result.problem) {
      failed++;
      stderr.write(`${logId}: seq ${result.problem.seq}: ${result.problem.reason}\n`);
    }
    for (const a of alerts) if (a.logId === logId && settled(a)) stdout.write(`${logId}: seq ${a.seq}: ${a.kind}, settled (${a.resolvedAt ? `resolved ${a.resolvedAt}` : 'both keys trusted'}): ${a.detail}\n`);
    for (const a of logAlerts) stderr.write(`${logId}: seq ${a.seq}: integrity alert ${a.kind}: ${a.detail}\n`);
    if (!result.problem && logAlerts.length === 0) stdout.write(`${logId}: ok: ${result.size} records, ${result.checkpoints} checkpoints verified\n`);
    else if (!result.problem) failed++;
  }
  return failed > 0 ? 1 : 0;
}

// What a reship range's refusal says when the fault is the address or the token, not the records:
// unreachable, a refused token, no ingest route there (404, 405), or an answer that is not a collector's.
const UNUSABLE = /^(?:HTTP 40[1345]\b|HTTP \d+ that is not the collector's answer|the collector could not be reached)/;

/** Writes the bundle to --out; a place it cannot be written is the operator's to fix (exit 2), not a crash. */
function writeOut(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw new ConfigError(`cannot write --out ${path}: ${(err as Error).message}`, { cause: err });
  }
}
