// `warden collector --store sqlite:PATH|postgres://…`: the central collector. Tokens come from --tokens FILE
// (lines "fleet token") or WARDEN_COLLECTOR_TOKENS ("fleet=token,fleet=token").
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createCollectorServer, DEFAULT_MAX_BODY_BYTES, parseMaxBodyBytes } from '../../collector/server.ts';
import { openSqliteStore } from '../../collector/sqlite-store.ts';
import type { CollectorStore } from '../../collector/store.ts';
import { UsageError } from '../errors.ts';
import { listenAt, parseHostPort } from '../sidecar.ts';

function tokensFrom(file: string | undefined, env: string | undefined): Map<string, string> {
  const pairs: [string, string][] = [];
  if (file) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [fleet, token] = line.trim().split(/\s+/);
      if (fleet && !fleet.startsWith('#') && token) pairs.push([token, fleet]);
    }
  }
  for (const part of (env ?? '').split(',').filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq > 0) pairs.push([part.slice(eq + 1).trim(), part.slice(0, eq).trim()]);
  }
  if (pairs.length === 0) throw new UsageError('the collector needs at least one token: --tokens FILE or WARDEN_COLLECTOR_TOKENS=fleet=token');
  return new Map(pairs);
}

async function openStore(spec: string): Promise<CollectorStore> {
  if (spec.startsWith('sqlite:')) return openSqliteStore(spec.slice('sqlite:'.length));
  if (spec.startsWith('postgres://') || spec.startsWith('postgresql://')) {
    // Loaded only when asked for: every other warden command shares this module graph.
    const { openPgStore } = await import('../../collector/pg-store.ts');
    return openPgStore(spec);
  }
  throw new UsageError(`--store must be sqlite:PATH or postgres://…, got "${spec}"`);
}

/** Runs the collector until SIGTERM/SIGINT. */
export async function collectorCommand(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({ args, options: { store: { type: 'string' }, listen: { type: 'string' }, tokens: { type: 'string' }, 'max-body-bytes': { type: 'string' } }, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const spec = flags.store ?? process.env.WARDEN_COLLECTOR_STORE;
  if (!spec) throw new UsageError('collector needs --store sqlite:PATH or postgres://… (or WARDEN_COLLECTOR_STORE)');
  let at;
  try {
    at = parseHostPort(flags.listen ?? process.env.WARDEN_COLLECTOR_LISTEN ?? '127.0.0.1:15200', '--listen');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const maxBody = flags['max-body-bytes'] ?? process.env.WARDEN_COLLECTOR_MAX_BODY_BYTES;
  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  try {
    if (maxBody !== undefined) maxBodyBytes = parseMaxBodyBytes(maxBody);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const tokens = tokensFrom(flags.tokens, process.env.WARDEN_COLLECTOR_TOKENS);
  const log = pino({ level: process.env.WARDEN_LOG_LEVEL ?? 'info', base: { svc: 'warden-collector' } });
  const store = await openStore(spec);
  const server = createCollectorServer({ store, tokens, log, maxBodyBytes });
  let url;
  try {
    url = await listenAt(server, at, '--listen');
  } catch (err) {
    await store.close();
    throw err;
  }
  log.info({ url, store: spec.split(':')[0], fleets: [...new Set(tokens.values())] }, 'collector listening');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  server.close();
  server.closeAllConnections();
  await store.close();
  return 0;
}
