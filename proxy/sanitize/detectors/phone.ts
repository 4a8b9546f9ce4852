// Phone numbers: E.164 and international (+ and a real country calling code, 8 to 15 digits, any
// grouping) and three national formats, grouped as people write them: North American (NANP: area
// and exchange codes 2-9, no N11 area), UK (0 and 10 digits in 3/4/5-digit groups) and French
// (0X XX XX XX XX). Bare digit runs are not phone numbers: they are order ids, amounts and times.
import { define, start } from '../detector.ts';

// ITU-T E.164 country calling codes (1 to 3 digits), as a prefix set.
const CODES = new Set([
  '1', '7', '20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45', '46', '47', '48', '49',
  '51', '52', '53', '54', '55', '56', '57', '58', '60', '61', '62', '63', '64', '65', '66', '81', '82', '84', '86',
  '90', '91', '92', '93', '94', '95', '98', '211', '212', '213', '216', '218', '220', '221', '222', '223', '224', '225',
  '226', '227', '228', '229', '230', '231', '232', '233', '234', '235', '236', '237', '238', '239', '240', '241', '242',
  '243', '244', '245', '246', '248', '249', '250', '251', '252', '253', '254', '255', '256', '257', '258', '260', '261',
  '262', '263', '264', '265', '266', '267', '268', '269', '290', '291', '297', '298', '299', '350', '351', '352', '353',
  '354', '355', '356', '357', '358', '359', '370', '371', '372', '373', '374', '375', '376', '377', '378', '380', '381',
  '382', '383', '385', '386', '387', '389', '420', '421', '423', '500', '501', '502', '503', '504', '505', '506', '507',
  '508', '509', '590', '591', '592', '593', '594', '595', '596', '597', '598', '599', '670', '672', '673', '674', '675',
  '676', '677', '678', '679', '680', '681', '682', '683', '685', '686', '687', '688', '689', '690', '691', '692', '850',
  '852', '853', '855', '856', '880', '886', '960', '961', '962', '963', '964', '965', '966', '967', '968', '970', '971',
  '972', '973', '974', '975', '976', '977', '992', '993', '994', '995', '996', '998',
]);

const SEP = '[ .\\-]';
const INTL = String.raw`\+[1-9]\d{0,3}(?:${SEP}?(?:\(\d{1,4}\)|\d{1,4})){1,6}`;
const NANP = String.raw`(?:1${SEP}?)?(?:\(\d{3}\)${SEP}?|\d{3}${SEP})\d{3}${SEP}\d{4}`;
const UK = String.raw`0\d{2,4}${SEP}\d{3,4}${SEP}?\d{3,4}`;
const FR = String.raw`0[1-9](?:${SEP}\d{2}){4}`;

function nanp(digits: string): boolean {
  const d = digits.length === 11 && digits[0] === '1' ? digits.slice(1) : digits;
  return d.length === 10 && /^[2-9]\d\d[2-9]\d{6}$/.test(d) && !/^[2-9]11/.test(d);
}

export const phone = define({
  name: 'phone',
  label: 'PHONE',
  pattern: String.raw`${start('\\w+')}(?:${INTL}|${NANP}|${FR}|${UK})(?![\w]|[.\-]\d)`,
  partial: String.raw`${start('\\w+')}[+(0-9][0-9 ().\-]{0,50}`,
  accept(m) {
    const digits = m.replace(/\D/g, '');
    if ((m.split('(').length) !== (m.split(')').length)) return 0;
    if (m.startsWith('+')) {
      if (digits.length < 8 || digits.length > 15) return 0;
      if (!CODES.has(digits.slice(0, 1)) && !CODES.has(digits.slice(0, 2)) && !CODES.has(digits.slice(0, 3))) return 0;
      if (digits[0] === '1' && !nanp(digits)) return 0;
      return m.length;
    }
    if (/^0[1-9](?:[ .\-]\d{2}){4}$/.test(m)) return m.length;
    if (m[0] === '0') return digits.length >= 10 && digits.length <= 11 && /^0[1-37-9]/.test(digits) ? m.length : 0;
    return nanp(digits) ? m.length : 0;
  },
  mask: () => '<PHONE>',
});
