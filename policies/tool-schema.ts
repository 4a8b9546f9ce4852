// Tool argument and result schemas: JSON Schema 2020-12, compiled with ajv. The policy check compiles
// each one to reject a broken schema before a sidecar starts; the runtime compiles them once per load.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

// One instance per catalogue: compiled schemas are cached by it, and a reload builds a new one so
// replaced schemas do not pile up.
export function toolSchemaCompiler(): (schema: object) => ValidateFunction {
  // allErrors: the agent (and the audit record) should hear every problem at once. strict: unknown
  // keywords such as x-ui hints in a shared schema are tolerated rather than fatal.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  return (schema) => ajv.compile(schema);
}

/** Why `schema` does not compile, or undefined. */
export function schemaProblem(schema: unknown): string | undefined {
  try {
    toolSchemaCompiler()(schema as object);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** ajv's errors as short sentences: `/amount must be <= 100`. */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const at = e.instancePath || '(root)';
    if (e.keyword === 'required') return `${at}: missing required property "${(e.params as { missingProperty: string }).missingProperty}"`;
    if (e.keyword === 'additionalProperties') return `${at}: unexpected property "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    return `${at} ${e.message ?? 'is invalid'}`;
  });
}
