// The running policy as the admin page shows it: every effective setting, but no secret. A policy holds
// few secrets itself (credentials are named by env var or file, never inlined), yet `${VAR}`
// interpolation can put one anywhere: an Authorization header on an upstream, a tool or a webhook, a
// key in a URL's query or userinfo, a Slack-style webhook whose path is the secret. So header values
// are hidden, URLs lose their userinfo and query values (notification URLs all but their origin),
// string fields named like credentials are hidden, and the value of every variable the file
// interpolates (and of any secret-named one) is cut out of whatever string it landed in.
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

// An interpolated value shorter than this is shown (a port, a region): cutting it out of every string would mangle them.
const MIN_INTERPOLATED_CHARS = 4;

/**
 * The values to cut out, longest first (so a value containing another is cut whole): every variable
 * the policy file interpolates, whatever its name (a webhook path in SLACK_HOOK_PATH, a password in
 * DB_PWD), and any other secret-named variable's.
 */
function envSecrets(env: NodeJS.ProcessEnv, interpolated: readonly string[]): [string, string][] {
  const used = new Set(interpolated);
  return Object.entries(env)
    .filter((e): e is [string, string] => typeof e[1] === 'string'
      && (used.has(e[0]) ? e[1].length >= MIN_INTERPOLATED_CHARS : e[1].length >= MIN_SECRET_CHARS && SECRET_ENV.test(e[0])))
    .sort((a, b) => b[1].length - a[1].length);
}

// Secrets are cut out before a URL is parsed (a value with a space or a brace would be
// percent-encoded past recognition afterwards), as letters-only placeholders no URL encoding changes,
// which become readable markers at the end.
const placeholder = (i: number) => `WARDENREDACTED${i}X`;

function cutSecrets(text: string, secrets: readonly [string, string][]): string {
  let out = text;
  secrets.forEach(([, value], i) => {
    if (out.includes(value)) out = out.split(value).join(placeholder(i));
  });
  return out;
}

function markSecrets(text: string, secrets: readonly [string, string][]): string {
  // Case-insensitive: a URL's host comes back lowercased.
  return /WARDENREDACTED/i.test(text) ? text.replace(/WARDENREDACTED(\d+)X/gi, (m, i: string) => (secrets[Number(i)] ? `[redacted: $${secrets[Number(i)][0]}]` : m)) : text;
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
  // A fragment never reaches a server, so a URL that has one keeps something there (an OAuth-style key).
  if (url.hash) url.hash = REDACTED;
  return url.toString().replaceAll('%5Bredacted%5D', REDACTED);
}

/** A copy of the policy safe to show: the same shape and settings, secrets replaced by markers. */
export function redactPolicy(policy: Policy, env: NodeJS.ProcessEnv = process.env): unknown {
  const secrets = envSecrets(env, policy.source.variables ?? []);
  const walk = (value: unknown, key: string, inHeaders: boolean): unknown => {
    if (typeof value === 'string') {
      if (inHeaders || (SECRET_KEY.test(key) && !NAME_ONLY.test(key))) return REDACTED;
      const cut = cutSecrets(value, secrets);
      return markSecrets(/^[a-z][a-z0-9+.-]*:\/\//i.test(cut) ? redactUrl(cut, NOTIFY_KEY.test(key)) : cut, secrets);
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
