// One pooled keep-alive undici Agent per upstream, the upstream's credential, and the mapping of
// transport failures to Warden's typed errors (502 unreachable, 504 timeout).
import type { Readable } from 'node:stream';
import { Agent, errors as undiciErrors } from 'undici';
import type { UpstreamConfig } from '../../policies/types.ts';
import { holdSecret, type SecretHolder } from '../auth/key-custody.ts';
import type { Secret } from '../auth/secret.ts';
import { UpstreamTimeoutError, UpstreamUnreachableError, type WardenError } from '../errors.ts';
import { agentCredentialHeaders } from '../providers/index.ts';
import type { ProviderSpec } from '../providers/types.ts';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export interface UpstreamClient {
  readonly config: UpstreamConfig;
  readonly provider: ProviderSpec;
  /** Why the upstream may not work (e.g. its key env var is unset); shown on /status. */
  readonly warnings: readonly string[];
  /** Headers an agent's credential is stripped from (empty with passthroughAuth). */
  readonly stripHeaders: readonly string[];
  /** The credential and extra headers to send; read per request, so a rotated key applies to the next one. */
  readonly setHeaders: Readonly<Record<string, string>>;
  /** Upstream path for a path relative to the route mount (`/chat/completions?x=1`). */
  path(rest: string): string;
  send(opts: SendOptions): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface SendOptions {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer | Readable;
  signal: AbortSignal;
}

function credentialOf(config: UpstreamConfig, custody: SecretHolder | undefined): Secret | undefined {
  if (config.apiKeyFile) return holdSecret(custody, { file: config.apiKeyFile }, 'apiKeyFile');
  if (config.apiKeyEnv) return holdSecret(custody, { env: config.apiKeyEnv }, 'apiKeyEnv');
  return undefined;
}

/** Builds the client for one upstream; its credential is the custody's, swapped in place when it rotates. */
export function createUpstreamClient(config: UpstreamConfig, provider: ProviderSpec, custody?: SecretHolder): UpstreamClient {
  const base = new URL(config.baseUrl);
  const origin = base.origin;
  const basePath = base.pathname.replace(/\/+$/, '');
  const baseQuery = base.search.slice(1);
  const secret = credentialOf(config, custody);
  const auth = config.auth ?? provider.auth;
  // Rebuilt only when the key changes: every request reads it, and none is ever sent half-swapped.
  let setHeaders: Record<string, string> = {};
  let builtFor = -1;
  const currentHeaders = (): Record<string, string> => {
    const version = secret?.version ?? 0;
    if (version === builtFor) return setHeaders;
    const key = secret?.value;
    setHeaders = { ...config.headers };
    if (key) setHeaders[auth.header] = auth.scheme ? `${auth.scheme} ${key}` : key;
    builtFor = version;
    return setHeaders;
  };
  const agent = new Agent({
    connect: { timeout: config.timeouts.connectMs },
    headersTimeout: config.timeouts.firstTokenMs,
    bodyTimeout: provider.quietStreams ? 0 : config.timeouts.idleMs,
    keepAliveTimeout: 30_000,
    connections: 256,
  });

  return {
    config,
    provider,
    get warnings() {
      return secret?.problem ? [`upstream ${config.name}: ${secret.problem}`] : [];
    },
    stripHeaders: config.passthroughAuth ? [] : [...new Set([...agentCredentialHeaders, auth.header])],
    get setHeaders() {
      return currentHeaders();
    },
    path(rest) {
      if (!baseQuery) return basePath + rest;
      return basePath + rest + (rest.includes('?') ? '&' : '?') + baseQuery;
    },
    async send(opts) {
      try {
        const res = await agent.request({ origin, path: opts.path, method: opts.method as 'POST', headers: opts.headers, body: opts.body, signal: opts.signal });
        return { status: res.statusCode, headers: res.headers, body: res.body };
      } catch (err) {
        throw toWardenError(config, err, opts.signal);
      }
    },
    close: () => agent.close(),
  };
}

/** A 2xx status: an answer to relay through the stages rather than an error to pass through. */
export function isOk(status: number): boolean {
  return status >= 200 && status < 300;
}

/** An answer that says it is a server-sent event stream. */
export function isEventStream(headers: UpstreamResponse['headers']): boolean {
  return String(headers['content-type'] ?? '').startsWith('text/event-stream');
}

/** Maps a transport failure (or the total-timeout abort) to the error the agent sees. */
export function toWardenError(config: UpstreamConfig, err: unknown, signal?: AbortSignal): WardenError | unknown {
  const t = config.timeouts;
  if (signal?.aborted && signal.reason instanceof UpstreamTimeoutError) return signal.reason;
  if (signal?.aborted) return err;
  if (err instanceof undiciErrors.ConnectTimeoutError) return new UpstreamTimeoutError(config.name, 'connect', t.connectMs, { cause: err });
  if (err instanceof undiciErrors.HeadersTimeoutError) return new UpstreamTimeoutError(config.name, 'first token', t.firstTokenMs, { cause: err });
  if (err instanceof undiciErrors.BodyTimeoutError) return new UpstreamTimeoutError(config.name, 'idle between chunks', t.idleMs, { cause: err });
  return new UpstreamUnreachableError(config.name, { cause: err });
}
