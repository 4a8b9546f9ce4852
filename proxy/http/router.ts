// Maps a request path to an upstream and the path relative to the route's mount point.
// DESIGN.md: /v1/* → openai, /anthropic/* → anthropic, /upstreams/{name}/* → any declared upstream,
// /tools/{tool}/* → an HTTP tool, /mcp/{server} → an MCP server (an upstream with provider: mcp),
// /agents/{name}/* → another agent, through its sidecar.
import { InvalidRequestError } from '../errors.ts';

export interface RouteMatch {
  /** model: a model upstream's API; tool: an HTTP tool; mcp: an MCP server; agent: another agent (agents.peers). */
  kind: 'model' | 'tool' | 'mcp' | 'agent';
  /** Upstream name in the policy (the tool's name for /tools, the agent's for /agents). */
  upstream: string;
  /** Path after the mount prefix, query included: `/chat/completions?x=1`. */
  rest: string;
}

const MOUNTS: readonly { prefix: string; upstream: string }[] = [
  // The OpenAI SDK's base URL ends in /v1 and the upstream's baseUrl does too, so /v1 is stripped.
  { prefix: '/v1/', upstream: 'openai' },
  { prefix: '/anthropic/', upstream: 'anthropic' },
];

/** The route for a request target, or undefined when no route matches. */
export function matchRoute(url: string): RouteMatch | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  checkPath(path);
  for (const m of MOUNTS) {
    if (path.startsWith(m.prefix)) return { kind: 'model', upstream: m.upstream, rest: path.slice(m.prefix.length - 1) + query };
  }
  for (const [prefix, kind] of NAMED_MOUNTS) {
    if (!path.startsWith(prefix)) continue;
    const slash = path.indexOf('/', prefix.length);
    const name = path.slice(prefix.length, slash === -1 ? undefined : slash);
    if (name) return { kind, upstream: decodeURIComponent(name), rest: (slash === -1 ? '/' : path.slice(slash)) + query };
  }
  return undefined;
}

// Mounts whose first segment names the upstream or tool.
const NAMED_MOUNTS: readonly [string, RouteMatch['kind']][] = [['/upstreams/', 'model'], ['/tools/', 'tool'], ['/mcp/', 'mcp'], ['/agents/', 'agent']];

/**
 * Refuses dot segments (also percent-encoded) so a path cannot climb out of the upstream's base path,
 * and a fragment, which no client sends and an upstream may cut off, reading a path Warden did not.
 */
function checkPath(path: string): void {
  if (path.includes('#')) throw new InvalidRequestError('request path must not contain a fragment (#)');
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw new InvalidRequestError('request path has invalid percent-encoding');
  }
  if (/(^|\/)\.\.?(\/|$)/.test(decoded) || decoded.includes('\\')) {
    throw new InvalidRequestError('request path must not contain dot segments or backslashes');
  }
}
