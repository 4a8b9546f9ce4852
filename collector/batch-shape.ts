// What a batch must look like before the store is touched. A batch of the wrong shape is the
// sender's fault, not evidence: it is answered 400 (the sidecar dead-letters it), never left to fail
// inside the store's transaction, where it would read as a store failure (503: keep it, retry forever).
import type { Checkpoint } from '../proxy/audit/signing.ts';
import { nestingDepth } from '../proxy/http/body.ts';
import type { IngestBatch } from './ingest.ts';

/**
 * Longest log_id taken. The sidecar's ids are `{task ARN}/{8 hex}` or `{hostname}/{boot id}/{8 hex}`:
 * an ECS task ARN with the longest cluster name (255) is about 350 characters, a hostname at most
 * 253. Anything much longer is not a sidecar's, and each batch would store it again in every row.
 */
export const MAX_LOG_ID_LENGTH = 512;

/**
 * How deep a record's arrays and objects may nest. Verifying a record re-serializes it recursively
 * (canonical-json.ts), which overflows the stack a few thousand levels down; SQLite's JSON functions
 * stop at 1,000 too. The sidecar refuses request bodies past 512 levels, so its records stay well under.
 */
export const MAX_RECORD_DEPTH = 1_000;

/** A batch whose shape is wrong (not evidence: the sender is broken); answered with 400. */
export class MalformedBatchError extends Error {
  readonly status = 400;
  readonly code = 'WARDEN_ERR_MALFORMED_BATCH';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a parsed value nests deeper than `cap`, walked without recursion. */
function deeperThan(value: unknown, cap: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > cap) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** What is wrong with a checkpoint's shape, if anything: the fields ingest places and stores it by. */
function checkpointProblem(cp: unknown): string | undefined {
  if (!isObject(cp)) return 'is not an object';
  if (typeof cp.log_id !== 'string') return 'has no log_id (string)';
  if (!Number.isSafeInteger(cp.size) || (cp.size as number) < 0) return `has no valid size (${JSON.stringify(cp.size)})`;
  for (const field of ['root', 'key_id', 'public_key', 'sig'] as const) if (typeof cp[field] !== 'string') return `has no ${field} (string)`;
  // Its signature is checked over its canonical form, another recursive walk.
  if (deeperThan(cp, MAX_RECORD_DEPTH)) return `nests deeper than ${MAX_RECORD_DEPTH} levels`;
  return undefined;
}

/**
 * Validates a batch's shape: log_id, records as JSON object texts nested no deeper than
 * MAX_RECORD_DEPTH, checkpoints with the fields ingest relies on. What a record says (its seq, its
 * chain link, its signature) is ingest's to judge: a record that fails a check there is evidence.
 */
export function parseBatch(value: unknown): IngestBatch {
  if (!isObject(value)) throw new MalformedBatchError('a batch must be a JSON object with log_id, records and checkpoints');
  const { log_id: logId, records, checkpoints = [] } = value;
  if (typeof logId !== 'string' || logId === '') throw new MalformedBatchError('a batch needs log_id (a non-empty string)');
  if (logId.length > MAX_LOG_ID_LENGTH) throw new MalformedBatchError(`log_id is ${logId.length} characters long; at most ${MAX_LOG_ID_LENGTH} are taken`);
  if (logId.includes('\0')) throw new MalformedBatchError('log_id contains a NUL character');
  if (!Array.isArray(records)) throw new MalformedBatchError('a batch needs records (an array of canonical JSON texts)');
  records.forEach((r: unknown, i) => {
    // Every record the sidecar writes is an object; checked on the text, so nothing is parsed twice.
    if (typeof r !== 'string' || !r.trimStart().startsWith('{')) throw new MalformedBatchError(`records[${i}] is not the text of a JSON object`);
    if (nestingDepth(Buffer.from(r), MAX_RECORD_DEPTH) > MAX_RECORD_DEPTH) throw new MalformedBatchError(`records[${i}] nests arrays and objects deeper than ${MAX_RECORD_DEPTH} levels`);
  });
  if (!Array.isArray(checkpoints)) throw new MalformedBatchError('checkpoints, when given, must be an array');
  checkpoints.forEach((cp: unknown, i) => {
    const problem = checkpointProblem(cp);
    if (problem) throw new MalformedBatchError(`checkpoints[${i}] ${problem}`);
  });
  return { ...(value as unknown as IngestBatch), checkpoints: checkpoints as Checkpoint[] };
}
