// A collector restored from a backup, or started again on a new store, holds less than the sidecar
// shipped: the next batch it takes lands after a gap. It says so in its answer (missing_from,
// missing_through), and the sidecar rewinds its shipping to the gap (pruning waits), so the collector
// ends with the whole log and its gap alert resolved; records pruned here meanwhile are lost to it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditLogSize } from '../helpers/audit.ts';
import { startCollector, startShippingWarden, type TestCollector } from '../helpers/collector.ts';
import { policyFor, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

let fake: FakeUpstream;
let collector: TestCollector;
let warden: Sidecar;
let dataDir: string;

before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
  collector = await startCollector();
  dataDir = tempDataDir();
  warden = await startShippingWarden(collector, tempFile('r.yaml', policyFor(fake.url, '', 'refilled-agent')), dataDir);
});
after(async () => {
  await warden.shutdown();
  await collector.close();
  await fake.close();
});

async function calls(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `call ${i}` }] }),
    });
    assert.equal(res.statusCode, 200);
    await res.body.text();
  }
}

test('a collector started again on an empty store is refilled with the records it lost, and its gap alert resolves', { timeout: 60_000 }, async () => {
  await calls(120);
  await waitFor(async () => (await collector.logSize()) === auditLogSize(dataDir), 15_000, 'the first collector to hold the log');
  const lost = auditLogSize(dataDir);
  // The same address, a new store: everything it held is gone.
  const { port } = collector;
  await collector.close();
  collector = await startCollector(undefined, undefined, port);
  await calls(30);
  const size = auditLogSize(dataDir);
  await waitFor(async () => (await collector.seqs()).length === size, 30_000, 'the new collector to be refilled');
  assert.deepEqual(await collector.seqs(), Array.from({ length: size }, (_, i) => i + 1));
  const alerts = (await collector.store.alerts('test-fleet')).map((a) => `${a.kind}@${a.seq}${a.resolvedAt ? ' (resolved)' : ''}`);
  assert.deepEqual(alerts, [`gap@${lost + 1} (resolved)`], 'the gap it saw, resolved once filled');
  await waitFor(async () => {
    const status = await (await request(`${warden.adminUrl}/status`)).body.json() as { state: string; audit?: { deadLettered?: number } };
    return status.state === 'green';
  }, 10_000, 'the sidecar green again, nothing left dead-lettered');
  assert.equal(warden.ctx.audit!.stats().deadLettered, 0);
});

test('records already pruned here are lost to a collector that lost them; the rest are sent again', { timeout: 60_000 }, async () => {
  const dir = tempDataDir();
  let second = await startCollector();
  const pruning = await startShippingWarden(second, tempFile('p.yaml', policyFor(fake.url, 'audit: { retainShipped: 1s }\n', 'pruned-agent')), dir);
  try {
    const call = async () => {
      const res = await request(`${pruning.trafficUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' });
      await res.body.text();
    };
    for (let i = 0; i < 40; i++) await call();
    await waitFor(() => pruning.ctx.audit!.stats().pruned > 0, 15_000, 'records pruned after shipping');
    const pruned = pruning.ctx.audit!.stats().pruned;
    const { port } = second;
    await second.close();
    second = await startCollector(undefined, undefined, port);
    for (let i = 0; i < 10; i++) await call();
    const size = auditLogSize(dir);
    // Everything still held here arrives; what was pruned here cannot.
    await waitFor(async () => (await second.seqs()).length === size - pruned, 30_000, 'the records still held here to arrive');
    assert.deepEqual(await second.seqs(), Array.from({ length: size - pruned }, (_, i) => pruned + i + 1));
    assert.equal(pruning.ctx.audit!.stats().unshipped, 0);
  } finally {
    await pruning.shutdown();
    await second.close();
  }
});
