// Loading a policy file: read, parse YAML with positions, interpolate ${VAR}, validate against the
// schema, check what the schema cannot, normalize with defaults, freeze. Every problem is collected
// and reported at once as `file:line:col: message`; a policy with any problem is never used.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { PolicyError } from '../proxy/errors.ts';
import { interpolate, interpolatedNames, type InterpolationProblem } from './interpolate.ts';
import { normalizePolicy, semanticProblems } from './normalize.ts';
import { NOT_ENFORCED_YET } from './pending.ts';
import type { Policy } from './types.ts';
import { validatePolicyShape } from './validate.ts';
import { parseYaml, type Path } from './yaml-source.ts';

export interface PolicyCheck {
  /** Set only when there are no problems. */
  policy?: Policy;
  problems: string[];
  /** Things that are valid but worth knowing (e.g. a section this version does not enforce yet). */
  notes: string[];
}

// A policy is a few kilobytes; a file this big is a mistake (or an attack on the parser).
const MAX_POLICY_BYTES = 1024 * 1024;

function has(doc: unknown, path: Path): boolean {
  let v: any = doc;
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || !(seg in v)) return false;
    v = v[seg];
  }
  return v !== undefined && !(typeof v === 'object' && v !== null && Object.keys(v).length === 0);
}

/** Checks policy text as if read from `file`; never throws on bad input. */
export function checkPolicyText(file: string, bytes: Buffer | string, env: NodeJS.ProcessEnv = process.env): PolicyCheck {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  if (buf.length > MAX_POLICY_BYTES) return { problems: [`${file}:1:1: policy file is ${buf.length} bytes; the limit is ${MAX_POLICY_BYTES}`], notes: [] };
  if (!isUtf8(buf)) return { problems: [`${file}:1:1: policy file is not valid UTF-8`], notes: [] };
  const src = parseYaml(file, buf.toString('utf8'));
  if (src.syntaxProblems.length > 0) return { problems: [...src.syntaxProblems], notes: [] };
  if (src.value === undefined || src.value === null) return { problems: [`${file}:1:1: policy file is empty`], notes: [] };

  const interpolationProblems: InterpolationProblem[] = [];
  const doc = interpolate(src.value, env, interpolationProblems);
  const overridden = overrideAgent(doc, env);
  const problems = interpolationProblems.map((p) => src.problem(p.path, p.message));
  const shape = validatePolicyShape(doc);
  problems.push(...shape.map((p) => src.problem(p.path, p.message, p.key)));
  if (shape.length === 0) problems.push(...semanticProblems(doc as Record<string, unknown>).map((p) => src.problem(p.path, p.message)));
  // Problems come out in file order, which is how a person fixes them.
  problems.sort((a, b) => lineCol(a) - lineCol(b));
  const notes = NOT_ENFORCED_YET.filter(([path]) => has(doc, path))
    .map(([path, what]) => src.problem(path, `note: ${path.join('.')} is valid, but ${what} are not enforced by this version of warden yet`, true));
  for (const [field, variable] of overridden) notes.push(src.problem(['agent', field], `note: agent.${field} is "${env[variable]}", from ${variable}`, true));
  if (problems.length > 0) return { problems, notes };
  const sha256 = createHash('sha256').update(buf).digest('hex');
  return { policy: normalizePolicy(doc as Record<string, any>, { file, sha256, variables: interpolatedNames(src.value) }), problems: [], notes };
}

// One image (and its baked-in policy) can serve several services: `warden deploy inject --agent-id
// --agent-version` names the agent per service through these, and they outrank the file.
const AGENT_OVERRIDES = [['id', 'WARDEN_AGENT_ID'], ['version', 'WARDEN_AGENT_VERSION']] as const;

/** Applies WARDEN_AGENT_ID / WARDEN_AGENT_VERSION to the document (validated after); returns which applied. */
function overrideAgent(doc: unknown, env: NodeJS.ProcessEnv): (typeof AGENT_OVERRIDES)[number][] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return [];
  const applied = AGENT_OVERRIDES.filter(([, variable]) => env[variable]);
  if (applied.length === 0) return [];
  const d = doc as Record<string, unknown>;
  const agent = d.agent !== null && typeof d.agent === 'object' && !Array.isArray(d.agent) ? { ...d.agent } : {};
  for (const [field, variable] of applied) (agent as Record<string, unknown>)[field] = env[variable];
  d.agent = agent;
  return applied;
}

function lineCol(problem: string): number {
  const m = /:(\d+):(\d+): /.exec(problem);
  return m ? Number(m[1]) * 100_000 + Number(m[2]) : 0;
}

/** Reads and checks a policy file. */
export async function checkPolicyFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<PolicyCheck> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { problems: [`${file}:1:1: cannot read the policy file (${e.code ?? e.message})`], notes: [] };
  }
  return checkPolicyText(file, bytes, env);
}

/** Loads a policy for the runtime; throws PolicyError with every problem when it is not usable. */
export async function loadPolicyFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<{ policy: Policy; notes: string[] }> {
  const result = await checkPolicyFile(file, env);
  if (!result.policy) throw new PolicyError(result.problems);
  return { policy: result.policy, notes: result.notes };
}
