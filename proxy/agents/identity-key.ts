// The sidecar's identity key: Ed25519, signing the tokens it attaches to its agent's calls to other
// agents. From WARDEN_IDENTITY_KEY (PEM) or WARDEN_IDENTITY_KEY_FILE; otherwise generated into the
// data directory (identity-key.pem, mode 0600) the first time a policy with an agents section is
// loaded, or by `warden identity`, the way the audit log keeps its checkpoint key, so peers that trust
// its public key keep trusting it across restarts. It is a key of its own, not the audit key: a peer
// that trusts this agent's calls has no business vouching for its audit log, and either key can be
// rotated without the other.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { keyIdOf } from '../audit/signing.ts';
import { loadOrCreateEd25519Pem } from '../ed25519-pem.ts';

export interface IdentityKey {
  readonly privateKey: KeyObject;
  /** SPKI DER in base64: what a callee's `agents.trust.<id>.publicKey` holds. */
  readonly publicKey: string;
  /** First 16 bytes of SHA-256 over the SPKI DER, hex (the tokens' `kid`). */
  readonly keyId: string;
  /** Where it came from: env, file, or generated (with the path). */
  readonly source: string;
}

export const IDENTITY_KEY_FILE = 'identity-key.pem';

// An Ed25519 SubjectPublicKeyInfo is this 12-byte prefix and the 32-byte key.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function fromPem(pem: string, source: string): IdentityKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${source}: the identity key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return { privateKey, publicKey: der.toString('base64'), keyId: keyIdOf(der), source };
}

/** The identity key: from the environment, or the one kept in `dataDir` (created when absent). */
export function loadIdentityKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): IdentityKey {
  const { pem, source } = loadOrCreateEd25519Pem(dataDir, { env, pemEnv: 'WARDEN_IDENTITY_KEY', fileEnv: 'WARDEN_IDENTITY_KEY_FILE', fileName: IDENTITY_KEY_FILE });
  return fromPem(pem, source);
}

export interface PublicKey {
  readonly key: KeyObject;
  readonly keyId: string;
}

/**
 * A trusted caller's public key, as an operator pastes it: the base64 SPKI DER `warden identity`
 * prints, a bare 32-byte Ed25519 key in base64 (what most JOSE tooling shows), or PEM. Throws with
 * what was wrong; anything but Ed25519 is refused, so a token's algorithm can never be chosen for us.
 */
export function parsePublicKey(text: string): PublicKey {
  const trimmed = text.trim();
  let der: Buffer;
  if (trimmed.startsWith('-----BEGIN')) {
    der = createPublicKey(trimmed).export({ type: 'spki', format: 'der' });
  } else {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new Error('not base64 or PEM');
    const raw = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (raw.length === 32) der = Buffer.concat([ED25519_SPKI_PREFIX, raw]);
    else if (raw.length === ED25519_SPKI_PREFIX.length + 32) der = raw;
    else throw new Error(`${raw.length} bytes is neither an Ed25519 key (32) nor its SPKI encoding (44)`);
  }
  const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the key is ${key.asymmetricKeyType}, and only Ed25519 is accepted`);
  return { key, keyId: keyIdOf(key.export({ type: 'spki', format: 'der' })) };
}

/** Every key in a key file's text: PEM blocks, or one base64 key per line (blank lines and # comments skipped). */
export function parsePublicKeyFile(text: string): PublicKey[] {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g);
  if (pems) return pems.map(parsePublicKey);
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map(parsePublicKey);
}
