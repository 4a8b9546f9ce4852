// JSON Schema validation (ajv, every error at once) with messages a person can act on: the key as
// written, what was expected, what was found, and a suggestion for a misspelt key.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createRequire } from 'node:module';
import { dotted, type Path } from './yaml-source.ts';

export interface SchemaProblem {
  path: Path;
  message: string;
  /** Point at the key rather than its value (unknown and misnamed keys). */
  key?: boolean;
}

const require = createRequire(import.meta.url);

/** The policy schema as data, for the reference generator and the tests. */
export const policySchema = require('./policy.schema.json') as Record<string, unknown>;

// One compiled validator per schema object (the policy schema, the pact schema), built on first use.
const compiled = new WeakMap<object, ValidateFunction>();

function validator(schema: Record<string, unknown> = policySchema): ValidateFunction {
  let validate = compiled.get(schema);
  // strict: false because descriptions sit beside $ref, which strict mode rejects as "unknown keyword".
  if (!validate) compiled.set(schema, (validate = new Ajv2020({ allErrors: true, verbose: true, strict: false }).compile(schema)));
  return validate;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

function suggestion(key: string, known: string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best}"?)` : ` (known keys: ${known.join(', ')})`;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : `${typeof v} ${show(v)}`;
}

function toPath(pointer: string): Path {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describe(e: ErrorObject): SchemaProblem | undefined {
  const path = toPath(e.instancePath);
  const where = dotted(path);
  const p = e.params as Record<string, any>;
  // Errors inside propertyNames carry the name being checked; the propertyNames error says it better.
  if ((e as { propertyName?: string }).propertyName !== undefined) return undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const text = known.length ? suggestion(p.additionalProperty, known) : '';
      return { path: [...path, p.additionalProperty], key: true, message: `unknown ${path.length ? '' : 'top-level '}key "${p.additionalProperty}"${path.length ? ` in ${where}` : ''}${text}` };
    }
    case 'required':
      return { path, message: `${where}: missing required key "${p.missingProperty}"` };
    case 'enum':
      return { path, message: `${where} must be one of ${p.allowedValues.join(', ')} (got ${show(e.data)})` };
    case 'const':
      return { path, message: `${where} must be ${show(p.allowedValue)} (got ${show(e.data)})` };
    case 'type':
      return { path, message: `${where} must be ${String(p.type).replace(',', ' or ')} (got ${typeName(e.data)})` };
    case 'pattern': {
      // A description that names the form ("A size: …") reads as what the value must be; others say what the field is.
      const desc = (e.parentSchema as { description?: string })?.description?.replace(/\.$/, '');
      const rule = !desc ? `must match ${p.pattern}` : /^An? /.test(desc) ? `must be ${desc.replace(/^A/, 'a')}` : `is not valid here (${desc})`;
      return { path, message: `${where} ${rule} (got ${show(e.data)})` };
    }
    case 'propertyNames':
      return { path: [...path, p.propertyName], key: true, message: `invalid name "${p.propertyName}" in ${where}: use letters, digits, '.', '_' and '-' (64 at most)` };
    case 'minProperties':
      return { path, message: `${where} must declare at least ${p.limit}` };
    default:
      return { path, message: `${where} ${e.message}` };
  }
}

/** Validates a parsed, interpolated policy against policies/policy.schema.json. */
export function validatePolicyShape(value: unknown): SchemaProblem[] {
  return validateShape(policySchema, value);
}

/** Validates a parsed, interpolated document against any JSON Schema (draft 2020-12), every problem at once. */
export function validateShape(schema: Record<string, unknown>, value: unknown): SchemaProblem[] {
  const validate = validator(schema);
  if (validate(value)) return [];
  const seen = new Set<string>();
  const out: SchemaProblem[] = [];
  for (const e of validate.errors ?? []) {
    const problem = describe(e);
    if (!problem) continue;
    const id = `${dotted(problem.path)}|${problem.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(problem);
  }
  return out;
}
