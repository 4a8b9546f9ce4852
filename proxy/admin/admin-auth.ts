// The reviewer's credential for escalation decisions on the admin listener. The agent shares the
// task's localhost with the sidecar, so it can reach the admin port too: without a credential, an
// agent talked into it by a prompt could approve its own held refund. A decision carries
// `authorization: Bearer <admin token>`; the token comes from WARDEN_ADMIN_TOKEN_FILE (a mounted
// secret, watched like key files) or WARDEN_ADMIN_TOKEN, set on the sidecar's container and never the
// agent's. Without one, decisions are refused (fail closed): a person decides on the data volume
// with `warden escalations … --data-dir`, which the agent's container does not mount.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { AdminTokenRequiredError, AdminUnauthorizedError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { holdSecret, type SecretHolder } from '../auth/key-custody.ts';
import type { Secret } from '../auth/secret.ts';
import { tokenMatcher } from '../auth/token-match.ts';

export type AdminVerdict = 'ok' | 'unconfigured' | 'missing' | 'invalid';

export interface AdminAuth {
  /** Checks a decision's `authorization: Bearer` against the admin token. */
  check(headers: IncomingHttpHeaders): AdminVerdict;
  /** A token is in force (set, and read at least once). */
  readonly configured: boolean;
  /** Why decisions cannot be checked now (a file that cannot be read); names the source, never a value. */
  readonly problem: string | undefined;
  /** Why the token may be weak or stale; shown on /status. */
  readonly warnings: readonly string[];
}

// Below this a token can be guessed; it still works, and /status says so (as for the agent's token).
const MIN_TOKEN_CHARS = 16;

/** The admin token from the environment at start (the file, if both are set), or none. */
export function createAdminAuth(custody?: SecretHolder, env: NodeJS.ProcessEnv = process.env): AdminAuth {
  const file = env.WARDEN_ADMIN_TOKEN_FILE?.trim();
  const secret: Secret | undefined = file
    ? holdSecret(custody, { file }, 'WARDEN_ADMIN_TOKEN_FILE')
    : env.WARDEN_ADMIN_TOKEN?.trim() ? holdSecret(custody, { env: 'WARDEN_ADMIN_TOKEN' }, 'WARDEN_ADMIN_TOKEN') : undefined;
  const matches = secret && tokenMatcher(secret);
  const both = !!file && !!env.WARDEN_ADMIN_TOKEN?.trim();
  return {
    check(headers) {
      if (!secret || secret.value === undefined) return 'unconfigured';
      const m = /^Bearer[ \t]+(.+)$/i.exec(headers.authorization ?? '');
      if (!m) return 'missing';
      return matches!(m[1].trim()) ? 'ok' : 'invalid';
    },
    get configured() {
      return secret?.value !== undefined;
    },
    get problem() {
      return secret?.value === undefined ? secret?.problem : undefined;
    },
    get warnings() {
      if (!secret) return [];
      const out: string[] = [];
      if (secret.problem) out.push(`admin token: ${secret.problem}; escalation decisions over the admin API are refused until it can be read`);
      else if ((secret.value?.length ?? 0) < MIN_TOKEN_CHARS) out.push(`admin token: shorter than ${MIN_TOKEN_CHARS} characters, so it can be guessed`);
      if (both) out.push('admin token: both WARDEN_ADMIN_TOKEN_FILE and WARDEN_ADMIN_TOKEN are set; the file is used');
      return out;
    },
  };
}

/**
 * Admits a decision or throws what the caller gets: 403 when no admin token is configured, 401
 * (counted as reason "admin") when the request's is missing or wrong. Runs before the body is read.
 */
export function admitReviewer(auth: AdminAuth, headers: IncomingHttpHeaders, res: ServerResponse, metrics: Metrics): void {
  const verdict = auth.check(headers);
  if (verdict === 'ok') return;
  if (verdict === 'unconfigured') throw new AdminTokenRequiredError(auth.problem);
  metrics.authFailures.inc({ reason: 'admin' });
  res.setHeader('www-authenticate', 'Bearer realm="warden-admin"');
  throw new AdminUnauthorizedError(verdict);
}
