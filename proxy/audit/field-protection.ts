// Protecting record fields before they are hashed: AES-256-GCM encryption of named fields (a fresh
// 96-bit IV per field, AAD = log_id ‖ seq ‖ path, key ids so keys rotate) and masking (a fixed
// marker, or a keyed HMAC so equal values still correlate). The leaf hash covers the protected
// form, so anyone can verify the log without keys, and destroying a key shreds what it protected.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalize } from './canonical-json.ts';

export interface Keyring {
  /** The key new fields are encrypted with. */
  activeKid: string;
  keys: ReadonlyMap<string, Buffer>;
}

export interface MaskRule {
  path: string;
  as: 'redact' | 'hmac';
}

export interface ProtectionConfig {
  encrypt: readonly string[];
  mask: readonly MaskRule[];
  keyring?: { activeKid: string; keys: [string, string][] };
  hmacKey?: string;
}

export interface EncryptedField {
  $enc: 'aes-256-gcm';
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

/** Whether a value is a field this module sealed. */
export function isEncryptedField(value: unknown): boolean {
  return value !== null && typeof value === 'object' && (value as { $enc?: unknown }).$enc === 'aes-256-gcm';
}

/** A problem with keys or a field that does not decrypt; its message names the seq, path and key id. */
export class KeyError extends Error {}

/**
 * The keyring from WARDEN_AUDIT_KEYS ("kid:base64,kid:base64") or WARDEN_AUDIT_KEYS_FILE (a line
 * per key: "kid base64"); each key is 32 bytes. The first key, or WARDEN_AUDIT_KEY_ID, encrypts.
 */
export function loadKeyring(env: NodeJS.ProcessEnv = process.env): Keyring | undefined {
  const pairs: [string, string][] = [];
  for (const part of (env.WARDEN_AUDIT_KEYS ?? '').split(',').filter((p) => p.trim())) {
    const at = part.indexOf(':');
    pairs.push([part.slice(0, at).trim(), part.slice(at + 1).trim()]);
  }
  if (env.WARDEN_AUDIT_KEYS_FILE) {
    for (const line of readFileSync(env.WARDEN_AUDIT_KEYS_FILE, 'utf8').split('\n')) {
      const [kid, key] = line.trim().split(/\s+/);
      if (kid && key && !kid.startsWith('#')) pairs.push([kid, key]);
    }
  }
  if (pairs.length === 0) return undefined;
  const keys = new Map<string, Buffer>();
  for (const [kid, b64] of pairs) {
    const key = Buffer.from(b64, 'base64');
    if (!kid || key.length !== 32) throw new KeyError(`audit key "${kid}" must be 32 bytes in base64 (got ${key.length})`);
    keys.set(kid, key);
  }
  const activeKid = env.WARDEN_AUDIT_KEY_ID ?? pairs[0][0];
  if (!keys.has(activeKid)) throw new KeyError(`WARDEN_AUDIT_KEY_ID "${activeKid}" is not in the keyring`);
  return { activeKid, keys };
}

/** A policy's field path (`$.request.text`, `request.text`) as its segments. */
export function segments(path: string): string[] {
  return path.replace(/^\$\.?/, '').split('.').filter(Boolean);
}

/** Applies `fn` to the value at a dotted path (e.g. request.text), if present. */
function at(record: Record<string, unknown>, path: string, fn: (value: unknown) => unknown): void {
  const segs = segments(path);
  let node: Record<string, unknown> | undefined = record;
  for (const seg of segs.slice(0, -1)) {
    const next: unknown = node?.[seg];
    node = next !== null && typeof next === 'object' && !Array.isArray(next) ? (next as Record<string, unknown>) : undefined;
  }
  const last = segs[segs.length - 1];
  if (node && last !== undefined && node[last] !== undefined) node[last] = fn(node[last]);
}

function aad(logId: string, seq: number, path: string): Buffer {
  return Buffer.from(`${logId}\u0000${seq}\u0000${path}`);
}

/** Masks and encrypts the configured fields of a record about to be hashed (mutates it). */
export function protectRecord(record: Record<string, unknown>, config: ProtectionConfig, keyring: Keyring | undefined, hmacKey: Buffer | undefined): void {
  for (const rule of config.mask) {
    at(record, rule.path, (v) => (rule.as === 'hmac' && hmacKey
      ? `hmac-sha256:${createHmac('sha256', hmacKey).update(canonicalize(v)).digest('hex')}`
      : '[masked]'));
  }
  if (config.encrypt.length === 0 || !keyring) return;
  const key = keyring.keys.get(keyring.activeKid)!;
  for (const path of config.encrypt) {
    at(record, path, (v): EncryptedField => {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(String(record.log_id), Number(record.seq), path));
      const ct = Buffer.concat([cipher.update(canonicalize(v), 'utf8'), cipher.final()]);
      return { $enc: 'aes-256-gcm', kid: keyring.activeKid, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
    });
  }
}

/** A copy of a record with every encrypted field decrypted; throws KeyError naming what failed. */
export function decryptRecord(record: Record<string, unknown>, keyring: Keyring | undefined): Record<string, unknown> {
  const out = structuredClone(record);
  const walk = (node: unknown, path: string[]): unknown => {
    if (node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) return node.map((v, i) => walk(v, [...path, String(i)]));
    const obj = node as Record<string, unknown>;
    if (isEncryptedField(obj)) return open(obj as unknown as EncryptedField, path.join('.'));
    for (const k of Object.keys(obj)) obj[k] = walk(obj[k], [...path, k]);
    return obj;
  };
  const open = (f: EncryptedField, path: string): unknown => {
    const key = keyring?.keys.get(f.kid);
    if (!key) throw new KeyError(`seq ${record.seq}: ${path} is encrypted with key "${f.kid}", which is not in the keyring (retired or destroyed)`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(f.iv, 'base64'));
      decipher.setAAD(aad(String(record.log_id), Number(record.seq), path));
      decipher.setAuthTag(Buffer.from(f.tag, 'base64'));
      return JSON.parse(Buffer.concat([decipher.update(Buffer.from(f.ct, 'base64')), decipher.final()]).toString('utf8'));
    } catch {
      throw new KeyError(`seq ${record.seq}: ${path} does not decrypt with key "${f.kid}" (a wrong key, or the field was moved or altered)`);
    }
  };
  return walk(out, []) as Record<string, unknown>;
}
