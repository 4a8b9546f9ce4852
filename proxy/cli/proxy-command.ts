// `warden proxy`: runs the sidecar until SIGTERM/SIGINT, then drains and exits 0.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { DEFAULT_CLIENT_TIMEOUTS } from '../http/client-guard.ts';
import { parseHostPort, startSidecar } from '../sidecar.ts';

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        policy: { type: 'string' },
        listen: { type: 'string' },
        'admin-listen': { type: 'string' },
        'inbound-listen': { type: 'string' },
        'shutdown-grace-ms': { type: 'string' },
        'client-header-timeout-ms': { type: 'string' },
        'client-body-timeout-ms': { type: 'string' },
        'no-watch': { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A positive whole number of milliseconds from a flag or env value, or the default when absent. */
function millis(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of milliseconds, got "${text}"`);
  return n;
}

/**
 * Writes an inline policy to a private temporary file, which the loader and its problems then name
 * (and a reload re-reads); `dispose` deletes it when the sidecar stops.
 */
function inlinePolicyFile(text: string): { file: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'warden-policy-'));
  const file = join(dir, 'inline-policy.yaml');
  writeFileSync(file, text, { mode: 0o600 });
  return { file, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts the sidecar from flags (or their WARDEN_* env equivalents) and serves until a stop signal. */
export async function proxyCommand(args: string[]): Promise<number> {
  const flags = parse(args);
  const env = process.env;
  // WARDEN_POLICY_INLINE (set by `warden deploy inject --policy`) outranks the image's WARDEN_POLICY.
  const inline = flags.policy === undefined && env.WARDEN_POLICY_INLINE ? inlinePolicyFile(env.WARDEN_POLICY_INLINE) : undefined;
  try {
    return await serve(flags, inline?.file ?? flags.policy ?? env.WARDEN_POLICY);
  } finally {
    inline?.dispose();
  }
}

async function serve(flags: ReturnType<typeof parse>, policyFile: string | undefined): Promise<number> {
  const env = process.env;
  if (!policyFile) throw new UsageError('proxy needs --policy FILE (or WARDEN_POLICY, or the policy text in WARDEN_POLICY_INLINE)');
  const grace = Number(flags['shutdown-grace-ms'] ?? env.WARDEN_SHUTDOWN_GRACE_MS ?? 25_000);
  if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--shutdown-grace-ms must be a number of milliseconds, got "${flags['shutdown-grace-ms']}"`);
  let listen, adminListen, inboundListen;
  try {
    listen = parseHostPort(flags.listen ?? env.WARDEN_LISTEN ?? '127.0.0.1:15100', '--listen');
    adminListen = parseHostPort(flags['admin-listen'] ?? env.WARDEN_ADMIN_LISTEN ?? '127.0.0.1:15101', '--admin-listen');
    // Off unless asked for: it is the one listener meant to face other tasks.
    const inbound = flags['inbound-listen'] ?? env.WARDEN_INBOUND_LISTEN;
    inboundListen = inbound ? parseHostPort(inbound, '--inbound-listen') : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const clientTimeouts = {
    headerMs: millis(flags['client-header-timeout-ms'] ?? env.WARDEN_CLIENT_HEADER_TIMEOUT_MS, DEFAULT_CLIENT_TIMEOUTS.headerMs, '--client-header-timeout-ms'),
    bodyMs: millis(flags['client-body-timeout-ms'] ?? env.WARDEN_CLIENT_BODY_TIMEOUT_MS, DEFAULT_CLIENT_TIMEOUTS.bodyMs, '--client-body-timeout-ms'),
  };
  // Listening for the stop signal from before the start, so that one sent while the sidecar starts
  // stops it gracefully once started (the log is written asynchronously: a default-action kill would
  // lose its last lines). A second signal during the drain exits at once, through process.exit, which
  // still flushes the log.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const stop = (signal: NodeJS.Signals) => () => {
      resolve(signal);
      process.once(signal, () => process.exit(signal === 'SIGTERM' ? 143 : 130));
    };
    process.once('SIGTERM', stop('SIGTERM'));
    process.once('SIGINT', stop('SIGINT'));
  });
  const sidecar = await startSidecar({ policyFile, listen, adminListen, shutdownGraceMs: grace, watchPolicy: !flags['no-watch'], clientTimeouts, inboundListen });
  const signal = await stopped;
  sidecar.ctx.log.info({ signal }, 'stop signal received');
  await sidecar.shutdown();
  return 0;
}
