// The adapter registry: provider differences live here as data, never as branches in stages.
import type { UpstreamKind } from '../../policies/types.ts';
import type { EndpointRoute, ProviderSpec } from './types.ts';
import { anthropicProvider } from './anthropic.ts';
import { mcpProvider } from './mcp.ts';
import { openaiProvider } from './openai.ts';

export const providers: Readonly<Record<UpstreamKind, ProviderSpec>> = Object.freeze({
  openai: openaiProvider,
  anthropic: anthropicProvider,
  mcp: mcpProvider,
});

/**
 * Every header any provider's SDK carries an agent's key in. All are stripped on every upstream: an
 * agent that sets the Anthropic SDK's key alongside the OpenAI one must not hand it to OpenAI.
 */
export const agentCredentialHeaders: readonly string[] = Object.freeze([...new Set(Object.values(providers).flatMap((p) => p.credentialHeaders))]);

/**
 * The model-call endpoint a request path lands on, if any (matched on the path's end, query excluded).
 * Matched on the path as a lenient server would read it, so that a spelling the upstream takes for
 * chat completions (`/v1/%63hat/completions`, `/chat%2Fcompletions`, `/Chat/Completions`, a trailing slash, `;params`) is
 * one to Warden too and cannot slip past the stages as a pass-through; the path itself goes on as sent.
 */
export function findEndpoint(provider: ProviderSpec, method: string, path: string): EndpointRoute | undefined {
  // Case too: some servers (Express) route without it.
  const read = leniently(path).toLowerCase();
  for (const e of provider.endpoints) if (e.method === method && read.endsWith(e.suffix)) return e;
  return undefined;
}

/** Percent-decoded, path parameters and empty segments dropped (`//`, a trailing `/`). */
function leniently(path: string): string {
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // the router refuses malformed percent-encoding before a path gets here
  }
  return '/' + decoded.split('/').map((segment) => segment.split(';')[0]).filter(Boolean).join('/');
}
