// `warden proxy`: runs the sidecar until SIGTERM/SIGINT, then drains and exits 0.
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { parseHostPort, startSidecar } from '../sidecar.ts';

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        policy: { type: 'string' },
        listen: { type: 'string' },
        'admin-listen': { type: 'string' },
        'shutdown-grace-ms': { type: 'string' },
        'no-watch': { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Starts the sidecar from flags (or their WARDEN_* env equivalents) and serves until a stop signal. */
export async function proxyCommand(args: string[]): Promise<number> {
  const flags = parse(args);
  const env = process.env;
  const policyFile = flags.policy ?? env.WARDEN_POLICY;
  if (!policyFile) throw new UsageError('proxy needs --policy FILE (or WARDEN_POLICY)');
  const grace = Number(flags['shutdown-grace-ms'] ?? env.WARDEN_SHUTDOWN_GRACE_MS ?? 25_000);
  if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--shutdown-grace-ms must be a number of milliseconds, got "${flags['shutdown-grace-ms']}"`);
  let listen, adminListen;
  try {
    listen = parseHostPort(flags.listen ?? env.WARDEN_LISTEN ?? '127.0.0.1:15100', '--listen');
    adminListen = parseHostPort(flags['admin-listen'] ?? env.WARDEN_ADMIN_LISTEN ?? '127.0.0.1:15101', '--admin-listen');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const sidecar = await startSidecar({ policyFile, listen, adminListen, shutdownGraceMs: grace, watchPolicy: !flags['no-watch'] });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  sidecar.ctx.log.info({ signal }, 'stop signal received');
  await sidecar.shutdown();
  return 0;
}
