// IP addresses: dotted-quad IPv4 (octets 0-255, no leading zeros) and IPv6 in full or compressed form
// (validated by node:net, at least three colons so `beef::cafe`-like words pass). Not IPv4: a dotted
// version after "version", "release", "build" or "v", a user-agent token (Chrome/120.0.0.0), and a
// prefix of a longer dotted number (an OID). Not IPv6: times, MAC addresses, C++ and Rust paths.
import { isIPv6 } from 'node:net';
import { define, start } from '../detector.ts';

const OCTET = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`;
const IPV4 = String.raw`${start('\\w.')}(?<![A-Za-z0-9]/)(?<!(?:[Vv]ersion|[Rr]elease|[Bb]uild|[Vv]er)[:=]?\s{0,2})${OCTET}(?:\.${OCTET}){3}(?![\w]|\.\d)`;
const IPV6 = String.raw`${start('\\w:.')}(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:]|\.\d)`;

export const ipAddress = define({
  name: 'ip_address',
  label: 'IP',
  pattern: `(?:${IPV6}|${IPV4})`,
  partial: String.raw`${start('\\w.')}[0-9A-Fa-f:][0-9A-Fa-f:.]{0,45}`,
  accept(m) {
    if (!m.includes(':')) return m.length;
    return isIPv6(m) && m.split(':').length >= 4 ? m.length : 0;
  },
  mask: () => '<IP>',
});
