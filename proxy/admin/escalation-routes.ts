// The escalation queue on the admin listener: list and show escalations, approve (optionally with
// edited arguments, or a candidate's index for a model answer) and reject them. `warden escalations`
// speaks to these routes. Errors are JSON with a stable code: 404 unknown id, 409 already decided,
// 400 an approval that cannot apply. Reads are open to whoever reaches the admin listener; a decision
// needs the admin token (401 without it or with a wrong one, 403 when the sidecar has none).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EscalationNotFoundError, InvalidRequestError, WardenError } from '../errors.ts';
import { parseJson, readBody } from '../http/body.ts';
import type { EscalationQueue } from '../escalation/queue.ts';
import { escalationJson, type EscalationState } from '../escalation/store.ts';

const STATES = new Set(['pending', 'approved', 'rejected', 'timed_out']);
const MAX_DECISION_BYTES = 1024 * 1024;

type Send = (res: ServerResponse, code: number, body: unknown) => void;
/** Throws (401, 403) unless the request carries the reviewer's credential. */
type Admit = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers /escalations and /escalations/{id}[/approve|/reject]. */
export async function escalationRoute(queue: EscalationQueue, req: IncomingMessage, url: URL, res: ServerResponse, json: Send, admitDecision: Admit): Promise<void> {
  const method = req.method ?? 'GET';
  const [, , rawId, action, ...extra] = url.pathname.split('/');
  try {
    if (!rawId && method === 'GET') {
      const state = url.searchParams.get('state') ?? undefined;
      if (state && !STATES.has(state)) throw new InvalidRequestError(`state must be one of ${[...STATES].join(', ')} (got "${state}")`);
      const limit = Math.max(1, Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 1000));
      return json(res, 200, { escalations: queue.list({ state: state as EscalationState | undefined, limit }).map(escalationJson) });
    }
    if (rawId && !action && method === 'GET') {
      const id = escalationId(rawId);
      const esc = queue.get(id);
      if (!esc) throw new EscalationNotFoundError(id);
      return json(res, 200, escalationJson(esc));
    }
    if (rawId && (action === 'approve' || action === 'reject') && extra.length === 0 && method === 'POST') {
      // Before the body is read or the id looked up: an unauthenticated caller learns nothing more.
      admitDecision(req, res);
      const id = escalationId(rawId);
      const body = await decisionBody(req);
      const text = (k: string) => (body[k] === undefined || body[k] === null ? undefined : String(body[k]));
      const esc = action === 'approve'
        ? queue.approve(id, { by: text('by'), note: text('note'), args: body.args, choice: choiceOf(body.choice) })
        : queue.reject(id, { by: text('by'), note: text('note') });
      return json(res, 200, escalationJson(esc));
    }
    return json(res, 404, adminErrorBody(new WardenError('WARDEN_ERR_ROUTE_NOT_FOUND', 404, 'warden_not_found',
      `no admin route ${method} ${url.pathname}: use GET /escalations[?state=S], GET /escalations/{id}, POST /escalations/{id}/approve or /reject`)));
  } catch (err) {
    if (err instanceof WardenError) return json(res, err.status, adminErrorBody(err));
    throw err;
  }
}

/** The id in the path, percent-decoded; malformed escapes (`%zz`) name no escalation (404, not a URIError's 500). */
function escalationId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new EscalationNotFoundError(raw);
  }
}

async function decisionBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, MAX_DECISION_BYTES);
  if (raw.length === 0) return {};
  const body = parseJson(raw);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequestError('the decision must be a JSON object: {"by", "note", "args", "choice"}');
  return body as Record<string, unknown>;
}

function choiceOf(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidRequestError(`choice must be a candidate's index (got ${JSON.stringify(v)})`);
  return n;
}

/** A typed error as the admin API's JSON error body (every admin route answers errors this way). */
export function adminErrorBody(err: WardenError): unknown {
  return { error: { message: err.message, type: err.type, code: err.code } };
}
