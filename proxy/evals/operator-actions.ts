// What an operator does about drift, from the admin API or `warden eval accept|rollback|remediate`:
// accept the new behaviour as the baseline, roll the model back to the snapshot the baseline was
// certified on, or hand the drift report to a remediation pipeline. Each action is in the behavioural
// history and the audit log, with who took it and why.
import { request } from 'undici';
import { EvalActionError } from '../errors.ts';
import type { PactService } from './pact-service.ts';
import { summarizeDrift } from './summaries.ts';

export interface ActionInput {
  /** Who decided (a name, or `warden` for the sidecar's own rules). */
  by: string;
  note?: string;
}

const REMEDIATE_TIMEOUT_MS = 30_000;

function agentOf(service: PactService): string {
  if (!service.policy?.evals || !service.pact) throw new EvalActionError('the policy has no evals section: there is no pact to act on');
  return service.policy.agent.id;
}

function audit(service: PactService, action: string, detail: Record<string, unknown>): void {
  service.deps.record?.({ event: 'eval_action', ts: new Date().toISOString(), action, ...detail });
}

/**
 * Pins the pact's model to the snapshot its baseline was certified on, above the policy's pin: the
 * model-pinning stage sends that snapshot from the next call on. Then evaluates again, to show it.
 */
export async function rollback(service: PactService, input: ActionInput): Promise<{ alias: string; snapshot: string; previous?: string }> {
  const agent = agentOf(service);
  const baseline = await service.baseline();
  if (!baseline) throw new EvalActionError('there is no certified baseline to roll back to: run `warden eval baseline` first');
  const snapshot = baseline.model.pin ?? baseline.model.served;
  if (!snapshot) throw new EvalActionError(`baseline ${baseline.id} does not record the model it was served by, so there is no snapshot to pin`);
  const alias = baseline.model.asked;
  const previous = service.snapshotFor(alias) ?? service.policy!.models[alias]?.pin;
  // Pinned there already and still drifting: another rollback and evaluation would only loop
  // (the sidecar's own rule reacting to its own evaluation); a person has to look.
  if (previous === snapshot && input.by === 'warden') return { alias, snapshot, previous };
  service.deps.store.setPin(agent, alias, snapshot, `rollback by ${input.by}${input.note ? `: ${input.note}` : ''}`);
  service.refreshPins();
  const detail = { by: input.by, note: input.note, alias, snapshot, previous, baseline: baseline.id, drift: service.openDrift && summarizeDrift(service.openDrift) };
  service.deps.store.addHistory(agent, 'rollback', detail);
  audit(service, 'rollback', detail);
  service.openDrift = undefined;
  void service.evaluate('rollback');
  return { alias, snapshot, previous };
}

/**
 * Accepts the behaviour as served now: certifies a new baseline from it (every look's trials), and
 * makes the live-traffic monitor's last window its new normal. `unpin` first drops the operator's
 * rollback pins, to move forward to the model the policy names.
 */
export async function accept(service: PactService, input: ActionInput & { unpin?: boolean }): Promise<{ baseline: string; warnings: string[]; unpinned: string[] }> {
  const agent = agentOf(service);
  const unpinned: string[] = [];
  if (input.unpin) {
    for (const pin of service.deps.store.pins(agent)) if (service.deps.store.clearPin(agent, pin.alias)) unpinned.push(pin.alias);
    service.refreshPins();
  }
  const previous = service.openDrift;
  const { baseline, warnings } = await service.certify(input.by);
  service.live?.rebaseline();
  const detail = { by: input.by, note: input.note, baseline: baseline.id, model: baseline.model, unpinned, drift: previous && summarizeDrift(previous) };
  service.deps.store.addHistory(agent, 'accept', detail);
  audit(service, 'accept', detail);
  return { baseline: baseline.id, warnings, unpinned };
}

/** POSTs the last drift report to the policy's evals.remediate URL, once, and reports its answer. */
export async function remediate(service: PactService, input: ActionInput): Promise<{ status: number }> {
  const agent = agentOf(service);
  const url = service.policy!.evals!.remediate;
  if (!url) throw new EvalActionError('the policy names no remediation URL (evals.remediate)');
  const report = service.openDrift ?? service.lastReport;
  if (!report) throw new EvalActionError('there is no drift report yet: nothing has been evaluated against a baseline');
  const body = JSON.stringify({ kind: 'remediate', agent, by: input.by, note: input.note, drift: summarizeDrift(report) });
  let status = 0;
  try {
    const res = await request(url, {
      method: 'POST', body,
      headers: { ...service.policy!.evals!.webhookHeaders, 'content-type': 'application/json' },
      headersTimeout: REMEDIATE_TIMEOUT_MS, bodyTimeout: REMEDIATE_TIMEOUT_MS, signal: AbortSignal.timeout(REMEDIATE_TIMEOUT_MS),
    });
    await res.body.dump();
    status = res.statusCode;
  } finally {
    const detail = { by: input.by, note: input.note, url, status, baseline: report.baselineId };
    service.deps.store.addHistory(agent, 'remediate', detail);
    audit(service, 'remediate', detail);
  }
  if (status < 200 || status >= 300) throw new EvalActionError(`the remediation webhook answered HTTP ${status}`);
  return { status };
}
