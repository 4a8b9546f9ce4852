// Credentials Warden's log must never carry, as pino redaction paths: defence in depth, since no log
// line logs request headers today, and the day one does it will not carry a key or the agent's token.
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-warden-token', 'cookie'];

/** pino `redact` options: credential headers wherever a `headers` object is logged, one or two levels down. */
export const LOG_REDACT = Object.freeze({
  paths: CREDENTIAL_HEADERS.flatMap((h) => [`headers["${h}"]`, `*.headers["${h}"]`, `*.*.headers["${h}"]`]),
  censor: '[redacted]',
});
