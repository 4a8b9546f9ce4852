// `warden eval accept|rollback|remediate`: an operator's answer to drift, sent to the sidecar's admin
// API (--admin, WARDEN_ADMIN_URL, default http://127.0.0.1:15101) with the admin token (--token,
// WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE), since each changes which model the agent gets or who
// is told. This file also holds the admin client `eval baseline --admin` and `eval status --admin`
// use. Exit codes: 0 done, 1 refused (no baseline, nothing to act on, a webhook that failed), 2 usage,
// an unreachable sidecar, or an admin token that is missing or wrong (the command cannot run as set up).
import { userInfo } from 'node:os';
import type { ParseArgsConfig } from 'node:util';
import { request } from 'undici';
import { ConfigError, UsageError } from '../errors.ts';
import { adminToken } from './escalations-command.ts';
import { parseEvalFlags, type Out } from './eval-command.ts';

type Json = Record<string, any>;

/** The flags of every subcommand that talks to a sidecar's admin API. */
export const ADMIN_FLAGS = {
  admin: { type: 'string' },
  token: { type: 'string' },
  by: { type: 'string' },
  note: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** The sidecar said no (409 nothing to act on, 400 bad input, 404): exit 1 with its message. */
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
export function adminClient(base: string | undefined, tokenFlag: string | undefined): AdminClient {
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
      throw new ConfigError(`cannot reach the sidecar's admin API at ${origin.origin} (${(err as { code?: string }).code ?? (err as Error).message}): is it running? Set --admin URL or WARDEN_ADMIN_URL`);
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

/** Who took an action, for the behavioural history: --by, else the login name. */
export function operatorName(flag: string | undefined): string {
  if (flag !== undefined) {
    if (!flag.trim()) throw new UsageError('--by is empty');
    return flag.trim();
  }
  try {
    return userInfo().username;
  } catch {
    return process.env.USER || 'cli';
  }
}

/** Runs `fn`, turning the sidecar's refusal into its message on stderr and exit 1. */
export async function refusalIsExit1(stderr: Out, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    stderr.write(`warden: the sidecar refused: ${err.message}\n`);
    return 1;
  }
}

type Action = 'accept' | 'rollback' | 'remediate';

function describe(action: Action, r: Json, stderr: Out): string {
  if (action === 'accept') {
    for (const w of r.warnings ?? []) stderr.write(`warden: warning: ${w}\n`);
    const unpinned = (r.unpinned ?? []) as string[];
    return `accepted: baseline ${r.baseline} is now the active baseline${unpinned.length ? ` (rollback pins removed: ${unpinned.join(', ')})` : ''}`;
  }
  if (action === 'rollback') {
    return `rolled back: ${r.alias} is pinned to ${r.snapshot}${r.previous ? ` (was ${r.previous})` : ''}; an evaluation is running to confirm it (warden eval status --admin URL)`;
  }
  return `remediation requested: the webhook answered HTTP ${r.status}`;
}

async function runAction(action: Action, args: string[], stdout: Out, stderr: Out): Promise<number> {
  const f = parseEvalFlags(action, args, { ...ADMIN_FLAGS, unpin: { type: 'boolean' } });
  if (f.unpin && action !== 'accept') throw new UsageError(`--unpin goes with eval accept (a ${action} keeps the pins as they are)`);
  const client = adminClient(f.admin, f.token);
  const body = { by: operatorName(f.by), ...(f.note !== undefined && { note: f.note }), ...(f.unpin && { unpin: true }) };
  return refusalIsExit1(stderr, async () => {
    const result = await client.post(`/evals/${action}`, body, action === 'accept');
    stdout.write(f.json ? `${JSON.stringify(result, null, 2)}\n` : `${describe(action, result, stderr)}\n`);
    return 0;
  });
}

// Function declarations, not consts: eval-command.ts imports these while this file imports it, and a
// declaration is bound before either module body runs.

/** `warden eval accept [--unpin]`: certifies the behaviour served now as the baseline (--unpin first drops rollback pins). */
export function evalAcceptCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  return runAction('accept', args, stdout, stderr);
}

/** `warden eval rollback`: pins the pact's model to the snapshot its baseline was certified on. */
export function evalRollbackCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  return runAction('rollback', args, stdout, stderr);
}

/** `warden eval remediate`: sends the last drift report to the policy's evals.remediate URL. */
export function evalRemediateCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  return runAction('remediate', args, stdout, stderr);
}
