// The callers this agent accepts calls from (agents.trust), their public keys parsed once per policy:
// at start, and on each reload, so a bad or unreadable key stops the sidecar from starting and makes
// a reload keep the last good policy, instead of refusing calls one at a time.
import { readFileSync } from 'node:fs';
import type { Policy } from '../../policies/types.ts';
import { ConfigError } from '../errors.ts';
import { parsePublicKey, parsePublicKeyFile, type PublicKey } from './identity-key.ts';

export interface TrustedCaller {
  readonly agent: string;
  /** Several while a caller rotates its key. */
  readonly keys: readonly PublicKey[];
  /** The most this caller may lend; absent: whatever its token carries (still cut to this agent's own). */
  readonly scopes?: readonly string[];
}

/** The trusted callers of a policy; throws ConfigError naming the entry whose key is unusable. */
export function buildTrust(policy: Policy): ReadonlyMap<string, TrustedCaller> {
  const out = new Map<string, TrustedCaller>();
  for (const t of Object.values(policy.agents?.trust ?? {})) {
    const keys: PublicKey[] = [];
    try {
      for (const text of t.publicKeys) keys.push(parsePublicKey(text));
      if (t.publicKeyFile) keys.push(...parsePublicKeyFile(readFileSync(t.publicKeyFile, 'utf8')));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ConfigError(`agents.trust.${t.agent}: unusable public key${t.publicKeyFile ? ` (publicKeyFile ${t.publicKeyFile})` : ''}: ${e.code ?? e.message}`, { cause: err });
    }
    if (keys.length === 0) throw new ConfigError(`agents.trust.${t.agent}: no public key (publicKeyFile ${t.publicKeyFile} holds none)`);
    out.set(t.agent, Object.freeze({ agent: t.agent, keys, scopes: t.scopes }));
  }
  return out;
}
