// Shared by the drift tests: a pact of three capabilities written for the behaviour fake, a profile
// whose snapshots pass each capability with set probabilities, and a sidecar whose policy runs it.
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { createFakeBehaviour, type BehaviourModel, type FakeBehaviour } from '../../proxy/demo/fake-behaviour.ts';
import { policyFor, tempFile } from '../helpers/warden.ts';
import { dirname, join } from 'node:path';
import { writeFileSync } from 'node:fs';

export const CAPABILITIES = ['returns', 'orders', 'scope'] as const;
export type Rates = Record<(typeof CAPABILITIES)[number], number>;

/** A pact of three capabilities × `cases` cases, each case a distinct question the fake answers GOOD or BAD. */
export function pactYaml(opts: { cases?: number; trials?: number; agent?: string; looks?: number } = {}): string {
  const { cases = 10, trials = 5, agent = 'drift-agent', looks = 3 } = opts;
  const caps = CAPABILITIES.map((cap) => `  ${cap}:
    threshold: 0.6
    trials: ${trials}
    cases:
${Array.from({ length: cases }, (_, i) => `      - id: ${cap}-${i + 1}
        messages: [{ role: user, content: "${cap} question number ${i + 1}" }]
        expect: [{ contains: GOOD }]`).join('\n')}`).join('\n');
  return `apiVersion: warden/v1
kind: Pact
agent: ${agent}
model: gpt-4o
looks: ${looks}
concurrency: 8
capabilities:
${caps}
`;
}

/** A snapshot that answers each capability's questions well with the given probabilities. */
export function snapshot(rates: Rates, fingerprint?: string): BehaviourModel {
  return {
    fingerprint,
    rules: CAPABILITIES.map((cap) => ({ match: `${cap} question`, pass: rates[cap], good: `GOOD answer about ${cap}`, bad: `a muddled answer about ${cap}` })),
    otherwise: 'GOOD day',
  };
}

export interface DriftRig {
  fake: FakeUpstream;
  behaviour: FakeBehaviour;
  pactFile: string;
  policyFile: string;
  close(): Promise<void>;
}

/** Starts the behaviour fake (gpt-4o served as `old`, `new` available) and writes pact and policy files. */
export async function driftRig(opts: { old: Rates; new: Rates; seed?: number; evals?: string; pact?: string; extra?: string }): Promise<DriftRig> {
  const fake = await startFakeUpstream();
  const behaviour = createFakeBehaviour({
    seed: opts.seed ?? 7,
    aliases: { 'gpt-4o': 'snap-old' },
    models: { 'snap-old': snapshot(opts.old, 'fp_old'), 'snap-new': snapshot(opts.new, 'fp_new') },
  });
  fake.setHandler(behaviour.handler);
  const pactFile = tempFile('drift.pact.yaml', opts.pact ?? pactYaml());
  const policyFile = join(dirname(pactFile), 'policy.yaml');
  writeFileSync(policyFile, policyFor(fake.url, `evals: { pact: drift.pact.yaml, ${opts.evals ?? 'every: 0, onModelChange: false'} }\n${opts.extra ?? ''}`, 'drift-agent'));
  return { fake, behaviour, pactFile, policyFile, close: () => fake.close() };
}

/** A JSON request to the sidecar's admin listener. */
export async function admin(url: string, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}
