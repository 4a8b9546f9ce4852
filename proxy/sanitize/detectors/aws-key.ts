// AWS credentials: access key ids (AKIA…, ASIA… and the other IAM prefixes, 20 characters) and secret
// access keys (40 base64 characters). A secret key is recognised after its usual names
// (aws_secret_access_key = …, "secretAccessKey": "…"), which stay in the text, or standing alone when
// it looks like one: upper and lower case, digits, a / or +, and high entropy, which file paths, git
// SHAs and words do not have.
import { define, entropy, start } from '../detector.ts';

const PREFIXES = 'AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA';
const ACCESS = String.raw`(?:${PREFIXES})[A-Z0-9]{16}(?![\w])`;
const NAME = String.raw`(?:[Aa][Ww][Ss][_\-]?)?[Ss][Ee][Cc][Rr][Ee][Tt][_\-]?(?:[Aa][Cc][Cc][Ee][Ss][Ss][_\-]?)?[Kk][Ee][Yy]`;
const NAMED = String.raw`${NAME}["']?\s{0,3}[:=]{1,2}\s{0,3}["']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])`;
const BARE = String.raw`(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])`;

function looksSecret(s: string): boolean {
  return /[A-Z]/.test(s) && /[a-z]/.test(s) && /\d/.test(s) && /[/+]/.test(s) && !/\/\//.test(s) && entropy(s) >= 4.2;
}

export const awsKey = define({
  name: 'aws_key',
  label: 'AWS_KEY',
  pattern: `${start('\\w')}(?:${ACCESS}|${NAMED})|${start('')}${BARE}`,
  // The named form starts with a (aws_…) or s (secret…); all forms share the key alphabet.
  partial: String.raw`${start('A-Za-z0-9')}(?:[A-Za-z0-9/+]{1,41}|[AaSs][A-Za-z_\-]{0,23}["']?\s{0,3}(?:[:=]{1,2}\s{0,3}["']?[A-Za-z0-9/+]{0,41})?)`,
  accept(m) {
    if (m.length === 20) return /^(.)\1+$/.test(m.slice(4)) ? 0 : m.length;
    if (m.length === 40) return looksSecret(m) ? m.length : 0;
    return m.length;
  },
  keep: (m) => (m.length > 40 ? m.length - 40 : 0),
  mask: (s) => (s.length === 20 ? '<AWS_ACCESS_KEY>' : '<AWS_SECRET_KEY>'),
});
