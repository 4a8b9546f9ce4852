// What agent-to-agent calls share across policy reloads: the identity key, the replay cache (a reload
// must not forget which tokens were used), the open delegations, and the connection pool to peers.
// The identity key is loaded (or generated into the data directory) only once a policy has an agents
// section: a sidecar whose policies never mention other agents writes no identity-key.pem, and an
// unwritable data directory does not stop it.
import { Agent } from 'undici';
import type { Policy } from '../../policies/types.ts';
import { ConfigError } from '../errors.ts';
import { Delegations } from './delegations.ts';
import { loadIdentityKey, type IdentityKey } from './identity-key.ts';
import { ReplayCache } from './replay-cache.ts';

export interface AgentServices {
  /** The identity key; loaded on first use (prepare() does it when a policy is built). Throws ConfigError when it cannot be. */
  readonly key: IdentityKey;
  readonly replay: ReplayCache;
  readonly delegations: Delegations;
  /** To peers' sidecars and to this agent's own endpoint; each call brings its own total timeout. */
  readonly dispatcher: Agent;
  /** Loads the identity key when `policy` has an agents section; a ConfigError stops a start and rejects a reload. */
  prepare(policy: Policy): void;
  close(): Promise<void>;
}

/** The agent services for a sidecar whose data directory is `dataDir`; the key waits until a policy needs it. */
export function createAgentServices(dataDir: string, env: NodeJS.ProcessEnv = process.env): AgentServices {
  let key: IdentityKey | undefined;
  const loadKey = (): IdentityKey => {
    if (key) return key;
    try {
      return (key = loadIdentityKey(dataDir, env));
    } catch (err) {
      throw new ConfigError(`cannot load the agent identity key: ${(err as Error).message} (WARDEN_IDENTITY_KEY, WARDEN_IDENTITY_KEY_FILE, or a writable WARDEN_DATA_DIR)`, { cause: err });
    }
  };
  // Agents answer slowly and stream quietly; the per-call timeout is the only clock on them.
  const dispatcher = new Agent({ connect: { timeout: 5_000 }, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000, connections: 64 });
  return {
    get key() {
      return loadKey();
    },
    replay: new ReplayCache(),
    delegations: new Delegations(),
    dispatcher,
    prepare(policy) {
      if (policy.agents) loadKey();
    },
    close: () => dispatcher.close(),
  };
}
