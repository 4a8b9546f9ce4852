// The identity token one sidecar attaches to its agent's call to another agent (x-warden-identity),
// and its verification on the callee's side. The format is a compact JWS (RFC 7515) with EdDSA
// (RFC 8037), so any JOSE library can read one: base64url(header).base64url(claims).base64url(sig).
//
// Claims: iss (the calling agent), aud (the called agent), iat and exp (seconds), jti (random, for
// replay detection), scopes (what the caller may do for this call: its effective scopes), chain (the
// delegation chain, origin first, the issuer last, each hop with the scopes it held), and the request
// it was issued for (htm method, htp path after /agents/{aud}, bh SHA-256 of the body): a token taken
// off the wire cannot carry another request, and cannot carry the same one twice (jti).
//
// The callee's effective scopes are the intersection of its own, the token's, every hop's, and the
// ceiling its trust entry sets for the issuer: a delegation can only ever narrow.
import { createHash, randomBytes, sign, verify } from 'node:crypto';
import { AgentIdentityError } from '../errors.ts';
import type { IdentityKey } from './identity-key.ts';
import type { ReplayCache } from './replay-cache.ts';
import type { TrustedCaller } from './trust.ts';

export interface Hop {
  agent: string;
  /** The scopes this hop acted with (already narrowed by the hops before it). */
  scopes: string[];
}

export interface IdentityClaims {
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
  scopes: string[];
  chain: Hop[];
  htm: string;
  htp: string;
  bh: string;
}

/** The request a token vouches for. */
export interface RequestBinding {
  method: string;
  /** The path after /agents/{aud}, query included. */
  path: string;
  body: Buffer;
}

// Clocks of two tasks disagree a little; more than this is a token from the past or the future.
export const CLOCK_SKEW_MS = 5_000;
// A callee refuses longer-lived tokens whatever the caller's policy says: the replay cache has to
// remember every token for its whole life, so this bounds the cache and the window of a stolen one.
export const MAX_TOKEN_TTL_MS = 300_000;
// Deeper delegation is a loop or a design problem; refusing it bounds what a token can make a callee do.
export const MAX_CHAIN_HOPS = 8;
const MAX_TOKEN_CHARS = 8_192;
const MAX_SCOPES = 64;
const TYP = 'warden-identity+jwt';
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SCOPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** SHA-256 of a request body, base64url (the `bh` claim). */
export function bodyHash(body: Buffer): string {
  return createHash('sha256').update(body).digest('base64url');
}

export interface SignOptions {
  ttlMs: number;
  /** Milliseconds since the epoch; injectable so tests can issue tokens from the past. */
  now?: number;
  jti?: string;
}

/** Signs a token for one request to `aud`. */
export function signIdentity(key: IdentityKey, who: { iss: string; aud: string; scopes: readonly string[]; chain: readonly Hop[] }, request: RequestBinding, opts: SignOptions): string {
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const claims: IdentityClaims = {
    iss: who.iss, aud: who.aud, iat, exp: iat + Math.max(1, Math.ceil(opts.ttlMs / 1000)), jti: opts.jti ?? randomBytes(16).toString('base64url'),
    scopes: [...who.scopes], chain: who.chain.map((h) => ({ agent: h.agent, scopes: [...h.scopes] })),
    htm: request.method.toUpperCase(), htp: request.path, bh: bodyHash(request.body),
  };
  const input = `${b64({ alg: 'EdDSA', typ: TYP, kid: key.keyId })}.${b64(claims)}`;
  return `${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`;
}

export interface TokenCheck {
  token: string | undefined;
  /** The agent this sidecar serves: the audience a token must name, and the scopes it holds. */
  self: { id: string; scopes: readonly string[] };
  trust: ReadonlyMap<string, TrustedCaller>;
  /** The request as its head shows it: the body is checked later, by admitIdentity. */
  request: Omit<RequestBinding, 'body'>;
  now?: number;
}

export interface VerifyInput extends Omit<TokenCheck, 'request'> {
  request: RequestBinding;
  replay: ReplayCache;
}

/** A token whose signature, claims, time, audience, method and path hold; its body hash and jti are not yet checked. */
export interface CheckedToken {
  readonly claims: IdentityClaims;
  readonly keyId: string;
  readonly caller: TrustedCaller;
  readonly self: { id: string; scopes: readonly string[] };
}

export interface VerifiedIdentity {
  claims: IdentityClaims;
  keyId: string;
  /** What this agent may do for the caller: its own scopes narrowed by the token, the chain and the trust entry. */
  scopes: string[];
}

