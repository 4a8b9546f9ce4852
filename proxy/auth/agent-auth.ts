// The agent authenticates to Warden with a local token when the policy asks (auth.tokenEnv or
// auth.tokenFile). The agent's SDK already sends an "API key" on every request, and the key it sends
// to Warden is the token: OpenAI SDKs put it in `authorization: Bearer`, Anthropic's in `x-api-key`,
// Azure's in `api-key`; clients that must keep those for the upstream (passthroughAuth) send
// `x-warden-token`. The token is Warden's, never the provider's: once checked, the header that
// carried it is removed from the request, so no stage, record or upstream sees it.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AgentAuthConfig } from '../../policies/types.ts';
import { AgentUnauthorizedError, ConfigError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { holdSecret, type SecretHolder } from './key-custody.ts';
import type { Secret } from './secret.ts';
import { tokenMatcher } from './token-match.ts';

/** Why a request was refused; the label values of warden_auth_failures_total this file produces. */
export type AuthFailure = 'missing' | 'invalid';

export interface AgentAuth {
  /** Checks the request's token and, when it is right, removes the header that carried it. */
  check(headers: IncomingHttpHeaders): 'ok' | AuthFailure;
  /** Why the token may be stale or weak; shown on /status. */
  readonly warnings: readonly string[];
  /** The current token, for the sidecar's own pact evaluations, which call it as the agent does. */
  token(): string | undefined;
}

// The headers an SDK sends its API key in, in the order they are looked at.
const KEY_HEADERS = ['x-api-key', 'api-key'] as const;
const DEDICATED_HEADER = 'x-warden-token';
// Below this a token can be guessed; it still works, and /status says so.
const MIN_TOKEN_CHARS = 16;

/** The token candidates a request carries, with the header each came from. */
function presented(headers: IncomingHttpHeaders): [string, string][] {
  const own = headers[DEDICATED_HEADER];
  // A dedicated header is the agent saying which value is Warden's: the others are left alone.
  if (own !== undefined) return [[DEDICATED_HEADER, String(own)]];
  const out: [string, string][] = [];
  const authz = headers.authorization;
  if (authz) {
    const m = /^Bearer[ \t]+(.+)$/i.exec(authz);
    out.push(['authorization', m ? m[1].trim() : authz]);
  }
  for (const name of KEY_HEADERS) {
    const v = headers[name];
    if (v !== undefined) out.push([name, String(v)]);
  }
  return out;
}

/** The token check for a policy's auth section; throws ConfigError when no token can be read. */
export function createAgentAuth(config: AgentAuthConfig, custody?: SecretHolder): AgentAuth {
  const secret: Secret = config.tokenFile
    ? holdSecret(custody, { file: config.tokenFile }, 'auth.tokenFile')
    : holdSecret(custody, { env: config.tokenEnv }, 'auth.tokenEnv');
  // Failing open would let any local process through; failing every call would hide why.
  if (secret.value === undefined) throw new ConfigError(`the policy asks agents for a token, but ${secret.problem}; warden does not run without it`);
  const matches = tokenMatcher(secret);
  return {
    check(headers) {
      const candidates = presented(headers);
      if (candidates.length === 0) return 'missing';
      // Constant time over SHA-256 digests: the same for every wrong token, whatever its length.
      let ok = false;
      for (const [name, value] of candidates) {
        if (!matches(value)) continue;
        ok = true;
        delete headers[name];
      }
      return ok ? 'ok' : 'invalid';
    },
    token: () => secret.value,
    get warnings() {
      const out: string[] = [];
      if (secret.problem) out.push(`agent token: ${secret.problem}`);
      if ((secret.value?.length ?? 0) < MIN_TOKEN_CHARS) out.push(`agent token: shorter than ${MIN_TOKEN_CHARS} characters, so it can be guessed`);
      return out;
    },
  };
}

/**
 * Admits the request or throws the 401 the agent gets, counted by reason. Runs before routing, so an
 * unauthenticated caller costs one hash and learns nothing about which routes exist.
 */
export function admitAgent(auth: AgentAuth | undefined, headers: IncomingHttpHeaders, res: ServerResponse, metrics: Metrics): void {
  if (!auth) return;
  const verdict = auth.check(headers);
  if (verdict === 'ok') return;
  metrics.authFailures.inc({ reason: verdict });
  res.setHeader('www-authenticate', 'Bearer realm="warden"');
  throw new AgentUnauthorizedError(verdict);
}
