// The sanitize section: defaults filled in, and the checks the schema cannot make (a custom pattern
// compiles and is bounded, names do not clash, every class named in actions and recipients exists).
import { BUILTIN_NAMES } from '../proxy/sanitize/detectors/index.ts';
import { customProblem } from '../proxy/sanitize/custom.ts';
import type { SanitizeConfig } from './types.ts';

type Raw = Record<string, any>;

export interface SanitizeProblem {
  path: (string | number)[];
  message: string;
}

/** The sanitize section as the runtime reads it; undefined when absent or turned off. */
export function sanitizeConfig(raw: Raw | undefined): SanitizeConfig | undefined {
  if (!raw || raw.enabled === false) return undefined;
  return {
    detectors: raw.detectors ?? BUILTIN_NAMES,
    custom: (raw.custom ?? []).map((c: Raw) => ({ name: c.name, pattern: c.pattern, maxLength: c.maxLength, ignoreCase: c.ignoreCase ?? false, mask: c.mask })),
    action: raw.action ?? 'mask',
    actions: raw.actions ?? {},
    recipients: Object.fromEntries(Object.entries<Raw>(raw.recipients ?? {}).map(([name, r]) => [name, { allow: r.allow ?? [], actions: r.actions ?? {} }])),
    responses: raw.responses ?? true,
    toolResults: raw.toolResults ?? true,
    prompts: raw.prompts ?? false,
    hashKeyEnv: raw.hashKeyEnv,
  };
}

/** Problems in the sanitize section that only the whole section shows. */
export function sanitizeProblems(doc: Raw): SanitizeProblem[] {
  const s = doc.sanitize;
  if (!s) return [];
  const out: SanitizeProblem[] = [];
  const custom: Raw[] = s.custom ?? [];
  const names = new Set([...BUILTIN_NAMES]);
  for (const [i, c] of custom.entries()) {
    if (names.has(c.name)) out.push({ path: ['sanitize', 'custom', i, 'name'], message: `sanitize.custom[${i}].name: "${c.name}" is already a ${BUILTIN_NAMES.includes(c.name) ? 'built-in detector' : 'custom pattern'}` });
    names.add(c.name);
    const problem = customProblem(c as { name: string; pattern: string; maxLength?: number; ignoreCase?: boolean });
    if (problem) out.push({ path: ['sanitize', 'custom', i, 'pattern'], message: `sanitize.custom[${i}].pattern ${problem}` });
  }
  const known = (cls: string, path: (string | number)[], where: string) => {
    if (!names.has(cls)) out.push({ path, message: `${where}: "${cls}" is not a detector (built-in: ${BUILTIN_NAMES.join(', ')}; or a custom pattern's name)` });
  };
  for (const cls of Object.keys(s.actions ?? {})) known(cls, ['sanitize', 'actions', cls], `sanitize.actions.${cls}`);
  for (const [name, r] of Object.entries<Raw>(s.recipients ?? {})) {
    for (const [i, cls] of (r.allow ?? []).entries()) known(cls, ['sanitize', 'recipients', name, 'allow', i], `sanitize.recipients.${name}.allow`);
    for (const cls of Object.keys(r.actions ?? {})) known(cls, ['sanitize', 'recipients', name, 'actions', cls], `sanitize.recipients.${name}.actions.${cls}`);
  }
  return out;
}
