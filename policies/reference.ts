// The policy reference as Markdown, generated from policies/policy.schema.json so the README cannot
// drift from what the loader accepts (test/readme.test.ts compares them; `npm run docs` rewrites it).
import { NOT_ENFORCED_YET } from './pending.ts';
import { policySchema } from './validate.ts';

const PENDING = new Set(NOT_ENFORCED_YET.map(([path]) => path.join('.')));

type Schema = Record<string, any>;

function resolve(s: Schema): Schema {
  if (typeof s.$ref !== 'string') return s;
  const target = s.$ref.replace('#/$defs/', '');
  // A $ref's siblings (description, default) describe this use of the shared definition.
  return { ...resolve((policySchema as Schema).$defs[target]), ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== '$ref')) };
}

function typeOf(s: Schema): string {
  if (s.const !== undefined) return `\`${s.const}\``;
  if (s.enum) return s.enum.map((v: unknown) => `\`${v}\``).join(' \\| ');
  if (s.pattern && Array.isArray(s.type) && s.type.includes('integer')) return /ms\|/.test(s.pattern) ? 'duration' : 'size';
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : s.type ?? 'any';
  if (t === 'array') return `list of ${typeOf(resolve(s.items ?? {}))}`;
  if (t === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties) {
    const inner = resolve(s.additionalProperties);
    return inner.properties ? 'map' : `map of ${typeOf(inner)}`;
  }
  return t;
}

function cell(v: unknown): string {
  return v === undefined ? '' : `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;
}

function rows(s: Schema, path: string, out: string[]): void {
  const props: Record<string, Schema> = s.properties ?? {};
  const required = new Set<string>(s.required ?? []);
  for (const [key, raw] of Object.entries(props)) {
    const p = resolve(raw);
    const here = path ? `${path}.${key}` : key;
    const pending = PENDING.has(here) ? ' *Accepted, not enforced yet.*' : '';
    const desc = `${p.description ?? ''}${pending}`.trim().replace(/\|/g, '\\|');
    out.push(`| \`${here}\`${required.has(key) ? ' (required)' : ''} | ${typeOf(p)} | ${cell(p.default)} | ${desc} |`);
    if (p.properties) rows(p, here, out);
    const each = p.additionalProperties && typeof p.additionalProperties === 'object' ? resolve(p.additionalProperties) : undefined;
    if (each?.properties) rows(each, `${here}.<name>`, out);
  }
}

/** The reference table for every key the schema knows. */
export function policyReference(): string {
  const out = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  rows(policySchema as Schema, '', out);
  return out.join('\n');
}
