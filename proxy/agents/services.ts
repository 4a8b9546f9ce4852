// What agent-to-agent calls share across policy reloads: the identity key, the replay cache (a reload
// must not forget which tokens were used), the open delegations, and the connection pool to peers.
import { Agent } from 'undici';
import { ConfigError } from '../errors.ts';
import { Delegations } from './delegations.ts';
import { loadIdentityKey, type IdentityKey } from './identity-key.ts';
import { ReplayCache } from './replay-cache.ts';

export interface AgentServices {
  readonly key: IdentityKey;
  readonly replay: ReplayCache;
  readonly delegations: Delegations;
  /** To peers' sidecars and to this agent's own endpoint; each call brings its own total timeout. */
  readonly dispatcher: Agent;
  close(): Promise<void>;
}

/** Loads (or creates) the identity key in `dataDir`; a bad key is a ConfigError (exit 2). */
export function createAgentServices(dataDir: string, env: NodeJS.ProcessEnv = process.env): AgentServices {
  let key: IdentityKey;
  try {
    key = loadIdentityKey(dataDir, env);
  } catch (err) {
    throw new ConfigError(`cannot load the agent identity key: ${(err as Error).message} (WARDEN_IDENTITY_KEY, WARDEN_IDENTITY_KEY_FILE, or a writable WARDEN_DATA_DIR)`, { cause: err });
  }
  // Agents answer slowly and stream quietly; the per-call timeout is the only clock on them.
  const dispatcher = new Agent({ connect: { timeout: 5_000 }, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000, connections: 64 });
  return {
    key,
    replay: new ReplayCache(),
    delegations: new Delegations(),
    dispatcher,
    close: () => dispatcher.close(),
  };
}
