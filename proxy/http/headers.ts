// Header handling for a forward proxy, per RFC 9110 §7.6.1: hop-by-hop fields (and any the Connection
// field names) are not forwarded; credentials are swapped for the upstream's own.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> | undefined {
  const value = headers.connection;
  if (!value) return undefined;
  return new Set(String(value).split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

export interface UpstreamHeaderOptions {
  /** Credential headers to drop (the agent's own key) unless passthrough is on. */
  strip: readonly string[];
  /** Headers to set: the upstream credential and the policy's extra headers. */
  set: Readonly<Record<string, string>>;
  /** Ask for an unencoded body because Warden reads it. */
  identity: boolean;
}

/** Headers for the upstream request: end-to-end fields of the agent's request, minus Warden's own. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, opts: UpstreamHeaderOptions): Record<string, string | string[]> {
  const named = connectionTokens(incoming);
  const out: Record<string, string | string[]> = {};
  for (const key in incoming) {
    const value = incoming[key];
    if (value === undefined || HOP_BY_HOP.has(key) || named?.has(key)) continue;
    // host and content-length are the upstream connection's own; expect is answered by Warden.
    if (key === 'host' || key === 'content-length' || key === 'expect' || key.startsWith('x-warden-')) continue;
    if (opts.strip.includes(key)) continue;
    out[key] = value;
  }
  if (opts.identity) out['accept-encoding'] = 'identity';
  for (const key in opts.set) out[key] = opts.set[key];
  return out;
}

/** Headers for the agent's response: end-to-end fields of the upstream's response. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>, dropLength: boolean): OutgoingHttpHeaders {
  const named = upstream.connection ? new Set(String(upstream.connection).split(',').map((t) => t.trim().toLowerCase())) : undefined;
  const out: OutgoingHttpHeaders = {};
  for (const key in upstream) {
    const value = upstream[key];
    if (value === undefined || HOP_BY_HOP.has(key) || named?.has(key)) continue;
    if (dropLength && key === 'content-length') continue;
    // Warden's own headers say what this sidecar did; an upstream's (another sidecar's) would be misread as that.
    if (key.startsWith('x-warden-')) continue;
    out[key] = value;
  }
  return out;
}

/** The first value of a request header, if present and non-empty. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s ? s : undefined;
}
