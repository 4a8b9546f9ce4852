// MCP (Streamable HTTP) as a provider: Bearer auth to the server, and Warden's own errors as JSON-RPC
// error responses, which is the shape an MCP client reads. It has no model-call endpoints: the MCP
// route (proxy/tools/mcp-proxy.ts) handles every request to it.
import type { WardenError } from '../errors.ts';
import type { ProviderSpec } from './types.ts';

/** JSON-RPC's "server error" range is -32000..-32099; Warden's refusals use its first code. */
export const MCP_WARDEN_ERROR = -32000;

function errorJson(err: WardenError, id: unknown = null): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code: MCP_WARDEN_ERROR, message: err.message, data: { type: err.type, code: err.code } } });
}

export const mcpProvider: ProviderSpec = {
  name: 'mcp',
  auth: { header: 'authorization', scheme: 'Bearer' },
  credentialHeaders: ['authorization'],
  endpoints: [],
  errorBody: (err) => errorJson(err),
  streamErrorEvent: (err) => `event: message\ndata: ${errorJson(err)}\n\n`,
  quietStreams: true,
};
