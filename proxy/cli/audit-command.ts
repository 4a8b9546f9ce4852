// `warden audit verify|checkpoint`: check a local audit log's integrity without any key, and print
// its latest signed checkpoint for safekeeping elsewhere.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { latestCheckpoint, verifyAuditDb } from '../audit/verify.ts';
import type { Checkpoint } from '../audit/signing.ts';
import { UsageError } from '../errors.ts';

type Out = Pick<NodeJS.WriteStream, 'write'>;

function flags(args: string[]) {
  try {
    return parseArgs({ args, options: { db: { type: 'string' }, checkpoint: { type: 'string', multiple: true } }, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function dbPath(db: string | undefined): string {
  const path = db ?? join(process.env.WARDEN_DATA_DIR ?? '.warden', 'audit.db');
  if (!existsSync(path)) throw new UsageError(`no audit database at ${path} (give --db PATH or set WARDEN_DATA_DIR)`);
  return path;
}

/** Checkpoints from files: one JSON object, or one per line. */
function readCheckpoints(files: string[]): Checkpoint[] {
  return files.flatMap((f) => {
    const text = readFileSync(f, 'utf8').trim();
    try {
      return text.startsWith('[') ? JSON.parse(text) : text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    } catch (err) {
      throw new UsageError(`${f}: not a checkpoint file (${(err as Error).message})`);
    }
  });
}

/** Runs `warden audit <sub>` and returns the exit code. */
export async function auditCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const [sub, ...rest] = args;
  const f = flags(rest);
  if (sub === 'verify') {
    const path = dbPath(f.db);
    const result = verifyAuditDb(path, { checkpoints: readCheckpoints(f.checkpoint ?? []) });
    if (result.problem) {
      stderr.write(`${path}: seq ${result.problem.seq}: ${result.problem.reason}\n`);
      return 1;
    }
    stdout.write(`${path}: ok: log ${result.logId}, ${result.size} records, ${result.checkpoints} checkpoints verified\n`);
    return 0;
  }
  if (sub === 'checkpoint') {
    const cp = latestCheckpoint(dbPath(f.db));
    if (!cp) {
      stderr.write('no checkpoint yet\n');
      return 1;
    }
    stdout.write(`${JSON.stringify(cp)}\n`);
    return 0;
  }
  throw new UsageError(`unknown audit subcommand "${sub ?? ''}" (expected: verify, checkpoint)`);
}
