// One batch of the audit log on its way to the collector: contiguous records cut to a byte budget,
// with the checkpoints among them, posted gzip'd under an idempotency key. The shipper, reship and
// refills all send the log this way.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface Batch {
  first: number;
  last: number;
  records: string[];
  checkpoints: unknown[];
}

export type RecordRow = { seq: number; body: string };

/**
 * Records from `rows` (in seq order) for one batch, within `maxBytes` of payload (each record a JSON
 * string inside the JSON), the first always in; `after` is the seq before them. Row by row, so that
 * a batch of large records is never read whole only to be cut. With `unbroken`, a missing seq ends it.
 */
export function takeRecords(rows: Iterable<RecordRow>, maxBytes: number, after: number, unbroken = false): { records: string[]; first: number; last: number } {
  const records: string[] = [];
  let first = 0;
  let last = after;
  let bytes = 0;
  for (const r of rows) {
    const size = Buffer.byteLength(JSON.stringify(r.body)) + 1;
    if (records.length > 0 && bytes + size > maxBytes) break;
    if (unbroken && r.seq !== last + 1) break;
    records.push(r.body);
    bytes += size;
    first ||= r.seq;
    last = r.seq;
  }
  return { records, first, last };
}

/** One batch to the collector: gzip'd, keyed for idempotency by the log, its range and its bytes. Throws on network failure. */
export async function postBatch(url: string, token: string, logId: string, batch: Batch, timeoutMs: number): Promise<Response> {
  const payload = JSON.stringify({ log_id: logId, first_seq: batch.first, last_seq: batch.last, records: batch.records, checkpoints: batch.checkpoints });
  const digest = createHash('sha256').update(payload).digest('hex').slice(0, 32);
  return fetch(`${url.replace(/\/+$/, '')}/v1/ingest`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-encoding': 'gzip',
      'idempotency-key': `${logId}:${batch.first}:${batch.last}:${digest}`,
    },
    body: gzipSync(payload),
    signal: AbortSignal.timeout(timeoutMs),
  });
}
