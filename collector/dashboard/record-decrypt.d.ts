// Types for record-decrypt.js, which the browser runs as is (so it is plain JavaScript).

import type { EncryptedField } from '../../proxy/audit/field-protection.ts';
export type { EncryptedField };

/** "kid:base64[,kid:base64…]" → kid → base64 key. */
export function parseKeys(text: string): Map<string, string>;
/** log_id NUL seq NUL path, UTF-8: the AAD field-protection.ts binds each field to. */
export function fieldAad(logId: string, seq: number, path: string): Uint8Array;
export function openField(subtle: SubtleCrypto, keyB64: string, field: EncryptedField, aad: Uint8Array): Promise<unknown>;
/** The record with every field these keys open decrypted; the paths opened and those that failed. */
export function decryptFields(record: Record<string, unknown>, keys: Map<string, string>, subtle?: SubtleCrypto): Promise<{ record: Record<string, unknown>; opened: string[]; failed: string[] }>;
