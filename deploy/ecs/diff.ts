// A readable unified diff of two task definitions' JSON, for `--dry-run`, and the comparison that
// decides whether a re-inject has anything to register.
import type { Json } from './task-definition.ts';

const CONTEXT_LINES = 3;

/** A unified diff (---/+++/@@ hunks) of two values' pretty JSON; empty when they print the same. */
export function unifiedDiff(before: unknown, after: unknown, fromName: string, toName: string): string {
  const a = JSON.stringify(before, null, 2).split('\n');
  const b = JSON.stringify(after, null, 2).split('\n');
  const ops = lineOps(a, b);
  if (ops.every((o) => o.kind === ' ')) return '';
  const out = [`--- ${fromName}`, `+++ ${toName}`];
  // Each change shows CONTEXT_LINES around it; overlapping windows merge into one hunk.
  const ranges: Array<[number, number]> = [];
  ops.forEach((o, k) => {
    if (o.kind === ' ') return;
    const from = Math.max(0, k - CONTEXT_LINES);
    const to = Math.min(ops.length, k + CONTEXT_LINES + 1);
    const last = ranges.at(-1);
    if (last && from <= last[1]) last[1] = to;
    else ranges.push([from, to]);
  });
  for (const [from, to] of ranges) {
    const hunk = ops.slice(from, to);
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${hunk[0].aLine + 1},${aLen} +${hunk[0].bLine + 1},${bLen} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.text}`);
  }
  return `${out.join('\n')}\n`;
}

interface Op { kind: ' ' | '-' | '+'; text: string; aLine: number; bLine: number }

// Longest-common-subsequence line diff: task definitions are a few hundred lines, so O(n·m) is fine.
function lineOps(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', text: a[i], aLine: i++, bLine: j++ });
    // Deletions before insertions, as diff(1) prints a changed line.
    else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push({ kind: '-', text: a[i], aLine: i++, bLine: j });
    else ops.push({ kind: '+', text: b[j], aLine: i, bLine: j++ });
  }
  return ops;
}

/**
 * Whether two registrable definitions would register the same thing. ECS fills defaults into what
 * it returns (cpu 0, empty lists, a port mapping's protocol and hostPort), so those count as absent.
 */
export function sameDefinition(a: Json, b: Json): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => canonical(v)).filter((v) => v !== undefined);
    if (items.length === 0) return undefined;
    // Tags come back in any order; their order means nothing.
    return key === 'tags' ? items.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))) : items;
  }
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object') return value;
  const obj = { ...(value as Json) };
  if (key === 'portMappings' || ('containerPort' in obj)) {
    if (obj.protocol === 'tcp') delete obj.protocol;
    if (obj.hostPort === obj.containerPort) delete obj.hostPort;
  }
  if ('image' in obj && obj.cpu === 0) delete obj.cpu;
  const out: Json = {};
  for (const k of Object.keys(obj).sort()) {
    const v = canonical(obj[k], k);
    if (v !== undefined && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)) out[k] = v;
  }
  return out;
}
