// Tamper evidence: each kind of tampering with a stored log makes `warden audit verify` exit 1 and
// name the first bad seq; an intact log exits 0. No key is needed to verify.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import Database from 'better-sqlite3';
import { openAuditLog } from '../../../proxy/audit/audit-log.ts';
import { canonicalize } from '../../../proxy/audit/canonical-json.ts';
import { leafHash, rootOf } from '../../../proxy/audit/merkle.ts';
import { loadSigningKey, signCheckpoint, type SigningKey } from '../../../proxy/audit/signing.ts';
import { tempDataDir, WARDEN_BIN } from '../../helpers/warden.ts';

const RECORDS = 30;
let original: string;
let heldCheckpoint: string;
let ownKey: string;
let ownKeyId: string;

function verify(db: string, ...extra: string[]) {
  const r = spawnSync(process.execPath, [WARDEN_BIN, 'audit', 'verify', '--db', db, ...extra], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(async () => {
  const dir = tempDataDir();
  original = join(dir, 'audit.db');
  const key = loadSigningKey(dir, {});
  ownKey = key.publicKeyDer.toString('base64');
  ownKeyId = key.keyId;
  const log = await openAuditLog({
    path: original, key, strict: true, checkpointEveryRecords: 10,
    openEntry: { event: 'log_open', ts: new Date().toISOString(), agent: { id: 'a', version: '1' } },
  });
  // Three batches, so checkpoints land at 10, 20 and (on close) 30 records.
  let n = 0;
  for (const size of [9, 10, 9]) {
    await Promise.all(Array.from({ length: size }, () => log.append({ event: 'model_call', ts: new Date().toISOString(), n, text: `reply number ${n++}` })));
    if (n === 19) assert.equal(log.stats().checkpointed, 20);
  }
  // An auditor's copy of the checkpoint at 20 records, taken before anything went wrong (the 28th
  // record is committed, so the latest checkpoint is still the one at 20).
  const r = spawnSync(process.execPath, [WARDEN_BIN, 'audit', 'checkpoint', '--db', original], { encoding: 'utf8' });
  heldCheckpoint = join(dir, 'held.json');
  writeFileSync(heldCheckpoint, r.stdout);
  assert.equal(JSON.parse(r.stdout).size, 20);
  await log.close({ event: 'log_close', ts: new Date().toISOString() });
});

/** A copy of the intact log, changed by `mutate`. */
function tampered(name: string, mutate: (db: Database.Database) => void): string {
  const path = join(tempDataDir(), `${name}.db`);
  copyFileSync(original, path);
  const db = new Database(path);
  mutate(db);
  db.close();
  return path;
}

test('an intact log verifies: every record, chain link and checkpoint', () => {
  const r = verify(original);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`ok: log .*, ${RECORDS} records, 3 checkpoints verified`));
});

test('a changed byte in a stored record → exit 1 naming its seq', () => {
  const path = tampered('byte', (db) => db.prepare("UPDATE records SET body = replace(body, 'reply number 5', 'reply number 6') WHERE seq = 7").run());
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 7: the record's bytes do not hash to its stored leaf \(altered\)/);
});

test('a changed record with its leaf recomputed → the next record\'s link breaks', () => {
  const path = tampered('releaf', (db) => {
    const row = db.prepare('SELECT body FROM records WHERE seq = 7').get() as { body: string };
    const body = canonicalize({ ...JSON.parse(row.body), text: 'forged' });
    db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = 7').run(body, leafHash(body));
  });
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 8: prev_hash does not link to record 7/);
});

