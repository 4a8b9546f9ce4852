// A sanitizer as compiled for one call: the detectors in match order, what happens to each class
// (mask, hash, allow, log, block: the policy's action, per recipient, tempered by the mode), and the
// key of the hash tokens. Rendering a match is here too, so whole texts and streams write alike.
import { createHmac } from 'node:crypto';
import type { Detector } from './detector.ts';

/** What a match of a class becomes: masked, hashed, left as is (allowed, or logged only), or refused. */
export type Treatment = 'mask' | 'hash' | 'allow' | 'log' | 'block';

export interface Engine {
  readonly detectors: readonly Detector[];
  treatment(detector: string): Treatment;
  /** HMAC-SHA-256 key of hash tokens. */
  readonly hashKey: Buffer;
}

export interface Finding {
  detector: string;
  treatment: Treatment;
}

/** The text that replaces a match: kept prefix, then the mask or hash token (the match itself when allowed). */
export function render(engine: Engine, d: Detector, match: string, treatment: Treatment, quote: boolean): string {
  if (treatment === 'allow' || treatment === 'log') return match;
  const keep = d.keep?.(match) ?? 0;
  const secret = match.slice(keep);
  const token = treatment === 'hash'
    ? `<${d.label}:${createHmac('sha256', engine.hashKey).update(secret).digest('hex').slice(0, 8)}>`
    : d.mask(secret);
  return match.slice(0, keep) + (quote ? `"${token}"` : token);
}
