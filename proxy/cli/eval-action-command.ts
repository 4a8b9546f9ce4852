// `warden eval accept|rollback|remediate`: an operator's answer to drift, sent to the sidecar's admin
// API (--admin, WARDEN_ADMIN_URL, default http://127.0.0.1:15101) with the admin token (--token,
// WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE), since each changes which model the agent gets or who
// is told (the client is admin-client.ts). Exit codes: 0 done, 1 refused (no baseline, nothing to act on, a webhook that failed), 2 usage,
// an unreachable sidecar, or an admin token that is missing or wrong (the command cannot run as set up).
import { userInfo } from 'node:os';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.ts';
import { adminClient, Refused, type Json } from './admin-client.ts';
import { parseEvalFlags, type Out } from './eval-command.ts';

/** The flags of every subcommand that talks to a sidecar's admin API. */
export const ADMIN_FLAGS = {
  admin: { type: 'string' },
  token: { type: 'string' },
  by: { type: 'string' },
  note: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

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
