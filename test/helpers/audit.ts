// Reading a sidecar's audit log in tests, the way an auditor's tool would: straight from the SQLite file.
import Database from 'better-sqlite3';
import { join } from 'node:path';

/** The bodies of the records of one event kind, in sequence order. */
export function auditRecords(dataDir: string, event = 'model_call'): Record<string, any>[] {
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  try {
    return (db.prepare('SELECT body FROM records WHERE event = ? ORDER BY seq').all(event) as { body: string }[]).map((r) => JSON.parse(r.body));
  } finally {
    db.close();
  }
}

/** The highest seq in a sidecar's audit log: the size its collector must reach. */
export function auditLogSize(dataDir: string): number {
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  try {
    return (db.prepare('SELECT max(seq) AS n FROM records').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
