// The notification a new escalation sends: one JSON POST to the policy's webhook, with what a person
// needs to find and decide it. Delivery is at least once (the outbox is retried until a 2xx), so the
// escalation id doubles as an idempotency key for receivers that care.
import { request } from 'undici';
import type { EscalationConfig } from '../../policies/types.ts';
import type { Escalation } from './store.ts';

// A receiver that takes longer than this is treated as down; the outbox tries again later.
const WEBHOOK_TIMEOUT_MS = 10_000;

/** The webhook's JSON body; `text` makes it readable as is by Slack-style incoming webhooks. */
export function webhookPayload(esc: Escalation): Record<string, unknown> {
  const what = esc.kind === 'tool_call' ? `wants to call ${esc.tool}` : `has a model answer for review (${esc.candidates?.length ?? 0} candidates)`;
  return {
    id: esc.id,
    kind: esc.kind,
    agent: esc.agent,
    session: esc.session,
    task: esc.task,
    tool: esc.tool,
    reason: esc.reason,
    created_at: new Date(esc.createdAt).toISOString(),
    deadline: new Date(esc.deadline).toISOString(),
    // Paths on the sidecar's admin listener (GET to show it, POST to decide).
    admin: { show: `/escalations/${esc.id}`, approve: `/escalations/${esc.id}/approve`, reject: `/escalations/${esc.id}/reject` },
    text: `[warden] Agent ${esc.agent} ${what}: ${esc.reason}. Decide before ${new Date(esc.deadline).toISOString()} with \`warden escalations approve ${esc.id}\` or \`warden escalations reject ${esc.id}\`.`,
  };
}

/** POSTs the notification; throws with a short reason unless the receiver answers 2xx. */
export async function postWebhook(cfg: EscalationConfig, esc: Escalation): Promise<void> {
  const body = JSON.stringify(webhookPayload(esc));
  const res = await request(cfg.webhook!, {
    method: 'POST',
    body,
    headers: { ...cfg.webhookHeaders, 'content-type': 'application/json', 'idempotency-key': esc.id, 'x-warden-escalation': esc.id },
    headersTimeout: WEBHOOK_TIMEOUT_MS,
    bodyTimeout: WEBHOOK_TIMEOUT_MS,
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}${text ? `: ${text.replace(/\s+/g, ' ').slice(0, 200)}` : ''}`);
}

/** Exponential backoff before attempt `attempts + 1`, capped. */
export function webhookBackoffMs(cfg: EscalationConfig, attempts: number): number {
  return Math.min(cfg.webhookRetry.capMs, cfg.webhookRetry.baseMs * 2 ** Math.max(0, attempts - 1));
}
