// Passive drift detection in a running sidecar: the agent's own traffic, no eval prompts. The first
// 500 calls are the baseline period; each later window of 500 is compared with it. A model that starts
// refusing 10% of requests instead of 2% is flagged; the same behaviour again is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { createFakeBehaviour, type BehaviourRule } from '../../proxy/demo/fake-behaviour.ts';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { policyFor, startWarden, tempFile } from '../helpers/warden.ts';
import { pactYaml } from './helpers.ts';
import { dirname, join } from 'node:path';
import { writeFileSync } from 'node:fs';

const WINDOW = 500;
const CONCURRENCY = 10;

test('passive metrics: a refusal rate moving from 2% to 10% over 500 calls is flagged; an unchanged window is not', async (t) => {
  // The sidecar warms up during the baseline period: its first calls are several times slower than
  // later ones. On loopback that is a millisecond, below the latency floor, so it is not an alert.
  const fake = await startFakeUpstream({ recordBodies: false });
  const rule: BehaviourRule = { match: 'customer asks', pass: 0.98, good: 'Here is what I found about your order: it ships on Monday.', bad: "I'm sorry, but I can't help with that." };
  const behaviour = createFakeBehaviour({ seed: 3, aliases: { 'gpt-4o': 'snap' }, models: { snap: { rules: [rule] } } });
  fake.setHandler(behaviour.handler);
  const pactFile = tempFile('p.pact.yaml', pactYaml());
  const policyFile = join(dirname(pactFile), 'policy.yaml');
  writeFileSync(policyFile, policyFor(fake.url, `evals: { pact: p.pact.yaml, every: 0, onModelChange: false, passive: { windowCalls: ${WINDOW}, baselineCalls: ${WINDOW} } }\n`, 'drift-agent'));
  const warden = await startWarden(policyFile);
  t.after(async () => {
    await warden.shutdown();
    await fake.close();
  });
  const agent = new OpenAI({ apiKey: 'unused', baseURL: `${warden.trafficUrl}/v1`, maxRetries: 0 });
  let n = 0;
  let refusals = 0;
  // A bounded number of calls, CONCURRENCY at a time; returns the refusals the agent saw.
  async function calls(count: number): Promise<number> {
    const before = refusals;
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        next++;
        const r = await agent.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `The customer asks about order ${++n}` }] });
        if (r.choices[0].message.content!.startsWith("I'm sorry")) refusals++;
      }
    }));
    return refusals - before;
  }
  const live = warden.ctx.services.pacts!.live;
  const baseline = await calls(WINDOW);
  const same = await calls(WINDOW);
  // Windows are compared just off the response path.
  const comparison = async (window: number) => {
    while (live.last?.window !== window) await new Promise((r) => setTimeout(r, 10));
    return live.last;
  };
  const unchanged = await comparison(1);
  t.diagnostic(`baseline period: ${baseline}/${WINDOW} refusals; unchanged window: ${same}/${WINDOW}; flagged: ${unchanged.flagged.map((m) => m.metric).join(', ') || 'nothing'}`);
  assert.deepEqual(unchanged.flagged.map((m) => m.metric), []);
  const refusalRow = unchanged.metrics.find((m) => m.metric === 'refusal_rate')!;
  assert.equal(refusalRow.nBaseline, WINDOW);

  rule.pass = 0.9; // the same model now refuses one request in ten
  const shifted = await calls(WINDOW);
  const second = await comparison(2);
  const refusal = second.metrics.find((m) => m.metric === 'refusal_rate')!;
  t.diagnostic(`shifted window: ${shifted}/${WINDOW} refusals; refusal_rate ${refusal.baseline} → ${refusal.current}, p=${refusal.p?.toExponential(2)}; flagged: ${second.flagged.map((m) => m.metric).join(', ')}`);
  assert.deepEqual(second.flagged.map((m) => m.metric), ['refusal_rate']);
  assert.ok(refusal.interval![0] > refusal.baseline, 'the window\'s Wilson interval sits above the baseline rate');
  // The alert is in the history, the metrics, the audit log's drift events and /status.
  const history = warden.ctx.services.pacts!.deps.store.history('drift-agent', { kinds: ['passive_alert'] });
  assert.equal(history.length, 1);
  const metrics = await (await fetch(`${warden.adminUrl}/metrics`)).text();
  assert.match(metrics, /warden_passive_alerts_total\{metric="refusal_rate"\} 1/);
  const status = await (await fetch(`${warden.adminUrl}/status`)).json() as { state: string; reasons: string[] };
  assert.equal(status.state, 'yellow');
  assert.match(status.reasons.join('\n'), /live traffic shifted from its baseline period: .*refus/i);
});
