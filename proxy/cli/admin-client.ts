// The CLI's client of a sidecar's admin API (--admin, else WARDEN_ADMIN_URL, else the default
// listener), shared by `warden escalations` and `warden eval`: reads are open; actions send the admin
// token (--token, WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE). A refusal (4xx) is the command's
// exit 1; an unreachable sidecar, a missing or wrong token, or a fault in the sidecar is exit 2,
// since the command cannot run as set up.
import { request } from 'undici';
import { readSecret } from '../auth/secret.ts';
import { ConfigError, UsageError } from '../errors.ts';

export type Json = Record<string, any>;

/** The sidecar said no (409 nothing to act on or already decided, 400 bad input, 404): exit 1 with its message. */
export class Refused extends Error {}

// Reads and quick actions answer at once; certifying (baseline, accept) runs every look's trials
// through the sidecar, which against a real model can take many minutes.
const QUICK_MS = 30_000;
const CERTIFY_MS = 60 * 60_000;

export interface AdminClient {
  readonly origin: string;
  get(path: string): Promise<Json>;
  /** POSTs an action with the admin token; `long` for actions that run the pact. */
  post(path: string, body: Json, long?: boolean): Promise<Json>;
}

/** A client of the admin API at `base` (--admin, else WARDEN_ADMIN_URL, else the default listener). */
export function adminClient(base: string | undefined, tokenFlag: string | undefined, unreachableHint = ''): AdminClient {
  const text = base ?? (process.env.WARDEN_ADMIN_URL?.trim() || 'http://127.0.0.1:15101');
  let origin: URL;
  try {
    origin = new URL(text);
  } catch {
    throw new UsageError(`--admin must be the sidecar's admin URL, e.g. http://127.0.0.1:15101 (got "${text}")`);
  }
  if (origin.protocol !== 'http:' && origin.protocol !== 'https:') throw new UsageError(`--admin must be an http(s) URL (got "${text}")`);
  async function call(method: string, path: string, body: Json | undefined, timeoutMs: number): Promise<Json> {
    const headers: Record<string, string> = {};
    // Read the token only for actions: reads are open, and a bad token file should not block them.
    const token = method === 'POST' ? adminToken(tokenFlag) : undefined;
    if (token) headers.authorization = `Bearer ${token}`;
    if (body) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await request(new URL(path, origin), {
        method, headers, body: body && JSON.stringify(body), headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw new ConfigError(`cannot reach the sidecar's admin API at ${origin.origin} (${(err as { code?: string }).code ?? (err as Error).message}): is it running? Set --admin URL or WARDEN_ADMIN_URL${unreachableHint}`);
    }
    const raw = await res.body.text();
    let json: Json;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${origin.origin} did not answer like a Warden admin API (HTTP ${res.statusCode})`);
    }
    const message = `${json.error?.message ?? `HTTP ${res.statusCode}`}${json.error?.code ? ` (${json.error.code})` : ''}`;
    if (res.statusCode === 401 || res.statusCode === 403) {
      // Whatever the drift, the command cannot run as set up: say which credential is missing.
      const hint = token ? '' : '; no admin token was sent: pass --token T or set WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE';
      throw new ConfigError(`${message}${hint}`);
    }
    // A fault in the sidecar is not its answer to the action: the operator should look at its log.
    if (res.statusCode >= 500) throw new ConfigError(`the sidecar at ${origin.origin} failed on ${method} ${path}: ${message} (see its log)`);
    if (res.statusCode >= 400) throw new Refused(message);
    return json;
  }
  return {
    origin: origin.origin,
    get: (path) => call('GET', path, undefined, QUICK_MS),
    post: (path, body, long = false) => call('POST', path, body, long ? CERTIFY_MS : QUICK_MS),
  };
}

/** The admin token a decision sends: --token, WARDEN_ADMIN_TOKEN, or the file WARDEN_ADMIN_TOKEN_FILE names; none is the sidecar's to refuse. */
export function adminToken(flag: string | undefined): string | undefined {
  if (flag !== undefined) {
    if (!flag.trim()) throw new UsageError('--token is empty');
    return flag.trim();
  }
  if (process.env.WARDEN_ADMIN_TOKEN?.trim()) return process.env.WARDEN_ADMIN_TOKEN.trim();
  const file = process.env.WARDEN_ADMIN_TOKEN_FILE?.trim();
  if (!file) return undefined;
  const read = readSecret({ file }, 'WARDEN_ADMIN_TOKEN_FILE');
  if ('problem' in read) throw new ConfigError(read.problem);
  return read.value;
}
