// The README sections that are generated from the code, so they cannot drift: the policy reference
// (from policies/policy.schema.json) and the metrics list (from the registry the sidecar serves).
// `npm run docs` writes them into README.md; test/readme.test.ts fails when README.md is stale.
import { policyReference } from '../policies/reference.ts';
import { createMetrics } from '../proxy/metrics.ts';

interface Described {
  name: string;
  help: string;
  labelNames?: readonly string[];
  constructor: { name: string };
}

function metricsReference(): string {
  const metrics = Object.values(createMetrics()).filter((v): v is Described => typeof (v as Described)?.name === 'string' && typeof (v as Described).help === 'string');
  const rows = metrics.map((m) => `| \`${m.name}\` | ${m.constructor.name.toLowerCase()} | ${(m.labelNames ?? []).map((l) => `\`${l}\``).join(', ')} | ${m.help} |`);
  return ['| metric | type | labels | meaning |', '| --- | --- | --- | --- |', ...rows,
    '| `warden_process_*`, `warden_nodejs_*` | | | Node.js process metrics (CPU, resident memory, event-loop lag, GC, handles). |'].join('\n');
}

/** Generated section bodies by marker name. */
export function readmeSections(): Record<string, string> {
  return { 'policy-reference': policyReference(), 'metrics-reference': metricsReference() };
}

/** README text with each `<!-- NAME:start -->…<!-- NAME:end -->` block replaced by its generated body. */
export function renderReadme(readme: string): string {
  let out = readme;
  for (const [name, body] of Object.entries(readmeSections())) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const a = out.indexOf(start);
    const b = out.indexOf(end);
    if (a === -1 || b === -1) throw new Error(`README.md has no ${start} … ${end} block`);
    out = `${out.slice(0, a + start.length)}\n${body}\n${out.slice(b)}`;
  }
  return out;
}