test('a whole chain rewritten consistently from seq 3 → the signed Merkle root gives it away', () => {
  const path = tampered('rewrite', (db) => {
    let prev = (db.prepare('SELECT leaf FROM records WHERE seq = 2').get() as { leaf: Buffer }).leaf.toString('hex');
    for (const row of db.prepare('SELECT seq, body FROM records WHERE seq >= 3 ORDER BY seq').all() as { seq: number; body: string }[]) {
      const rec = JSON.parse(row.body);
      const body = canonicalize({ ...rec, ...(row.seq === 3 ? { text: 'forged' } : {}), prev_hash: prev });
      const leaf = leafHash(body);
      db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = ?').run(body, leaf, row.seq);
      prev = leaf.toString('hex');
    }
  });
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 10: the Merkle root over records 1\.\.10 does not match the checkpoint/);
});

test('a ts or event column edited (to hide a record from a query by time or kind) → exit 1 naming its seq', () => {
  const ts = verify(tampered('ts-column', (db) => db.prepare("UPDATE records SET ts = '1999-01-01T00:00:00.000Z' WHERE seq = 12").run()));
  assert.equal(ts.code, 1);
  assert.match(ts.err, /: seq 12: the record's ts column \("1999-01-01T00:00:00.000Z"\) is not its body's \(.*\): altered/);
  const event = verify(tampered('event-column', (db) => db.prepare("UPDATE records SET event = 'log_close' WHERE seq = 9").run()));
  assert.equal(event.code, 1);
  assert.match(event.err, /: seq 9: the record's event column \("log_close"\) is not its body's \("model_call"\): altered/);
});

test('a checkpoint copied over another → exit 1 at the size it was filed under', () => {
  const path = tampered('cp-copied', (db) => db.prepare('UPDATE checkpoints SET body = (SELECT body FROM checkpoints WHERE size = 10) WHERE size = 20').run());
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 20: the checkpoint filed at size 20 is the one at size 10, with another root: altered/);
});

test('a deleted record → exit 1 naming the missing seq', () => {
  const r = verify(tampered('deleted', (db) => db.prepare('DELETE FROM records WHERE seq = 12').run()));
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 12: record 12 is missing \(the next stored record is 13\)/);
});

test('two swapped records → exit 1 naming the first', () => {
  const path = tampered('swapped', (db) => {
    const a = db.prepare('SELECT body, leaf FROM records WHERE seq = 5').get() as { body: string; leaf: Buffer };
    const b = db.prepare('SELECT body, leaf FROM records WHERE seq = 6').get() as { body: string; leaf: Buffer };
    db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = 5').run(b.body, b.leaf);
    db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = 6').run(a.body, a.leaf);
  });
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 5: the record claims seq 6 \(records reordered\)/);
});

test('a truncated tail → exit 1 from the log\'s own checkpoints', () => {
  const r = verify(tampered('truncated', (db) => db.prepare('DELETE FROM records WHERE seq > 25').run()));
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 26: the log ends at record 25, but a checkpoint .* attests 30 records \(the tail was truncated\)/);
});

test('a tail truncated with its checkpoints → only a checkpoint held elsewhere tells, and it does', () => {
  const path = tampered('truncated-cp', (db) => {
    db.prepare('DELETE FROM records WHERE seq > 15').run();
    db.prepare('DELETE FROM checkpoints WHERE size > 15').run();
  });
  assert.equal(verify(path).code, 0, 'without outside evidence the shorter log is self-consistent');
  const r = verify(path, '--checkpoint', heldCheckpoint);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 16: the log ends at record 15, but a checkpoint .* attests 20 records/);
});

test('a forged checkpoint signature → exit 1; a missing database → exit 2', () => {
  const path = tampered('forged-cp', (db) => {
    const row = db.prepare('SELECT body FROM checkpoints WHERE size = 20').get() as { body: string };
    db.prepare('UPDATE checkpoints SET body = ? WHERE size = 20').run(row.body.replace(/"ts":"[^"]+"/, '"ts":"2020-01-01T00:00:00.000Z"'));
  });
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, /: seq 20: the checkpoint at size 20 has a bad signature/);
  assert.equal(verify('/nonexistent/audit.db').code, 2);
});

