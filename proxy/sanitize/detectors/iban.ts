// IBANs: a country code, two check digits and the country's BBAN length (the SWIFT registry's), plain
// or in groups of four, with the ISO 13616 mod-97 check. A grouped IBAN followed by more capitals is
// cut where its length is complete.
import { define, start } from '../detector.ts';

// Total IBAN length per country (ISO 13616 registry).
const LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23,
  GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32,
  LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19,
  SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 7064 mod 97-10 over an IBAN without spaces. */
export function ibanValid(iban: string): boolean {
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const c of moved) {
    const v = c >= 'A' ? c.charCodeAt(0) - 55 : c.charCodeAt(0) - 48;
    rest = (v > 9 ? rest * 100 + v : rest * 10 + v) % 97;
  }
  return rest === 1;
}

export const iban = define({
  name: 'iban',
  label: 'IBAN',
  pattern: String.raw`${start('\\w')}[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}(?![\w])`,
  partial: String.raw`${start('\\w')}[A-Z](?:[A-Z](?:\d(?:\d[A-Z0-9 ]{0,66})?)?)?`,
  accept(m) {
    const want = LENGTHS[m.slice(0, 2)];
    if (!want) return 0;
    let n = 0;
    for (let end = 1; end <= m.length; end++) {
      if (m[end - 1] !== ' ') n++;
      if (n === want) {
        if (end < m.length && m[end] !== ' ') return 0;
        return ibanValid(m.slice(0, end).replace(/ /g, '')) ? end : 0;
      }
    }
    return 0;
  },
  mask: (s) => {
    const compact = s.replace(/ /g, '');
    return `<IBAN ${compact.slice(0, 2)}****${compact.slice(-4)}>`;
  },
});
