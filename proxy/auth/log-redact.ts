// Credentials Warden's log must never carry, as pino redaction paths: defence in depth, since no log
// line logs request headers today, and the day one does it will not carry a key or the agent's token.
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-warden-token', 'cookie'];

// Where a headers object can appear in a log line: on its own, or on a logged request, response or
// error. Named paths, not wildcards: pino's wildcard redaction walks every logged object's keys and
// cost ~35 µs per line (measured), a third of a call's whole overhead; named paths cost ~1 µs.
const CARRIERS = ['', 'req.', 'res.', 'request.', 'response.', 'err.', 'error.', 'upstream.'];

/** pino `redact` options: credential headers wherever a `headers` object is logged. */
export const LOG_REDACT = Object.freeze({
  paths: CREDENTIAL_HEADERS.flatMap((h) => CARRIERS.map((c) => `${c}headers["${h}"]`)),
  censor: '[redacted]',
});