function parseSegment(text: string): Record<string, any> | undefined {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const isScopes = (v: unknown): v is string[] => Array.isArray(v) && v.length <= MAX_SCOPES && v.every((s) => typeof s === 'string' && SCOPE.test(s));

/** Why the claims are not a well-formed token, or undefined. */
function shapeProblem(c: Record<string, any>): string | undefined {
  if (typeof c.iss !== 'string' || !ID.test(c.iss) || typeof c.aud !== 'string') return 'iss or aud is missing or not an agent id';
  if (!Number.isInteger(c.iat) || !Number.isInteger(c.exp)) return 'iat and exp must be whole seconds';
  if (c.exp <= c.iat) return 'exp is not after iat';
  if ((c.exp - c.iat) * 1000 > MAX_TOKEN_TTL_MS) return `the token lives ${c.exp - c.iat} s; at most ${MAX_TOKEN_TTL_MS / 1000} s are accepted`;
  if (typeof c.jti !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(c.jti)) return 'jti must be 16 to 64 base64url characters';
  if (!isScopes(c.scopes)) return 'scopes must be a list of scope names';
  if (!Array.isArray(c.chain) || c.chain.length === 0 || c.chain.length > MAX_CHAIN_HOPS) return `chain must list 1 to ${MAX_CHAIN_HOPS} hops`;
  for (const h of c.chain) {
    if (!h || typeof h !== 'object' || typeof h.agent !== 'string' || !ID.test(h.agent) || !isScopes(h.scopes)) return 'each chain hop needs an agent id and its scopes';
  }
  if (c.chain[c.chain.length - 1].agent !== c.iss) return 'the last hop of the chain is not the issuer';
  if (typeof c.htm !== 'string' || typeof c.htp !== 'string' || typeof c.bh !== 'string') return 'htm, htp and bh (the request it is for) are required';
  return undefined;
}

/**
 * Checks everything about a token that the request's head is enough for; throws AgentIdentityError
 * with the reason. The signature covers the claims, the body hash among them, so a forged, expired,
 * misaddressed or untrusted token is refused before a byte of the body is read: a stranger cannot make
 * the sidecar buffer a body. Nothing unsigned is believed beyond picking the issuer's key.
 */
export function checkIdentityToken(input: TokenCheck): CheckedToken {
  const { token, self } = input;
  if (!token) throw new AgentIdentityError('unsigned', 'a call from another agent needs an x-warden-identity token from its sidecar');
  const parts = token.length <= MAX_TOKEN_CHARS ? token.split('.') : [];
  const header = parts.length === 3 ? parseSegment(parts[0]) : undefined;
  const claims = header ? parseSegment(parts[1]) : undefined;
  if (!header || !claims) throw new AgentIdentityError('malformed', 'x-warden-identity is not a compact JWS (header.claims.signature)');
  if (header.alg !== 'EdDSA' || header.typ !== TYP) throw new AgentIdentityError('malformed', `the token must be EdDSA with typ ${TYP} (got alg ${JSON.stringify(header.alg)})`);

  const caller = typeof claims.iss === 'string' ? input.trust.get(claims.iss) : undefined;
  if (!caller) throw new AgentIdentityError('untrusted', `agent ${JSON.stringify(claims.iss)} is not in this agent's agents.trust`);
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  const key = caller.keys.find((k) => k.keyId === header.kid);
  if (!key) throw new AgentIdentityError('untrusted', `the token is signed with key ${JSON.stringify(header.kid)}, which agents.trust does not hold for ${caller.agent}`);
  if (!verify(null, signed, key.key, sig)) throw new AgentIdentityError('forged', `the token's signature does not verify with ${caller.agent}'s key ${key.keyId}`);

  const problem = shapeProblem(claims);
  if (problem) throw new AgentIdentityError('malformed', `the token's claims are not valid: ${problem}`);
  const c = claims as IdentityClaims;
  if (c.aud !== self.id) throw new AgentIdentityError('audience', `the token is for agent ${JSON.stringify(c.aud)}, and this is ${self.id}`);
  const now = input.now ?? Date.now();
  expiryCheck(c, now);
  if (c.iat * 1000 - CLOCK_SKEW_MS > now) throw new AgentIdentityError('expired', `the token is issued in the future (${new Date(c.iat * 1000).toISOString()}); the clocks disagree by more than ${CLOCK_SKEW_MS / 1000} s`);
  const r = input.request;
  if (c.htm !== r.method.toUpperCase() || c.htp !== r.path) throw new AgentIdentityError('forged', 'the token was issued for a different request (method or path)');
  return { claims: c, keyId: key.keyId, caller, self };
}

function expiryCheck(c: IdentityClaims, now: number): void {
  if (c.exp * 1000 + CLOCK_SKEW_MS <= now) throw new AgentIdentityError('expired', `the token expired at ${new Date(c.exp * 1000).toISOString()}`);
}

/**
 * The rest, once the body is in: the body hash, then (last, so an invalid token never takes a slot)
 * the replay cache. The token must still be live: a body that arrives after it expired could
 * otherwise claim a slot the cache would already count as free.
 */
export function admitIdentity(checked: CheckedToken, body: Buffer, replay: ReplayCache, now = Date.now()): VerifiedIdentity {
  const c = checked.claims;
  if (c.bh !== bodyHash(body)) throw new AgentIdentityError('forged', 'the token was issued for a different request (body)');
  expiryCheck(c, now);
  const claim = replay.claim(`${c.iss}\n${c.jti}`, c.exp * 1000 + CLOCK_SKEW_MS, now);
  if (claim === 'replayed') throw new AgentIdentityError('replayed', `token ${c.jti} from ${c.iss} was already used`);
  if (claim === 'full') throw new AgentIdentityError('busy', 'too many live tokens to remember; try again shortly');
  return { claims: c, keyId: checked.keyId, scopes: effectiveScopes(checked.self.scopes, c, checked.caller.scopes) };
}

/** Verifies a token for the whole request it came with: checkIdentityToken, then admitIdentity. */
export function verifyIdentity(input: VerifyInput): VerifiedIdentity {
  const { body, ...head } = input.request;
  return admitIdentity(checkIdentityToken({ ...input, request: head }), body, input.replay, input.now);
}

/** Own scopes ∩ the token's ∩ every hop's ∩ the trust entry's ceiling, in the order the policy lists its own. */
export function effectiveScopes(own: readonly string[], c: Pick<IdentityClaims, 'scopes' | 'chain'>, ceiling?: readonly string[]): string[] {
  const sets = [c.scopes, ...c.chain.map((h) => h.scopes), ...(ceiling ? [ceiling] : [])];
  return own.filter((s) => sets.every((set) => set.includes(s)));
}
