// Comparing a token someone sent with the one Warden holds (the agent's token, the admin token), in
// constant time: both sides are SHA-256 digests, equal in length whatever was sent, so neither the
// time a comparison takes nor a length check tells a caller how close a guess came.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from './secret.ts';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** A check of sent values against the secret's current value; false while the secret has none. */
export function tokenMatcher(secret: Secret): (sent: string) => boolean {
  let expected: Buffer | undefined;
  let version = -1;
  return (sent) => {
    if (secret.value === undefined) return false;
    // The digest is cached per value: a rotation (a file change, a reload) bumps the version.
    if (secret.version !== version) {
      expected = digest(secret.value);
      version = secret.version;
    }
    return timingSafeEqual(digest(sent), expected!);
  };
}
