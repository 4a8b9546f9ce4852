// What the pact schema cannot see: ids that collide across capabilities, regular expressions and
// JSON Schemas that do not compile, a cost bound with no price to compute the cost from, a tool call
// expected of a tool the case never offers. It runs even when the schema found problems, so one
// `warden policy check` names everything wrong, and so it reads the document defensively.
import { schemaProblem } from '../policies/tool-schema.ts';
import { dotted, type Path } from '../policies/yaml-source.ts';

export interface PactProblem {
  path: Path;
  message: string;
  /** Point at the key rather than its value. */
  key?: boolean;
}

type Raw = Record<string, unknown>;

function map(v: unknown): Raw | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A case's id as the loader will set it: its own, else `<capability>#<index from 1>`. */
export function caseId(capability: string, index: number, explicit: unknown): string {
  return typeof explicit === 'string' && explicit !== '' ? explicit : `${capability}#${index + 1}`;
}

function assertionProblems(a: Raw, at: Path, caseModel: unknown, prices: Raw | undefined, toolNames: Set<string>): PactProblem[] {
  const out: PactProblem[] = [];
  const regex = a.regex;
  const pattern = typeof regex === 'string' ? regex : map(regex)?.pattern;
  if (typeof pattern === 'string') {
    const flags = map(regex)?.flags;
    try {
      new RegExp(pattern, typeof flags === 'string' ? flags : '');
    } catch (err) {
      out.push({ path: [...at, 'regex'], message: `${dotted([...at, 'regex'])} is not a valid regular expression: ${(err as Error).message}` });
    }
  }
  if (map(a.json_schema)) {
    const problem = schemaProblem(a.json_schema);
    if (problem) out.push({ path: [...at, 'json_schema'], message: `${dotted([...at, 'json_schema'])} is not a valid JSON Schema: ${problem}` });
  }
  const call = map(a.tool_call);
  if (call) {
    if (map(call.args)) {
      const problem = schemaProblem(call.args);
      if (problem) out.push({ path: [...at, 'tool_call', 'args'], message: `${dotted([...at, 'tool_call', 'args'])} is not a valid JSON Schema: ${problem}` });
    }
    if (typeof call.name === 'string' && !toolNames.has(call.name)) {
      const offered = toolNames.size ? `it offers ${[...toolNames].join(', ')}` : 'it offers no tools';
      out.push({ path: [...at, 'tool_call', 'name'], message: `${dotted([...at, 'tool_call'])} expects a call to "${call.name}", which this case does not offer (${offered})` });
    }
  }
  if (a.cost_usd !== undefined && typeof caseModel === 'string' && !map(prices?.[caseModel])) {
    out.push({ path: [...at, 'cost_usd'], key: true, message: `${dotted([...at, 'cost_usd'])}: the case's model "${caseModel}" has no price; add prices.${caseModel}: { inputPerMTok, outputPerMTok }` });
  }
  const length = map(a.length);
  if (length && typeof length.min === 'number' && typeof length.max === 'number' && length.min > length.max) {
    out.push({ path: [...at, 'length'], message: `${dotted([...at, 'length'])}: min (${length.min}) is above max (${length.max})` });
  }
  return out;
}

/** Problems in a parsed, interpolated pact that its JSON Schema cannot express. */
export function pactProblems(doc: unknown): PactProblem[] {
  const root = map(doc);
  if (!root) return [];
  const out: PactProblem[] = [];
  const prices = map(root.prices);
  const firstSeen = new Map<string, Path>();
  for (const [name, rawCap] of Object.entries(map(root.capabilities) ?? {})) {
    for (const [i, rawCase] of list(map(rawCap)?.cases).entries()) {
      const c = map(rawCase);
      if (!c) continue;
      const at: Path = ['capabilities', name, 'cases', i];
      const id = caseId(name, i, c.id);
      const seen = firstSeen.get(id);
      if (seen) out.push({ path: c.id === undefined ? at : [...at, 'id'], message: `duplicate case id "${id}" (also ${dotted(seen)}); ids must be unique within the pact` });
      else firstSeen.set(id, at);

      const toolNames = new Set<string>();
      for (const [j, rawTool] of list(c.tools).entries()) {
        const tool = map(rawTool);
        if (typeof tool?.name === 'string') {
          if (toolNames.has(tool.name)) out.push({ path: [...at, 'tools', j, 'name'], message: `${dotted([...at, 'tools', j])}: tool "${tool.name}" is offered twice` });
          toolNames.add(tool.name);
        }
        if (map(tool?.parameters)) {
          const problem = schemaProblem(tool!.parameters);
          if (problem) out.push({ path: [...at, 'tools', j, 'parameters'], message: `${dotted([...at, 'tools', j, 'parameters'])} is not a valid JSON Schema: ${problem}` });
        }
      }
      const caseModel = c.model ?? root.model;
      for (const [k, rawAssertion] of list(c.expect).entries()) {
        const a = map(rawAssertion);
        if (a) out.push(...assertionProblems(a, [...at, 'expect', k], caseModel, prices, toolNames));
      }
    }
  }
  return out;
}
