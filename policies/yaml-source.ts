// YAML parsed with positions kept, so every problem found in the parsed value (schema, interpolation,
// cross-references) can name the line and column it came from.
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

export type Path = readonly (string | number)[];

export interface Position {
  line: number;
  col: number;
}

export interface YamlSource {
  readonly file: string;
  /** Syntax problems, already as `file:line:col: message`; the value is unusable when there are any. */
  readonly syntaxProblems: readonly string[];
  /** The document as plain JS (undefined for an empty file). */
  readonly value: unknown;
  /** Where the value at `path` starts; `key: true` points at its key instead (for unknown-key errors). */
  position(path: Path, key?: boolean): Position;
  /** `file:line:col: message` for the value at `path`. */
  problem(path: Path, message: string, key?: boolean): string;
}

// Aliases can expand exponentially ("billion laughs"); no policy needs more than this many.
const MAX_ALIAS_COUNT = 1_000;

function child(node: unknown, seg: string | number): { node?: Node; key?: Node } {
  if (isMap(node)) {
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = isScalar(item.key) ? item.key.value : item.key;
      if (String(k) === String(seg)) return { node: (item.value ?? undefined) as Node | undefined, key: item.key as Node };
    }
    return {};
  }
  if (isSeq(node) && typeof seg === 'number') return { node: node.items[seg] as Node | undefined };
  return {};
}

/** Parses YAML text; never throws on bad input, it reports it. */
export function parseYaml(file: string, text: string): YamlSource {
  const lines = new LineCounter();
  // merge: `<<: *defaults` (YAML 1.1 merge keys), as docker-compose and Kubernetes users write.
  const doc: Document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true, merge: true });
  const syntaxProblems = doc.errors.map((e) => {
    const at = lines.linePos(e.pos[0]);
    return `${file}:${at.line}:${at.col}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`;
  });
  let value: unknown;
  if (syntaxProblems.length === 0) {
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      syntaxProblems.push(`${file}:1:1: ${(err as Error).message}`);
    }
  }

  function position(path: Path, key = false): Position {
    // Walk as deep as the document goes; a missing key points at its nearest existing parent.
    let node: unknown = doc.contents;
    let at = (node as Node | null)?.range?.[0] ?? 0;
    for (const [i, seg] of path.entries()) {
      const next = child(node, seg);
      const last = i === path.length - 1;
      if (last && key && next.key?.range) return lines.linePos(next.key.range[0]);
      if (!next.node && !next.key) break;
      node = next.node;
      const range = next.node?.range ?? next.key?.range;
      if (range) at = range[0];
    }
    return lines.linePos(at);
  }

  return {
    file,
    syntaxProblems,
    value,
    position,
    problem(path, message, key) {
      const p = position(path, key);
      return `${file}:${p.line}:${p.col}: ${message}`;
    },
  };
}

/** A path as the user wrote it: upstreams.openai.timeouts, tools.lookup[0]. */
export function dotted(path: Path): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out || '(top level)';
}