/**
 * A copy of the log with records 21..30 rewritten consistently from record 20's leaf (record 25
 * forged), and its checkpoints at `sizes` signed anew by `key` over the new roots: what someone who
 * can write the file but lacks the log's key can make.
 */
function resignedTail(name: string, key: SigningKey, sizes: number[]): string {
  return tampered(name, (db) => {
    let prev = (db.prepare('SELECT leaf FROM records WHERE seq = 20').get() as { leaf: Buffer }).leaf.toString('hex');
    for (const row of db.prepare('SELECT seq, body FROM records WHERE seq > 20 ORDER BY seq').all() as { seq: number; body: string }[]) {
      const body = canonicalize({ ...JSON.parse(row.body), ...(row.seq === 25 ? { text: 'forged' } : {}), prev_hash: prev });
      const leaf = leafHash(body);
      db.prepare('UPDATE records SET body = ?, leaf = ? WHERE seq = ?').run(body, leaf, row.seq);
      prev = leaf.toString('hex');
    }
    const leaves = (db.prepare('SELECT leaf FROM records ORDER BY seq').all() as { leaf: Buffer }[]).map((r) => r.leaf);
    const logId = JSON.parse(db.prepare('SELECT body FROM records WHERE seq = 1').pluck().get() as string).log_id;
    for (const size of sizes) {
      const cp = signCheckpoint(key, { log_id: logId, size, root: rootOf(leaves.slice(0, size)).toString('hex'), ts: new Date().toISOString() });
      db.prepare('UPDATE checkpoints SET root = ?, body = ? WHERE size = ?').run(Buffer.from(cp.root, 'hex'), canonicalize(cp), size);
    }
  });
}

test('a tail rewritten and signed with another key (the rewriter lacks the log\'s) → exit 1 at its checkpoint, even with both keys trusted', () => {
  const otherKey = loadSigningKey(tempDataDir(), {});
  const other = otherKey.publicKeyDer.toString('base64');
  const path = resignedTail('resigned', otherKey, [30]);
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`: seq 30: the checkpoint at size 30 is signed by key ${otherKey.keyId}, but the log's earlier checkpoints by key [0-9a-f]{32} \\(the signing key was replaced`));
  // The log's own key alone: the other is not trusted. Both: still not this run's key, which its
  // log_open names (a rotation is a new run with a log_open of its own: test/proxy/audit/append.test.ts).
  const own = verify(path, '--key', ownKey);
  assert.equal(own.code, 1);
  assert.match(own.err, new RegExp(`: seq 30: the checkpoint at size 30 is signed by key ${otherKey.keyId}, which is not one of the keys given to trust`));
  const keys = join(tempDataDir(), 'trusted.keys');
  writeFileSync(keys, `# the audit keys of this fleet\n${ownKey}\n${other}\n`);
  const both = verify(path, '--key', keys);
  assert.equal(both.code, 1);
  assert.match(both.err, new RegExp(`: seq 30: the checkpoint at size 30 is signed by key ${otherKey.keyId}, but the log_open of its run \\(record 1\\) names key ${ownKeyId}`));
  // And the intact log verifies against its own key, but not against a stranger's.
  assert.equal(verify(original, '--key', ownKey).code, 0);
  assert.match(verify(original, '--key', other).err, /: seq 10: the checkpoint at size 10 is signed by key [0-9a-f]{32}, which is not one of the keys given to trust/);
  assert.equal(verify(original, '--key', 'not-a-key').code, 2);
});

test('every checkpoint re-signed with another key, after a tail rewrite → the key the run\'s log_open names gives it away', () => {
  const otherKey = loadSigningKey(tempDataDir(), {});
  const path = resignedTail('all-resigned', otherKey, [10, 20, 30]);
  // One signer throughout, every root and link consistent: only the log_open at seq 1 still names the log's key.
  const r = verify(path);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`: seq 10: the checkpoint at size 10 is signed by key ${otherKey.keyId}, but the log_open of its run \\(record 1\\) names key [0-9a-f]{32}`));
});
