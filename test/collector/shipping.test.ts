// Records reach the collector exactly once and in order, through load and through a collector outage.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditLogSize } from '../helpers/audit.ts';
import { startCollector, startShippingWarden, type TestCollector } from '../helpers/collector.ts';
import { policyFor, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

// The acceptance criterion's outage; WARDEN_TEST_OUTAGE_MS shortens it while developing.
const OUTAGE_MS = Number(process.env.WARDEN_TEST_OUTAGE_MS ?? 60_000);

let fake: FakeUpstream;
let collector: TestCollector;
let warden: Sidecar;
let dataDir: string;
const dispatcher = new Agent({ connections: 32 });

before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
  collector = await startCollector();
  dataDir = tempDataDir();
  warden = await startShippingWarden(collector, tempFile('s.yaml', policyFor(fake.url, 'models:\n  gpt-4o: { price: { inputPerMTok: 2.5, outputPerMTok: 10 } }\n', 'shipped-agent')), dataDir);
});
after(async () => {
  await dispatcher.close();
  await warden.shutdown();
  await collector.close();
  await fake.close();
});

async function load(calls: number, concurrency = 20, task = 'load'): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < calls) {
      next++;
      const res = await request(`${warden.trafficUrl}/v1/chat/completions`, {
        method: 'POST', dispatcher, headers: { 'content-type': 'application/json', 'x-warden-task': task },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `call ${next}` }] }),
      });
      await res.body.text();
      assert.equal(res.statusCode, 200);
    }
  }));
}



test('10,000 calls: every record reaches the collector exactly once, in order, with no integrity alert', { timeout: 120_000 }, async () => {
  await load(10_000);
  const size = auditLogSize(dataDir);
  await waitFor(async () => (await collector.logSize()) === size, 60_000, 'the collector to catch up');
  const seqs = await collector.seqs();
  assert.deepEqual(seqs, Array.from({ length: size }, (_, i) => i + 1));
  assert.deepEqual((await collector.get('/v1/alerts')).alerts, []);
  const cost = await collector.get<{ rows: { key: string; calls: number; costUsd: number }[] }>('/v1/cost?by=task');
  assert.equal(cost.rows.find((r) => r.key === 'load')?.calls, 10_000);
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /^warden_audit_unshipped_records 0$/m);
});

test(`the collector down for ${OUTAGE_MS / 1000} s under load, then back: everything arrives exactly once, in order`, { timeout: OUTAGE_MS + 150_000 }, async () => {
  await collector.down();
  const downAt = Date.now();
  let calls = 0;
  while (Date.now() - downAt < OUTAGE_MS) {
    await load(200, 10, 'outage');
    calls += 200;
  }
  const status = await (await request(`${warden.adminUrl}/status`)).body.json() as { state: string; reasons: string[] };
  assert.equal(status.state, 'yellow');
  assert.match(status.reasons.join(), /audit shipping is failing \(network/);
  // What waits is counted while the collector is away, so the backlog alerts can fire during an outage.
  const waiting = Number(/^warden_audit_unshipped_records (\d+)$/m.exec(await (await request(`${warden.adminUrl}/metrics`)).body.text())?.[1]);
  assert.ok(waiting >= calls && waiting <= auditLogSize(dataDir), `${waiting} records waiting, ${calls} calls during the outage`);
  assert.match(status.reasons.join(), new RegExp(`; (\\d+) records wait locally`));
  assert.ok(Number(/; (\d+) records wait locally/.exec(status.reasons.join())![1]) >= calls);
  await collector.up();
  const size = auditLogSize(dataDir);
  // The shipper's backoff is capped at 60 s (full jitter), so it is back within a minute.
  await waitFor(async () => (await collector.logSize()) === size, 90_000, 'the collector to catch up after the outage');
  assert.deepEqual(await collector.seqs(), Array.from({ length: size }, (_, i) => i + 1));
  assert.deepEqual((await collector.get('/v1/alerts')).alerts, []);
  const metrics = await (await request(`${warden.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /^warden_audit_ship_failures_total\{reason="network"\} [1-9]/m);
  assert.ok(calls >= 200);
  assert.match(metrics, /^warden_audit_unshipped_records 0$/m);
});
