// ${VAR} and ${VAR:-default} in string values, resolved from the environment before validation, so a
// policy can keep URLs and secrets' names out of the file. `$${` writes a literal `${`.
import type { Path } from './yaml-source.ts';

export interface InterpolationProblem {
  path: Path;
  message: string;
}

const PATTERN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?/g;

function resolve(text: string, env: NodeJS.ProcessEnv, path: Path, problems: InterpolationProblem[]): string {
  if (!text.includes('${')) return text;
  return text.replace(PATTERN, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    if (name === undefined) {
      problems.push({ path, message: `malformed interpolation "${match}" (expected \${VAR} or \${VAR:-default})` });
      return match;
    }
    const value = env[name];
    // Like the shell's :-, an empty variable counts as unset.
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    problems.push({ path, message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` });
    return '';
  });
}

/** A copy of `value` with every string interpolated; problems name the path of each bad string. */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, problems: InterpolationProblem[], path: Path = []): unknown {
  if (typeof value === 'string') return resolve(value, env, path, problems);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

/** The environment variables `value`'s strings interpolate (set or not), in first-use order. */
export function interpolatedNames(value: unknown, out = new Set<string>()): string[] {
  if (typeof value === 'string') {
    for (const m of value.matchAll(PATTERN)) if (m[1] !== undefined) out.add(m[1]);
  } else if (Array.isArray(value)) {
    for (const v of value) interpolatedNames(v, out);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) interpolatedNames(v, out);
  }
  return [...out];
}
