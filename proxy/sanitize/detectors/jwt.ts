// JSON Web Tokens (JWS compact form): base64url header and payload that decode to JSON objects, the
// header naming its alg, and a signature (empty for alg none).
import { define, start } from '../detector.ts';

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export const jwt = define({
  name: 'jwt',
  label: 'JWT',
  pattern: String.raw`${start('\\w\\-')}eyJ[A-Za-z0-9_\-]{5,1000}\.eyJ[A-Za-z0-9_\-]{5,8000}\.[A-Za-z0-9_\-]{0,1000}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])`,
  partial: String.raw`${start('\\w\\-')}e(?:y(?:J[A-Za-z0-9_\-]{0,1000}(?:\.(?:e(?:y(?:J[A-Za-z0-9_\-]{0,8000}(?:\.[A-Za-z0-9_\-]{0,1001}\.?)?)?)?)?)?)?)?`,
  accept(m) {
    const [header, payload] = m.split('.');
    return typeof jsonObject(header)?.alg === 'string' && jsonObject(payload) ? m.length : 0;
  },
  mask: () => '<JWT>',
});
