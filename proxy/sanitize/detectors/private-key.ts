// Private key blocks: PEM and OpenSSH (-----BEGIN [RSA |EC |DSA |OPENSSH |ENCRYPTED ]PRIVATE KEY-----)
// and PGP (… PRIVATE KEY BLOCK-----), up to the matching END line, with real key material between
// (not a documentation stub). Literal \n escapes count as line breaks, so keys inside JSON strings and
// .env values are found too. A block is held back whole until its END line decides it.
import { chain, define, literal } from '../detector.ts';

const BODY_MAX = 12_000;
// Base64, blank space and header lines (Proc-Type: 4,ENCRYPTED); never five dashes, so a body ends at
// the next marker and a stray BEGIN is decided there, not 12,000 characters later.
const BODY = String.raw`(?:[A-Za-z0-9+/=\s:,.()]|-(?!----)|\\[nr])`;
// A body still arriving may end in the first character of an escape.
const BODY_PREFIX = String.raw`(?:[A-Za-z0-9+/=\s:,.()]|-(?!----)|\\[nr]?)`;

// After the header line: the body, then the END line, for as far as they have arrived.
const REST = chain(literal('-----'), `${BODY_PREFIX}{0,${BODY_MAX}}(?:${chain(literal('-----END'), String.raw`[A-Z0-9 \-]{0,60}`)})?`);

export const privateKey = define({
  name: 'private_key',
  label: 'PRIVATE_KEY',
  pattern: String.raw`(?<!-)-----BEGIN ((?:[A-Z0-9]{1,10} ){0,3})PRIVATE KEY( BLOCK)?-----${BODY}{0,${BODY_MAX}}?-----END \1PRIVATE KEY\2-----`,
  partial: `(?<!-)${chain(literal('-----BEGIN '), `[A-Z0-9 ]{0,33}(?:${chain(literal('PRIVATE KEY'), `(?:${chain(literal(' BLOCK'), REST)}|${REST})`)})?`)}`,
  accept(m) {
    const body = m.slice(m.indexOf('-----', 5) + 5, m.lastIndexOf('-----END'));
    const material = body.replace(/\\[nr]/g, '').replace(/^[A-Za-z-]+:.*$/gm, '').replace(/[^A-Za-z0-9+/]/g, '');
    return material.length >= 40 ? m.length : 0;
  },
  mask: () => '<PRIVATE_KEY>',
});
