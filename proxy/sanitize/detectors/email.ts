// Email addresses: a dot-atom local part, a domain of valid labels and an alphabetic top-level domain.
// Retina asset names (icon@2x.png) and other file names with an @ are not addresses.
import { define, start } from '../detector.ts';

const LOCAL = 'A-Za-z0-9._%+\\-';
// Extensions that end "name@suffix.ext" file names, never a top-level domain people mail.
const FILE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp', 'ico', 'css', 'js', 'mjs', 'ts', 'tsx', 'jsx', 'json', 'yaml', 'yml', 'md', 'txt', 'pdf', 'zip', 'gz', 'tar', 'html', 'htm', 'xml', 'lock', 'log']);

export const email = define({
  name: 'email',
  label: 'EMAIL',
  pattern: String.raw`${start(LOCAL)}[A-Za-z0-9](?:[${LOCAL}]{0,62}[A-Za-z0-9_%+\-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,24}(?![A-Za-z0-9\-]|\.[A-Za-z0-9])`,
  partial: String.raw`${start(LOCAL)}[A-Za-z0-9][${LOCAL}]{0,63}(?:@[A-Za-z0-9.\-]{0,300})?`,
  accept(m) {
    const at = m.lastIndexOf('@');
    const local = m.slice(0, at);
    const domain = m.slice(at + 1).toLowerCase();
    if (m.length > 254 || local.includes('..')) return 0;
    if (FILE_EXTENSIONS.has(domain.slice(domain.lastIndexOf('.') + 1))) return 0;
    return m.length;
  },
  mask: () => '<EMAIL>',
});
