// `warden identity [--data-dir DIR] [--agent ID] [--json]`: the sidecar's agent identity public key,
// which the agents it calls put in their policy's agents.trust. The key is created when absent (as
// the sidecar would once its policy has an agents section), so trust can be set up before the caller
// ever runs, and before its policy names any other agent.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError } from '../errors.ts';
import { loadIdentityKey } from '../agents/identity-key.ts';

export async function identityCommand(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  let f;
  try {
    f = parseArgs({ args, options: { 'data-dir': { type: 'string' }, agent: { type: 'string' }, json: { type: 'boolean' } }, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const dataDir = resolve(f['data-dir'] ?? process.env.WARDEN_DATA_DIR ?? '.warden');
  let key;
  try {
    key = loadIdentityKey(dataDir);
  } catch (err) {
    throw new ConfigError(`cannot load the agent identity key: ${(err as Error).message}`, { cause: err });
  }
  if (f.json) {
    stdout.write(`${JSON.stringify({ publicKey: key.publicKey, keyId: key.keyId, source: key.source })}\n`);
    return 0;
  }
  const agent = f.agent ?? '<this agent\'s id>';
  stdout.write(`# agent identity key: ${key.source} (key id ${key.keyId})
# in the policy of each agent this one calls:
agents:
  trust:
    ${agent}: { publicKey: "${key.publicKey}" }
`);
  return 0;
}
