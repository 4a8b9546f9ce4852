// Behavioural pacts on the admin listener: GET /evals (the pact, the baseline, the last evaluation, the
// open drift, pins, the live watch and the trust score), GET /evals/history, and the operator's
// actions as POSTs: run, baseline, accept, rollback, remediate. `warden eval` speaks to these routes.
// Reads are open to whoever reaches the admin listener; actions change what model the agent gets, so
// they need the admin token like escalation decisions (401 without it, 403 when the sidecar has none).
import { adminErrorBody } from './escalation-routes.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HistoryKind } from '../../evals/store.ts';
import { EvalActionError, InvalidRequestError, WardenError } from '../errors.ts';
import { parseJson, readBody } from '../http/body.ts';
import type { Metrics } from '../metrics.ts';
import { accept, remediate, rollback, type ActionInput } from '../evals/operator-actions.ts';
import type { PactService } from '../evals/pact-service.ts';
import { summarizeDrift, summarizeRun } from '../evals/summaries.ts';
import { trustScore } from '../evals/trust-score.ts';

type Send = (res: ServerResponse, code: number, body: unknown) => void;
type Admit = (req: IncomingMessage, res: ServerResponse) => void;

const MAX_ACTION_BYTES = 64 * 1024;
const KINDS = new Set<HistoryKind>(['baseline_certified', 'evaluation', 'evaluation_failed', 'drift', 'model_change', 'passive_alert', 'accept', 'rollback', 'remediate']);

/** The behavioural part of /status: reasons to be yellow, and whether one makes the sidecar red. */
export function evalsHealth(service: PactService | undefined): { reasons: string[]; red: boolean } {
  const reasons: string[] = [];
  if (!service?.pact || !service.policy?.evals) return { reasons, red: false };
  const rule = service.policy.rules.model_drift;
  const drift = service.openDrift;
  let red = false;
  if (drift) {
    const moved = drift.capabilities.filter((c) => c.state === 'drift')
      .map((c) => `${c.name} ${(c.baselineValue * 100).toFixed(1)}% → ${(c.candidateValue * 100).toFixed(1)}%`);
    reasons.push(`behavioural drift confirmed at ${drift.at} (${moved.join(', ')}); accept, roll back or remediate (warden eval …)`);
    // A drift that breaks a threshold, or one the policy says needs a person, is red until answered.
    red = rule === 'escalate' || !drift.candidate.passed;
  }
  if (service.live.openAlert) reasons.push(`live traffic shifted from its baseline period: ${service.live.openAlert.flagged.map((m) => m.reason ?? m.metric).join('; ')}`);
  if (service.baselineProblem) reasons.push(`evals.baseline unreadable: ${service.baselineProblem}`);
  else if (!service.certifiedModel) reasons.push('no certified baseline for the pact: drift cannot be judged (warden eval baseline)');
  if (service.last?.error) reasons.push(`the last pact evaluation failed: ${service.last.error}`);
  return { reasons, red };
}

async function evalsView(service: PactService, metrics: Metrics): Promise<Record<string, unknown>> {
  const baseline = await service.baseline().catch(() => undefined);
  return {
    pact: service.pact && { file: service.pact.file, sha256: service.pact.sha256, agent: service.pact.agent, model: service.pact.model, capabilities: service.pact.capabilities.map((c) => c.name) },
    baseline: baseline && { id: baseline.id, certifiedAt: baseline.certifiedAt, model: baseline.model, mde: baseline.mde, ...summarizeRun(baseline.run) },
    last: service.last,
    lastReport: service.lastReport && summarizeDrift(service.lastReport),
    openDrift: service.openDrift && summarizeDrift(service.openDrift),
    pins: service.refreshPins(),
    live: service.live.status(),
    trust: await trustScore(metrics, service),
  };
}

async function actionInput(req: IncomingMessage): Promise<ActionInput & { unpin?: boolean }> {
  const raw = await readBody(req, MAX_ACTION_BYTES);
  const body = raw.length === 0 ? {} : parseJson(raw);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequestError('the body must be a JSON object: { by?, note?, unpin? }');
  const { by, note, unpin } = body as Record<string, unknown>;
  for (const [k, v] of Object.entries({ by, note })) if (v !== undefined && typeof v !== 'string') throw new InvalidRequestError(`${k} must be a string`);
  return { by: (by as string | undefined) || 'admin-api', note: note as string | undefined, unpin: unpin === true };
}

/** Answers /evals and /evals/{history,run,baseline,accept,rollback,remediate}. */
export async function evalRoute(service: PactService | undefined, metrics: Metrics, req: IncomingMessage, url: URL, res: ServerResponse, json: Send, admit: Admit): Promise<void> {
  const method = req.method ?? 'GET';
  const action = url.pathname.slice('/evals'.length).replace(/^\//, '');
  try {
    if (method === 'GET' && action === '') {
      if (!service?.pact) return json(res, 200, { enabled: false });
      return json(res, 200, { enabled: true, ...(await evalsView(service, metrics)) });
    }
    if (method === 'GET' && action === 'history') {
      if (!service?.policy) return json(res, 200, { history: [] });
      const kinds = url.searchParams.getAll('kind');
      const bad = kinds.find((k) => !KINDS.has(k as HistoryKind));
      if (bad) throw new InvalidRequestError(`kind must be one of ${[...KINDS].join(', ')} (got "${bad}")`);
      const limit = Number(url.searchParams.get('limit') ?? 100) || 100;
      return json(res, 200, { history: service.deps.store.history(service.policy.agent.id, { limit, kinds: kinds as HistoryKind[] }) });
    }
    if (method !== 'POST' || !['run', 'baseline', 'accept', 'rollback', 'remediate'].includes(action)) {
      return json(res, 404, { error: { message: `no admin route ${method} ${url.pathname}`, type: 'warden_not_found', code: 'WARDEN_ERR_ROUTE_NOT_FOUND' } });
    }
    // Before the body is read: an unauthenticated caller learns nothing more.
    admit(req, res);
    const input = await actionInput(req);
    if (!service?.pact) throw new EvalActionError('the policy has no evals section: there is no pact to act on');
    switch (action) {
      case 'run':
        await service.evaluate('operator');
        return json(res, 200, { last: service.last, report: service.lastReport && summarizeDrift(service.lastReport) });
      case 'baseline': {
        const { baseline, warnings } = await service.certify(input.by);
        return json(res, 200, { baseline: baseline.id, model: baseline.model, mde: baseline.mde, warnings, ...summarizeRun(baseline.run) });
      }
      case 'accept':
        return json(res, 200, await accept(service, input));
      case 'rollback':
        return json(res, 200, await rollback(service, input));
      default:
        return json(res, 200, await remediate(service, input));
    }
  } catch (err) {
    if (!(err instanceof WardenError)) throw err;
    return json(res, err.status, adminErrorBody(err));
  }
}
