// Ed25519 keys for signed checkpoints. The key comes from WARDEN_AUDIT_SIGNING_KEY (PEM) or
// WARDEN_AUDIT_SIGNING_KEY_FILE; otherwise one is generated on first start and kept beside the log
// (mode 0600), so checkpoints from before and after a restart verify against the same key.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { loadOrCreateEd25519Pem } from '../ed25519-pem.ts';
import { canonicalize } from './canonical-json.ts';

export interface Checkpoint {
  v: 1;
  log_id: string;
  /** Number of records the root covers (seq 1 … size). */
  size: number;
  /** RFC 6962 root over the first `size` leaves, hex. */
  root: string;
  ts: string;
  /** First 16 bytes of SHA-256 over the public key's SPKI DER, hex. */
  key_id: string;
  /** The public key, SPKI DER in base64, so a verifier needs no key distribution to check consistency. */
  public_key: string;
  /** Ed25519 over the canonical JSON of every other field, base64. */
  sig: string;
}

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKeyDer: Buffer;
  readonly keyId: string;
  /** Where it came from: env, file or generated (with the path). */
  readonly source: string;
}

/** key_id for a public key. */
export function keyIdOf(publicKeyDer: Buffer): string {
  return createHash('sha256').update(publicKeyDer).digest('hex').slice(0, 32);
}

function fromPem(pem: string, source: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${source}: the audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const publicKeyDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return { privateKey, publicKeyDer, keyId: keyIdOf(publicKeyDer), source };
}

/** The checkpoint signing key: from the environment, or the one kept in `dataDir` (created when absent). */
export function loadSigningKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): SigningKey {
  const { pem, source } = loadOrCreateEd25519Pem(dataDir, { env, pemEnv: 'WARDEN_AUDIT_SIGNING_KEY', fileEnv: 'WARDEN_AUDIT_SIGNING_KEY_FILE', fileName: 'audit-signing-key.pem' });
  return fromPem(pem, source);
}

/** Signs a checkpoint body. */
export function signCheckpoint(key: SigningKey, body: Omit<Checkpoint, 'v' | 'key_id' | 'public_key' | 'sig'>): Checkpoint {
  const unsigned = { v: 1 as const, ...body, key_id: key.keyId, public_key: key.publicKeyDer.toString('base64') };
  const sig = sign(null, Buffer.from(canonicalize(unsigned)), key.privateKey).toString('base64');
  return { ...unsigned, sig };
}

/** True when the signature is good, by the key the checkpoint names (or by `trusted`, when given). */
export function verifyCheckpoint(cp: Checkpoint, trusted?: Buffer): boolean {
  try {
    const der = trusted ?? Buffer.from(cp.public_key, 'base64');
    if (keyIdOf(der) !== cp.key_id) return false;
    const { sig, ...unsigned } = cp;
    const publicKey = createPublicKey({ key: der, format: 'der', type: 'spki' });
    return verify(null, Buffer.from(canonicalize(unsigned)), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}
