// Drift and passive alerts as one JSON POST to the policy's evals.webhook. Delivery is retried in the
// background with capped backoff; the event itself is already in the behavioural history and the
// audit log, so a receiver that stays down loses the notification, never the fact.
import type { Logger } from 'pino';
import type { Policy } from '../../policies/types.ts';
import type { DriftReport } from '../../evals/types.ts';
import { request } from 'undici';

const TIMEOUT_MS = 10_000;
const ATTEMPTS = 6;
const BASE_MS = 1_000;
const CAP_MS = 60_000;

async function post(url: string, headers: Readonly<Record<string, string>>, body: string): Promise<void> {
  const res = await request(url, {
    method: 'POST', body,
    headers: { ...headers, 'content-type': 'application/json' },
    headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS, signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  await res.body.dump();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
}

/** POSTs the alert; retries failures in the background (up to 6 attempts, 1 s doubling to 60 s). */
export function postAlert(url: string, headers: Readonly<Record<string, string>>, alert: Record<string, unknown>, log: Logger): void {
  const body = JSON.stringify(alert);
  const attempt = (n: number): void => {
    post(url, headers, body).catch((err) => {
      if (n >= ATTEMPTS) return log.error({ err: String(err), kind: alert.kind }, 'alert webhook failed; giving up (the event is in the behavioural history)');
      const wait = Math.min(CAP_MS, BASE_MS * 2 ** (n - 1));
      log.warn({ err: String(err), attempt: n, retryInMs: wait }, 'alert webhook failed; retrying');
      setTimeout(() => attempt(n + 1), wait).unref();
    });
  };
  attempt(1);
}

/** The webhook body for confirmed drift: what moved, the figures, the admin routes, and a Slack-style text line. */
export function driftAlert(policy: Policy, report: DriftReport): Record<string, unknown> {
  const moved = report.capabilities.filter((c) => c.state === 'drift')
    .map((c) => `${c.name} ${(c.baselineValue * 100).toFixed(0)}% → ${(c.candidateValue * 100).toFixed(0)}%`).join(', ');
  return {
    kind: 'drift', agent: policy.agent.id, at: report.at, baseline: report.baselineId, served: report.served,
    capabilities: report.capabilities.map(({ name, state, delta, interval, p }) => ({ name, state, delta, interval, p })),
    admin: { status: '/evals', accept: '/evals/accept', rollback: '/evals/rollback', remediate: '/evals/remediate' },
    text: `[warden] Agent ${policy.agent.id}: behaviour drifted on ${report.served.model ?? 'its model'} (${moved}). Review with \`warden eval status\`; then \`warden eval accept\`, \`rollback\` or \`remediate\`.`,
  };
}
