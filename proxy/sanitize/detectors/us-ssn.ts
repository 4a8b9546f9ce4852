// US Social Security numbers, written AAA-GG-SSSS (or with spaces), or as nine bare digits right after
// "SSN" (the label stays), under the SSA's rules for numbers never issued: area 000, 666 or 900-999,
// group 00, serial 0000, and the numbers made public by accident or in advertising (078-05-1120,
// 219-09-9999, 123-45-6789). Nine bare digits without the label are not an SSN: they are ids.
import { chain, define, literal, start } from '../detector.ts';

const NEVER_ISSUED = new Set(['078051120', '219099999', '123456789']);
const LABEL = String.raw`[Ss][Ss][Nn]\s{0,2}[:#=]?\s{0,3}`;

export const usSsn = define({
  name: 'us_ssn',
  label: 'SSN',
  pattern: String.raw`${start('\\w\\-')}(?:\d{3}([ \-])\d{2}\1\d{4}|${LABEL}\d{9})(?![\w]|-\d)`,
  partial: String.raw`${start('\\w\\-')}(?:\d[\d \-]{0,12}|${chain(literal('ssn', true), String.raw`\s{0,2}[:#=]?\s{0,3}\d{0,9}`)})`,
  accept(m) {
    const d = m.replace(/\D/g, '');
    const area = d.slice(0, 3);
    if (area === '000' || area === '666' || area[0] === '9') return 0;
    if (d.slice(3, 5) === '00' || d.slice(5) === '0000' || NEVER_ISSUED.has(d)) return 0;
    return m.length;
  },
  keep: (m) => m.length - m.replace(/^\D+/, '').length,
  mask: () => '<SSN>',
});
