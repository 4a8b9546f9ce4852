// The running policy as the admin page shows it: every effective setting, but no secret. A policy holds
// few secrets itself (credentials are named by env var or file, never inlined), yet `${VAR}`
// interpolation can put one anywhere: an Authorization header on an upstream, a tool or a webhook, a
// key in a URL's query or userinfo, a Slack-style webhook whose path is the secret. So header values
// are hidden, URLs lose their userinfo and query values (notification URLs all but their origin),
// string fields named like credentials are hidden, and the value of any secret-named environment
// variable is cut out of whatever string it landed in.
import type { Policy } from '../../policies/types.ts';

const REDACTED = '[redacted]';
// Names of keys whose string values are credentials; *Env and *File keys name where one lives, which is fine to show.
const SECRET_KEY = /token|secret|passw|credential|api_?key|private|cookie|signature/i;
const NAME_ONLY = /(Env|File)$/;
// Environment variables that hold credentials by their name; their values are cut out of every string.
const SECRET_ENV = /KEY|TOKEN|SECRET|PASS|CREDENTIAL|PRIVATE|AUTH|COOKIE|SIGNATURE|WEBHOOK|DSN|SESSION/i;
// Below this an env value is too short to cut out of text without mangling it (and too short to be a real secret).
const MIN_SECRET_CHARS = 8;
// URLs that notify someone: chat webhooks carry their secret in the path.
const NOTIFY_KEY = /webhook|remediate/i;

/** The secret-named environment variables' values, longest first (so a value containing another is cut whole). */
function envSecrets(env: NodeJS.ProcessEnv): [string, string][] {
  return Object.entries(env)
    .filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length >= MIN_SECRET_CHARS && SECRET_ENV.test(e[0]))
    .sort((a, b) => b[1].length - a[1].length);
}

function cutSecrets(text: string, secrets: readonly [string, string][]): string {
  let out = text;
  for (const [name, value] of secrets) if (out.includes(value)) out = out.split(value).join(`[redacted: $${name}]`);
  return out;
}

/** A URL without userinfo or query values; a notification URL keeps only its origin. */
function redactUrl(text: string, notify: boolean): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (notify) return `${url.origin}/${REDACTED}`;
  if (url.username || url.password) {
    url.username = REDACTED;
    url.password = '';
  }
  for (const key of [...new Set(url.searchParams.keys())]) url.searchParams.set(key, REDACTED);
  return url.toString().replaceAll('%5Bredacted%5D', REDACTED);
}

/** A copy of the policy safe to show: the same shape and settings, secrets replaced by markers. */
export function redactPolicy(policy: Policy, env: NodeJS.ProcessEnv = process.env): unknown {
  const secrets = envSecrets(env);
  const walk = (value: unknown, key: string, inHeaders: boolean): unknown => {
    if (typeof value === 'string') {
      if (inHeaders || (SECRET_KEY.test(key) && !NAME_ONLY.test(key))) return REDACTED;
      const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? redactUrl(value, NOTIFY_KEY.test(key)) : value;
      return cutSecrets(text, secrets);
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, key, inHeaders));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      // Header maps: names are configuration, values may be credentials.
      const headers = /headers$/i.test(key);
      for (const [k, v] of Object.entries(value)) out[k] = walk(v, k, inHeaders || headers);
      return out;
    }
    return value;
  };
  return walk(policy, '', false);
}
