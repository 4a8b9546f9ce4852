// What the sidecar hands the audit log: a record JSON cannot hold fails alone, as a rejected append
// (never a throw out of the call's release), and the log goes on, verifiable; records the sidecar
// canonicalizes are the bytes the writer would have written from the entry itself.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../../proxy/audit/audit-log.ts';
import { canonicalize } from '../../../proxy/audit/canonical-json.ts';
import { loadSigningKey } from '../../../proxy/audit/signing.ts';
import { verifyAuditDb } from '../../../proxy/audit/verify.ts';
import { tempDataDir } from '../../helpers/warden.ts';

test('a record with a non-finite number is refused alone; the log goes on and verifies', async () => {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const log = await openAuditLog({ path, key: loadSigningKey(dir, {}), strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
  const ok = (i: number) => log.append({ event: 'model_call', ts: new Date().toISOString(), cost_usd: 0.001 * i, decisions: [{ stage: 'x', decision: 'y', detail: { z: 1, a: [i] } }] });
  await ok(1);
  let bad: Promise<void> | undefined;
  assert.doesNotThrow(() => (bad = log.append({ event: 'model_call', ts: new Date().toISOString(), cost_usd: Infinity })));
  await assert.rejects(bad!, /cannot be written: canonical JSON cannot hold Infinity/);
  // Appended in the same turn as good ones, a bad record takes none of them down.
  await Promise.all([ok(2), log.append({ event: 'model_call', ts: new Date().toISOString(), n: NaN }).catch(() => 'refused'), ok(3)]);
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const result = verifyAuditDb(path);
  assert.equal(result.problem, undefined, JSON.stringify(result));
  assert.equal(result.size, 5);
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('SELECT seq, event, body FROM records ORDER BY seq').all() as { seq: number; event: string; body: string }[];
  db.close();
  assert.deepEqual(rows.map((r) => r.event), ['log_open', 'model_call', 'model_call', 'model_call', 'log_close']);
  // Each stored text is the canonical form of its own parsed value: the sidecar's text around
  // prev_hash and seq is what canonicalizing the whole record gives.
  for (const r of rows) assert.equal(r.body, canonicalize(JSON.parse(r.body)), `seq ${r.seq}`);
});

test('a log reopened with another signing key says so: in its log_open record, in a warning, and to verify unless both keys are trusted', async () => {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const first = loadSigningKey(dir, {});
  const second = loadSigningKey(tempDataDir(), {});
  const warnings: string[] = [];
  for (const key of [first, first, second]) {
    const log = await openAuditLog({ path, key, strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() }, observer: { warning: (m) => warnings.push(m) } });
    await log.append({ event: 'model_call', ts: new Date().toISOString() });
    await log.close({ event: 'log_close', ts: new Date().toISOString() });
  }
  const db = new Database(path, { readonly: true });
  const opens = (db.prepare("SELECT body FROM records WHERE event = 'log_open' ORDER BY seq").all() as { body: string }[]).map((r) => JSON.parse(r.body));
  db.close();
  assert.deepEqual(opens.map((o) => [o.signing_key, o.previous_signing_key]), [[first.keyId, undefined], [first.keyId, undefined], [second.keyId, first.keyId]]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`the audit signing key \\(${second.keyId}\\) is not the one that signed this log's checkpoints so far \\(${first.keyId}\\)`));
  assert.match(verifyAuditDb(path).problem?.reason ?? '', /the signing key was replaced/);
  assert.equal(verifyAuditDb(path, { trustedKeys: [first.publicKeyDer, second.publicKeyDer] }).problem, undefined);

  // Checkpoints gone (pruned after shipping): the log's signer is still known, from meta.
  const pruned = new Database(path);
  pruned.exec('DELETE FROM checkpoints');
  pruned.close();
  const log = await openAuditLog({ path, key: first, strict: true, openEntry: { event: 'log_open', ts: new Date().toISOString() }, observer: { warning: (m) => warnings.push(m) } });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const reopened = new Database(path, { readonly: true });
  const last = JSON.parse((reopened.prepare("SELECT body FROM records WHERE event = 'log_open' ORDER BY seq DESC LIMIT 1").get() as { body: string }).body);
  reopened.close();
  assert.deepEqual([last.signing_key, last.previous_signing_key], [first.keyId, second.keyId]);
  assert.equal(warnings.length, 2);
});

test('a run that finds records no checkpoint covers (a crash before the next one) names them in its log_open', async () => {
  const dir = tempDataDir();
  const path = join(dir, 'audit.db');
  const key = loadSigningKey(dir, {});
  const open = () => openAuditLog({ path, key, strict: true, checkpointEveryRecords: 5, checkpointEveryMs: 600_000, openEntry: { event: 'log_open', ts: new Date().toISOString() } });
  let log = await open();
  for (let i = 0; i < 7; i++) await log.append({ event: 'model_call', ts: new Date().toISOString() });
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  // As a SIGKILL after record 7 would leave it: the checkpoint at 5 is the last (the closing one never came).
  const db = new Database(path);
  db.exec('DELETE FROM checkpoints WHERE size > 5');
  db.close();
  log = await open();
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
  const read = new Database(path, { readonly: true });
  const opens = (read.prepare("SELECT seq, body FROM records WHERE event = 'log_open' ORDER BY seq").all() as { seq: number; body: string }[]).map((r) => ({ seq: r.seq, ...JSON.parse(r.body) }));
  read.close();
  assert.deepEqual(opens.map((o) => [o.seq, o.unsigned_from]), [[1, undefined], [10, 6]]);
});
