// Payment card numbers: 13 to 19 digits, plain or grouped by spaces or dashes (one kind of
// separator), with an issuer prefix whose lengths fit (Visa, Mastercard, Amex, Discover, JCB, Diners,
// UnionPay, Maestro) and a valid Luhn check digit. Order numbers and ids of the same shape fail the
// check nine times in ten and the issuer table most of the rest. A trailing group that breaks the
// number (an expiry, a CVV) is left out of the match.
import { define, start } from '../detector.ts';

const BRANDS: readonly [RegExp, readonly number[]][] = [
  [/^4/, [13, 16, 19]],
  [/^(?:5[1-5]|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))/, [16]],
  [/^3[47]/, [15]],
  [/^(?:6011|65|64[4-9]|622)/, [16, 17, 18, 19]],
  [/^35(?:2[89]|[3-8]\d)/, [16, 17, 18, 19]],
  [/^3(?:0[0-5]|[689])/, [14, 15, 16, 17, 18, 19]],
  [/^62/, [16, 17, 18, 19]],
  [/^(?:5[06-9]|6[37])/, [13, 14, 15, 16, 17, 18, 19]],
];

/** The Luhn (mod 10) check over a string of digits. */
export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function isCard(digits: string): boolean {
  if (/^(\d)\1+$/.test(digits) || !luhn(digits)) return false;
  return BRANDS.some(([prefix, lengths]) => prefix.test(digits) && lengths.includes(digits.length));
}

export const creditCard = define({
  name: 'credit_card',
  label: 'CARD',
  pattern: String.raw`${start('\\w.\\-')}\d(?:[ \-]?\d){12,18}(?![\w])`,
  partial: String.raw`${start('\\w.\\-')}\d[\d \-]{0,40}`,
  accept(m) {
    const seps = new Set(m.replace(/\d/g, ''));
    if (seps.size > 1) return 0;
    // Longest first: the whole candidate, then shorter ones that end where a group ends.
    for (let end = m.length; end > 0; end--) {
      if (end < m.length && /\d/.test(m[end])) continue;
      if (!/\d/.test(m[end - 1])) continue;
      const digits = m.slice(0, end).replace(/\D/g, '');
      if (digits.length < 13) break;
      if (isCard(digits)) return end;
    }
    return 0;
  },
  mask: (s) => `<CARD ****${s.replace(/\D/g, '').slice(-4)}>`,
});
