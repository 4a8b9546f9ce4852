// Bearer tokens in an Authorization value or prose ("Bearer 8f2c…"): the scheme stays, the token goes.
// A token is 16+ URL-safe/base64 characters with a digit or mixed case and some entropy, which words
// and placeholders (YOUR_ACCESS_TOKEN) do not have.
import { chain, define, entropy, literal, placeholder, start } from '../detector.ts';

export const bearerToken = define({
  name: 'bearer_token',
  label: 'TOKEN',
  pattern: String.raw`${start('\\w')}[Bb][Ee][Aa][Rr][Ee][Rr]\s{1,3}[A-Za-z0-9._~+/\-]{16,2048}={0,3}(?![A-Za-z0-9._~+/=\-])`,
  partial: `${start('\\w')}${chain(literal('bearer', true), String.raw`\s{0,3}[A-Za-z0-9._~+/=\-]{0,2056}`)}`,
  accept(m) {
    const token = m.slice(m.search(/\s/)).trim();
    if (!/\d/.test(token) && !(/[a-z]/.test(token) && /[A-Z]/.test(token))) return 0;
    return entropy(token) >= 3 && !placeholder(token) ? m.length : 0;
  },
  keep: (m) => m.length - m.slice(m.search(/\s/)).trimStart().length,
  mask: () => '<TOKEN>',
});
