// An Ed25519 private key's PEM, for the keys a sidecar keeps across restarts (the audit log's
// checkpoint key, the agent identity key): from the environment, or kept in the data directory.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Ed25519PemSource {
  /** The variable holding the PEM itself. */
  readonly pemEnv: string;
  /** The variable naming a file that holds it (which must then exist). */
  readonly fileEnv: string;
  /** The file's name in the data directory when neither is set. */
  readonly fileName: string;
  readonly env: NodeJS.ProcessEnv;
}

export interface Ed25519Pem {
  readonly pem: string;
  /** Where it came from: the variable's name, or the file's path (with " (generated)" when just made). */
  readonly source: string;
  readonly generated: boolean;
}

/** The PEM from `pemEnv`, else the file `fileEnv` names, else `fileName` in `dataDir` (a new Ed25519 key, pkcs8, 0600, when absent). */
export function loadOrCreateEd25519Pem(dataDir: string, { pemEnv, fileEnv, fileName, env }: Ed25519PemSource): Ed25519Pem {
  if (env[pemEnv]) return { pem: env[pemEnv], source: pemEnv, generated: false };
  const file = env[fileEnv] ?? join(dataDir, fileName);
  try {
    return { pem: readFileSync(file, 'utf8'), source: file, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || env[fileEnv]) throw err;
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  mkdirSync(dirname(file), { recursive: true });
  try {
    // wx: two sidecars starting at once on one volume must not overwrite each other's key.
    writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { pem: readFileSync(file, 'utf8'), source: file, generated: false };
  }
  return { pem, source: `${file} (generated)`, generated: true };
}
