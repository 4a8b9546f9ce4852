// The drift decision's false-alarm rate: a stable but noisy model (each trial passes with probability
// 0.85, before and after) must almost never be called drifted. 40 independent runs, each certifying
// its own baseline and then deciding on a fresh candidate run, with every look the pact allows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certifyBaseline } from '../../evals/certify.ts';
import { evaluateDrift } from '../../evals/evaluate.ts';
import { loadPactFile } from '../../evals/pact.ts';
import { createFakeBehaviour } from '../../proxy/demo/fake-behaviour.ts';
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { tempFile } from '../helpers/warden.ts';
import { pactYaml, snapshot } from './helpers.ts';

const RUNS = 40;
const NOISY = { returns: 0.85, orders: 0.85, scope: 0.85 };

test(`false alarms: ${RUNS} runs of a stable model that passes 85% of trials give at most 2 confirmed-drift events`, async (t) => {
  const fake = await startFakeUpstream({ recordBodies: false });
  t.after(() => fake.close());
  const pact = await loadPactFile(tempFile('noisy.pact.yaml', pactYaml({ cases: 8, trials: 3 })));
  let alarms = 0;
  const states: Record<string, number> = { no_drift: 0, drift: 0, inconclusive: 0 };
  for (let run = 0; run < RUNS; run++) {
    // A fresh seed per run: each run's baseline and candidate are new draws from the same behaviour.
    const behaviour = createFakeBehaviour({ seed: 1000 + run, aliases: { 'gpt-4o': 'snap' }, models: { snap: snapshot(NOISY) } });
    fake.setHandler(behaviour.handler);
    const opts = { target: `${fake.url}/v1` };
    const { baseline } = await certifyBaseline(pact, opts);
    const report = await evaluateDrift(pact, baseline, opts);
    for (const c of report.capabilities) states[c.state]++;
    if (report.state === 'drift') alarms++;
  }
  t.diagnostic(`confirmed-drift events: ${alarms} of ${RUNS} runs; capability states: ${JSON.stringify(states)}`);
  assert.ok(alarms <= 2, `${alarms} false alarms`);
  // The test has teeth only if the runs were real decisions: every capability was decided each run.
  assert.equal(states.no_drift + states.drift + states.inconclusive, RUNS * 3);
});
