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

/** The model-call endpoint a request path lands on, if any (matched on the path's end, query excluded). */
export function findEndpoint(provider: ProviderSpec, method: string, path: string): EndpointRoute | undefined {
  for (const e of provider.endpoints) if (e.method === method && path.endsWith(e.suffix)) return e;
  return undefined;
}
