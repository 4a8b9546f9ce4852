// Loading a pact file the way policies load: read, parse YAML with positions, interpolate ${VAR},
// validate against evals/pact.schema.json, check what the schema cannot, normalize with defaults,
// freeze. Every problem is collected and reported at once as `file:line:col: message`.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { interpolate, type InterpolationProblem } from '../policies/interpolate.ts';
import { validateShape, type SchemaProblem } from '../policies/validate.ts';
import { dotted, parseYaml } from '../policies/yaml-source.ts';
import { PolicyError } from '../proxy/errors.ts';
import { pactProblems } from './pact-checks.ts';
import { normalizePact } from './pact-normalize.ts';
import type { Pact } from './types.ts';

export interface PactCheck {
  /** Set only when there are no problems. */
  pact?: Pact;
  problems: string[];
}

const require = createRequire(import.meta.url);

/** The pact schema as data, for the reference generator and the tests. */
export const pactSchema = require('./pact.schema.json') as Record<string, unknown>;

// Pacts hold many cases and so run larger than policies, but a file this big is a mistake.
const MAX_PACT_BYTES = 4 * 1024 * 1024;

// ajv's words for a map with the wrong number of keys; an assertion deserves a sentence that shows the form.
function reword(p: SchemaProblem, doc: unknown): SchemaProblem {
  const n = p.path.length;
  const isAssertion = n >= 6 && p.path[0] === 'capabilities' && p.path[n - 2] === 'expect' && typeof p.path[n - 1] === 'number';
  if (!isAssertion || !/must NOT have more than 1 properties|must declare at least 1$/.test(p.message)) return p;
  let v: any = doc;
  for (const seg of p.path) v = v?.[seg];
  const keys = v && typeof v === 'object' ? Object.keys(v) : [];
  const got = keys.length ? `got keys ${keys.join(', ')}` : 'got an empty map';
  return { path: p.path, message: `${dotted(p.path)}: an assertion is a map with exactly one key, such as { contains: "30 days" } or { contains: { text: "30 days", ignoreCase: true } } (${got})` };
}

function lineCol(problem: string): number {
  const m = /:(\d+):(\d+): /.exec(problem);
  return m ? Number(m[1]) * 100_000 + Number(m[2]) : 0;
}

/** Checks pact text as if read from `file`; never throws on bad input. */
export function checkPactText(file: string, bytes: Buffer | string, env: NodeJS.ProcessEnv = process.env): PactCheck {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  if (buf.length > MAX_PACT_BYTES) return { problems: [`${file}:1:1: pact file is ${buf.length} bytes; the limit is ${MAX_PACT_BYTES}`] };
  if (!isUtf8(buf)) return { problems: [`${file}:1:1: pact file is not valid UTF-8`] };
  const src = parseYaml(file, buf.toString('utf8'));
  if (src.syntaxProblems.length > 0) return { problems: [...src.syntaxProblems] };
  if (src.value === undefined || src.value === null) return { problems: [`${file}:1:1: pact file is empty`] };

  const interpolationProblems: InterpolationProblem[] = [];
  const doc = interpolate(src.value, env, interpolationProblems);
  const problems = interpolationProblems.map((p) => src.problem(p.path, p.message));
  const shape = validateShape(pactSchema, doc).map((p) => reword(p, doc));
  problems.push(...shape.map((p) => src.problem(p.path, p.message, p.key)));
  // Unlike policies, semantic checks run beside schema problems: they read defensively, and a pact
  // author fixing cases one trial run at a time wants the whole list.
  problems.push(...pactProblems(doc).map((p) => src.problem(p.path, p.message, p.key)));
  const unique = [...new Set(problems)].sort((a, b) => lineCol(a) - lineCol(b));
  if (unique.length > 0) return { problems: unique };
  const sha256 = createHash('sha256').update(buf).digest('hex');
  return { pact: normalizePact(doc as Record<string, any>, { file, sha256 }), problems: [] };
}

/** Reads and checks a pact file. */
export async function checkPactFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<PactCheck> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { problems: [`${file}:1:1: cannot read the pact file (${e.code ?? e.message})`] };
  }
  return checkPactText(file, bytes, env);
}

/** Loads a pact for a run; throws PolicyError with every problem when it is not usable. */
export async function loadPactFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Pact> {
  const result = await checkPactFile(file, env);
  if (!result.pact) throw new PolicyError(result.problems);
  return result.pact;
}

/** Whether YAML text declares `kind: Pact` at its top level (a sniff, not a parse). */
export function isPactDocument(text: string | Buffer): boolean {
  return /^kind:[ \t]*(["']?)Pact\1[ \t]*(#.*)?\r?$/m.test(typeof text === 'string' ? text : text.toString('utf8'));
}

// Keys sorted at every level, so the hash depends on content, never on the order YAML wrote keys in.
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** SHA-256 (hex) of every case's id, model, messages and tools: what the target is asked, not what is checked. */
export function pactPromptSha256(pact: Pact): string {
  const cases = pact.capabilities
    .flatMap((c) => c.cases)
    .map((c) => ({ id: c.id, model: c.model, messages: c.messages, tools: c.tools }))
    // Moving a case between capabilities or reordering them changes no prompt.
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return createHash('sha256').update(canonical(cases)).digest('hex');
}
