// Decrypts a record's encrypted fields in the browser, with a key the user pastes: the collector
// never sees it (it stays in this tab's sessionStorage). Mirrors proxy/audit/field-protection.ts:
// AES-256-GCM, a base64 12-byte iv, ciphertext and 16-byte tag in base64, AAD = log_id NUL seq NUL
// path (the field's dotted path), the plaintext canonical JSON. Plain JS so the browser runs it as is.

const STORAGE_KEY = 'warden.auditKeys';

function bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** "kid:base64[,kid:base64…]" (as in WARDEN_AUDIT_KEYS) → Map of kid → base64 key. */
export function parseKeys(text) {
  const keys = new Map();
  for (const part of String(text).split(/[,\s]+/)) {
    const at = part.indexOf(':');
    if (at > 0) keys.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  return keys;
}

/** The additional authenticated data the sidecar bound the field to. */
export function fieldAad(logId, seq, path) {
  return new TextEncoder().encode(`${logId}\u0000${seq}\u0000${path}`);
}

/** Opens one { $enc, kid, iv, ct, tag } field; throws when the key is wrong or the field was moved. */
export async function openField(subtle, keyB64, field, aad) {
  const key = await subtle.importKey('raw', bytes(keyB64), { name: 'AES-GCM' }, false, ['decrypt']);
  const ct = bytes(field.ct);
  const tag = bytes(field.tag);
  const sealed = new Uint8Array(ct.length + tag.length);
  sealed.set(ct, 0);
  sealed.set(tag, ct.length);
  const plain = await subtle.decrypt({ name: 'AES-GCM', iv: bytes(field.iv), additionalData: aad, tagLength: 128 }, key, sealed);
  return JSON.parse(new TextDecoder().decode(plain));
}

/**
 * A copy of `record` with every field it can decrypt replaced by its plaintext; `opened` and
 * `failed` list the paths (failed ones say why and stay encrypted).
 */
export async function decryptFields(record, keys, subtle = globalThis.crypto.subtle) {
  const opened = [];
  const failed = [];
  const walk = async (node, path) => {
    if (node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) {
      const out = [];
      for (let i = 0; i < node.length; i++) out.push(await walk(node[i], [...path, String(i)]));
      return out;
    }
    const dotted = path.join('.');
    if (node.$enc === 'aes-256-gcm') {
      const key = keys.get(node.kid);
      if (!key) {
        failed.push(`${dotted}: no key "${node.kid}" given`);
        return node;
      }
      try {
        const value = await openField(subtle, key, node, fieldAad(String(record.log_id), Number(record.seq), dotted));
        opened.push(dotted);
        return value;
      } catch {
        failed.push(`${dotted}: does not decrypt with key "${node.kid}"`);
        return node;
      }
    }
    const out = {};
    for (const k of Object.keys(node)) out[k] = await walk(node[k], [...path, k]);
    return out;
  };
  return { record: await walk(record, []), opened, failed };
}

async function show(text) {
  const data = document.getElementById('record-data');
  const pre = document.getElementById('record-json');
  const status = document.getElementById('key-status');
  if (!data || !pre || !status) return;
  const record = JSON.parse(data.textContent);
  const result = await decryptFields(record, parseKeys(text));
  pre.textContent = JSON.stringify(result.record, null, 2);
  const lines = [];
  if (result.opened.length) lines.push(`Decrypted in this browser: ${result.opened.join(', ')}`);
  lines.push(...result.failed);
  status.textContent = lines.join('\n');
  status.className = result.failed.length ? 'error' : 'ok';
}

if (typeof document !== 'undefined') {
  const form = document.getElementById('key-form');
  const input = document.getElementById('key-input');
  const forget = document.getElementById('key-forget');
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved) void show(saved);
  form?.addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(STORAGE_KEY, input.value);
    input.value = '';
    void show(sessionStorage.getItem(STORAGE_KEY));
  });
  forget?.addEventListener('click', () => {
    sessionStorage.removeItem(STORAGE_KEY);
    const data = document.getElementById('record-data');
    const pre = document.getElementById('record-json');
    if (data && pre) pre.textContent = JSON.stringify(JSON.parse(data.textContent), null, 2);
    const status = document.getElementById('key-status');
    if (status) status.textContent = 'Key forgotten.';
  });
}
