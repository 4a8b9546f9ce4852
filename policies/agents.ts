// The agents section (calls between agents, each through its own sidecar): defaults filled in, and the
// checks the schema cannot make (URLs that parse, one source of keys per trusted caller, inline keys
// that are Ed25519). Key files are read when the runtime is built, where they are mounted.
import { parsePublicKey } from '../proxy/agents/identity-key.ts';
import type { AgentsConfig } from './types.ts';

type Raw = Record<string, any>;

export interface AgentsProblem {
  path: (string | number)[];
  message: string;
}

export const DEFAULT_PEER_TIMEOUT_MS = 300_000;
export const DEFAULT_TOKEN_TTL_MS = 60_000;

/** The agents section as the runtime reads it; undefined when the policy has none. */
export function agentsConfig(raw: Raw | undefined): AgentsConfig | undefined {
  if (!raw) return undefined;
  return {
    peers: Object.fromEntries(Object.entries<Raw>(raw.peers ?? {}).map(([name, p]) => [name, {
      name, url: p.url, audience: p.audience ?? name, timeoutMs: p.timeoutMs ?? DEFAULT_PEER_TIMEOUT_MS,
    }])),
    trust: Object.fromEntries(Object.entries<Raw>(raw.trust ?? {}).map(([agent, t]) => [agent, {
      agent, publicKeys: t.publicKey === undefined ? [] : [t.publicKey].flat(), publicKeyFile: t.publicKeyFile, scopes: t.scopes,
    }])),
    inbound: raw.inbound && { url: raw.inbound.url, timeoutMs: raw.inbound.timeoutMs ?? DEFAULT_PEER_TIMEOUT_MS },
    tokenTtlMs: raw.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS,
  };
}

function urlProblem(value: unknown): string | undefined {
  try {
    const u = new URL(String(value));
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'is not an http(s) URL';
    if (u.search || u.hash) return 'must not have a query or fragment (paths are appended to it)';
    return undefined;
  } catch {
    return 'is not a valid URL';
  }
}

/** Problems in the agents section that the schema cannot see. */
export function agentsProblems(doc: Raw): AgentsProblem[] {
  const out: AgentsProblem[] = [];
  const a = doc.agents;
  if (!a) return out;
  for (const [name, p] of Object.entries<Raw>(a.peers ?? {})) {
    const bad = urlProblem(p.url);
    if (bad) out.push({ path: ['agents', 'peers', name, 'url'], message: `agents.peers.${name}.url ${bad} (got "${p.url}")` });
  }
  if (a.inbound) {
    const bad = urlProblem(a.inbound.url);
    if (bad) out.push({ path: ['agents', 'inbound', 'url'], message: `agents.inbound.url ${bad} (got "${a.inbound.url}")` });
  }
  for (const [agent, t] of Object.entries<Raw>(a.trust ?? {})) {
    if ((t.publicKey === undefined) === (t.publicKeyFile === undefined)) {
      out.push({ path: ['agents', 'trust', agent], message: `agents.trust.${agent}: set publicKey or publicKeyFile (one of them)` });
      continue;
    }
    for (const [i, text] of [t.publicKey ?? []].flat().entries()) {
      try {
        parsePublicKey(String(text));
      } catch (err) {
        const path = Array.isArray(t.publicKey) ? ['agents', 'trust', agent, 'publicKey', i] : ['agents', 'trust', agent, 'publicKey'];
        out.push({ path, message: `agents.trust.${agent}.publicKey is not an Ed25519 public key: ${(err as Error).message}` });
      }
    }
  }
  return out;
}
