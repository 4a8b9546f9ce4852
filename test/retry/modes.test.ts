// Modes and retries: monitor records a split jury and never holds the call; research relaxes the
// retry budget (recorded, not enforced) and logs bodies in full.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { checkPolicyText } from '../../policies/load.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { auditRecords } from '../helpers/audit.ts';
import { chatJson, errorJson, script } from '../helpers/scripted.ts';
import { policyFor, startWarden, tempDataDir, tempFile } from '../helpers/warden.ts';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

test('monitor: a split jury is recorded and the jury\'s pick returned unreviewed; nothing waits for a person', async () => {
  const dataDir = tempDataDir();
  const w = await startWarden(tempFile('m.yaml', policyFor(fake.url, `mode: monitor
retries:
  parallel: { n: 3, escalateBelowAgreement: 0.67 }
`)), false, dataDir);
  try {
    script(fake, (_req, n, res) => chatJson(res, ['one', 'two', 'three'][n]));
    const c = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    const { data, response } = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'split' }] }).withResponse();
    assert.equal(data.choices[0].message.content, 'one');
    assert.match(response.headers.get('x-warden-actions') ?? '', /unreviewed/);
    const list = await (await fetch(`${w.adminUrl}/escalations`)).json() as { escalations?: unknown[] } | unknown[];
    assert.equal((Array.isArray(list) ? list : list.escalations ?? []).length, 0);
    const rec = auditRecords(dataDir).at(-1)!;
    assert.ok(rec.decisions.some((d: any) => d.stage === 'escalation' && d.decision === 'logged'));
  } finally {
    await w.shutdown();
  }
});

test('research: retries past a spent budget are made and recorded; audit bodies default to 16 MiB', async () => {
  const file = tempFile('r.yaml', policyFor(fake.url, `mode: research
retries:
  maxAttempts: 3
  backoff: { baseMs: 1, capMs: 2 }
  budget: { ratio: 0, minRetries: 0 }
`));
  const w = await startWarden(file);
  try {
    const seen = script(fake, (_req, _n, res) => errorJson(res, 503));
    const c = new OpenAI({ apiKey: 'sk', baseURL: `${w.trafficUrl}/v1`, maxRetries: 0 });
    await assert.rejects(c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }));
    assert.equal(seen.length, 3, 'every attempt made though the budget allows none');
  } finally {
    await w.shutdown();
  }
  const checked = checkPolicyText(file, policyFor(fake.url, 'mode: research\n'));
  assert.equal(checked.policy?.audit.maxBodyBytes, 16 * 1024 * 1024);
});
