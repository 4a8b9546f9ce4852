// Generators of valid secrets and PII, one per detector, for the streaming property test (as
// fast-check arbitraries) and the corpus script (from a seeded random source).
import fc from 'fast-check';
import { luhn } from '../../proxy/sanitize/detectors/credit-card.ts';

export type Pick = (n: number) => number;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const B64 = `${ALNUM}+/`;
const B64URL = `${ALNUM}-_`;
const UPPER_NUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function str(pick: Pick, alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[pick(alphabet.length)];
  return s;
}
function digits(pick: Pick, n: number): string {
  return str(pick, '0123456789', n);
}

/** Completes a card number with its Luhn check digit. */
export function withLuhn(body: string): string {
  for (let d = 0; d < 10; d++) if (luhn(body + d)) return body + d;
  throw new Error('unreachable');
}

/** An IBAN with valid check digits for a country and BBAN. */
export function makeIban(country: string, bban: string): string {
  const moved = `${bban}${country}00`.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let rest = 0;
  for (const c of moved) rest = (rest * 10 + Number(c)) % 97;
  return `${country}${String(98 - rest).padStart(2, '0')}${bban}`;
}

function group(s: string, size: number, sep: string): string {
  return s.match(new RegExp(`.{1,${size}}`, 'g'))!.join(sep);
}

const b64url = (s: string) => Buffer.from(s).toString('base64url');

export const SECRETS: Record<string, (pick: Pick) => string> = {
  email: (p) => `${str(p, 'abcdefghijklmnopqrstuvwxyz', 1 + p(6))}${['', '.', '_', '+'][p(4)]}${str(p, 'abcdefghij0123456789', 1 + p(5))}@${str(p, 'abcdefghijklmnopqrstuvwxyz', 2 + p(8))}.${['com', 'org', 'io', 'de', 'co.uk', 'example'][p(6)]}`,
  phone: (p) => {
    const area = `${2 + p(8)}${p(10)}${2 + p(8)}`;
    const exch = `${2 + p(8)}${digits(p, 2)}`;
    const line = digits(p, 4);
    return [`(${area}) ${exch}-${line}`, `${area}-${exch}-${line}`, `+1 ${area} ${exch} ${line}`, `+1${area}${exch}${line}`, `+44 20 ${digits(p, 4)} ${digits(p, 4)}`, `+49 30 ${digits(p, 8)}`][p(6)];
  },
  credit_card: (p) => {
    const [prefix, len] = [['4', 16], ['51', 16], ['37', 15], ['6011', 16], ['4', 19]][p(5)] as [string, number];
    const number = withLuhn(prefix + digits(p, len - prefix.length - 1));
    return [number, group(number, 4, ' '), group(number, 4, '-')][p(3)];
  },
  iban: (p) => {
    const [country, len] = [['DE', 22], ['GB', 22], ['FR', 27], ['NL', 18], ['NO', 15]][p(5)] as [string, number];
    const bban = country === 'GB' || country === 'NL' ? str(p, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 4) + digits(p, len - 8) : digits(p, len - 4);
    const iban = makeIban(country, bban);
    return p(2) ? group(iban, 4, ' ') : iban;
  },
  us_ssn: (p) => {
    const area = String(1 + p(665)).padStart(3, '0');
    return `${area}-${String(1 + p(98)).padStart(2, '0')}-${String(1 + p(9998)).padStart(4, '0')}`;
  },
  ip_address: (p) => (p(3) ? [0, 1, 2, 3].map(() => String(p(256))).join('.') : [0, 1, 2, 3, 4, 5, 6, 7].map(() => (1 + p(0xfffe)).toString(16)).join(':')),
  aws_key: (p) => (p(2) ? `AKIA${str(p, UPPER_NUM, 16)}` : `aws_secret_access_key=${str(p, B64, 18)}/A9z${str(p, B64, 18)}`),
  private_key: (p) => {
    const lines = Array.from({ length: 2 + p(4) }, () => str(p, B64, 64));
    const kind = ['RSA ', 'EC ', '', 'OPENSSH '][p(4)];
    return `-----BEGIN ${kind}PRIVATE KEY-----\n${lines.join('\n')}\n-----END ${kind}PRIVATE KEY-----`;
  },
  jwt: (p) => `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: digits(p, 6), name: str(p, 'abcdefgh', 5) }))}.${str(p, B64URL, 43)}`,
  bearer_token: (p) => `Bearer ${str(p, ALNUM, 8)}9aZ${str(p, `${ALNUM}._-`, 24)}`,
  api_key: (p) => [
    `sk-proj-${str(p, ALNUM, 8)}7Qx${str(p, ALNUM, 37)}`,
    `ghp_${str(p, ALNUM, 30)}1aB${str(p, ALNUM, 3)}`,
    `xoxb-${digits(p, 12)}-${digits(p, 13)}-${str(p, ALNUM, 21)}3bC`,
    `sk_live_${str(p, ALNUM, 21)}4dE`,
  ][p(4)],
};

export const DETECTOR_NAMES = Object.keys(SECRETS);

/** A fast-check arbitrary of one generated secret of a detector. */
export function secretOf(name: string): fc.Arbitrary<string> {
  return fc.array(fc.nat(), { minLength: 1, maxLength: 600 }).map((xs) => {
    let i = 0;
    return SECRETS[name]((n) => xs[i++ % xs.length] % n);
  });
}
