// How far a regular expression can reach from where a match starts: the longest text it can match and
// the furthest character it reads (lookaheads and \b read past a match's end). A stream sanitizer holds
// back only that much, so every pattern it runs must be bounded; this reads JavaScript regex source
// (no `u` or `v` flag) well enough to prove it, to cap unbounded quantifiers at a given length, to
// name the pattern's leading literal characters, and to write a pattern for the prefixes of its
// matches (what a match still in progress at the end of the text so far can look like).

export interface RegexBound {
  /** Shortest match, in UTF-16 code units. */
  min: number;
  /** Longest match; Infinity when a quantifier is unbounded. */
  max: number;
  /** The furthest character read from the start, lookaheads included (≥ max). */
  reach: number;
  /** Syntax a streamed match cannot honour: anchors (^ $) and lookarounds, with their offsets. */
  unsupported: { what: string; at: number }[];
  /** Offset of the first unbounded quantifier (* + {n,}), when there is one. */
  unboundedAt?: number;
  /** Regex sources of the single characters every match starts with, in order (e.g. T, K, T, -). */
  lead: string[];
  /**
   * Regex source matching every non-empty prefix of a match (and some other text: it is a superset),
   * quantifiers capped as in `capped`; undefined when the pattern has a backreference, an anchor, a
   * lookaround or an unbounded quantifier without a cap, which it cannot follow.
   */
  prefix?: string;
}

interface Node {
  min: number;
  max: number;
  reach: number;
  /** One character wide, always (a literal, an escape class, a set, or `.`). */
  single?: string;
  /** The node's source with groups made non-capturing and quantifiers capped. */
  plain: string;
  /** Source for the non-empty prefixes of the node's matches (see RegexBound.prefix); null: it only matches empty text. */
  prefix: string | null;
}

const ZERO: Node = { min: 0, max: 0, reach: 0, plain: '', prefix: null };

/** Either prefix source, as one alternation. */
function either(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return a ?? b;
  return `(?:${a}|${b})`;
}

class Parser {
  readonly src: string;
  i = 0;
  readonly unsupported: { what: string; at: number }[] = [];
  unboundedAt: number | undefined;
  readonly groups: Node[] = [];
  /** Set while parsing the top-level sequence, to collect the lead. */
  lead: string[] | undefined = [];
  readonly cap: number | undefined;
  /** The source with unbounded quantifiers replaced by {n,cap}, when a cap is given. */
  out = '';
  /** Set by syntax the prefix pattern cannot follow (a backreference, an anchor, a lookaround, no cap). */
  noPrefix = false;

  constructor(src: string, cap: number | undefined) {
    this.src = src;
    this.cap = cap;
  }

  disjunction(top: boolean): Node {
    let best: Node | undefined;
    let alternatives = 0;
    for (;;) {
      const alt = this.sequence(top && alternatives === 0);
      alternatives++;
      best = best
        ? { min: Math.min(best.min, alt.min), max: Math.max(best.max, alt.max), reach: Math.max(best.reach, alt.reach), plain: `${best.plain}|${alt.plain}`, prefix: either(best.prefix, alt.prefix) }
        : alt;
      if (this.src[this.i] !== '|') break;
      this.emit('|');
      this.i++;
    }
    // With alternatives at the top, no single lead is certain.
    if (top && alternatives > 1) this.lead = [];
    return best!;
  }

  sequence(collectLead: boolean): Node {
    let min = 0;
    let max = 0;
    let reach = 0;
    let leading = collectLead;
    const atoms: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      const start = this.i;
      const atom = this.term();
      atoms.push(atom);
      reach = Math.max(reach, max + atom.reach);
      min += atom.min;
      max += atom.max;
      if (leading && this.lead) {
        if (atom.single !== undefined && atom.min === 1 && atom.max === 1) this.lead.push(atom.single);
        else if (!(atom.min === 0 && atom.max === 0 && atom.reach <= 1 && /^\\[bB]$/.test(this.src.slice(start, this.i)))) leading = false;
      }
    }
    // A prefix of a1 a2 … an is a prefix of a1, or a whole a1 then a prefix of a2 …, built from the end.
    let prefix: string | null = null;
    for (let k = atoms.length - 1; k >= 0; k--) {
      const a = atoms[k];
      if (a.single !== undefined) prefix = prefix === null ? a.plain : `${a.plain}(?:${prefix})?`;
      else prefix = either(a.prefix, prefix === null ? null : `${a.plain}(?:${prefix})`);
    }
    return { min, max, reach, plain: atoms.map((a) => a.plain).join(''), prefix };
  }

  term(): Node {
    const start = this.i;
    const c = this.src[this.i];
    if (c === '^' || c === '$') {
      this.unsupported.push({ what: c === '^' ? 'the anchor ^' : 'the anchor $', at: start });
      this.noPrefix = true;
      this.emit(c);
      this.i++;
      return ZERO;
    }
    let atom: Node;
    if (c === '(') atom = this.group();
    else if (c === '[') atom = this.set();
    else if (c === '\\') atom = this.escape();
    else {
      this.i++;
      this.emit(c);
      const single = c === '.' ? '.' : escapeLiteral(c);
      atom = { min: 1, max: 1, reach: 1, single, plain: single, prefix: single };
    }
    return this.quantified(atom);
  }

  quantified(atom: Node): Node {
    const q = /^(?:\*|\+|\?|\{(\d+)(,(\d*))?\})\??/.exec(this.src.slice(this.i));
    if (!q) return atom;
    let lo: number;
    let hi: number;
    if (q[0][0] === '*') [lo, hi] = [0, Infinity];
    else if (q[0][0] === '+') [lo, hi] = [1, Infinity];
    else if (q[0][0] === '?') [lo, hi] = [0, 1];
    else {
      lo = Number(q[1]);
      hi = q[2] === undefined ? lo : q[3] === '' ? Infinity : Number(q[3]);
    }
    const lazy = q[0].endsWith('?') && q[0] !== '?' ? '?' : '';
    if (hi === Infinity) {
      this.unboundedAt ??= this.i;
      if (this.cap !== undefined) {
        hi = Math.max(lo, this.cap);
        this.emit(`{${lo},${hi}}${lazy}`);
      } else this.emit(q[0]);
    } else this.emit(q[0]);
    this.i += q[0].length;
    if (hi === 0) return ZERO;
    if (hi === Infinity) this.noPrefix = true;
    // A prefix of x{lo,hi}: up to hi-1 whole x, then a prefix of one more (laziness changes nothing here).
    let prefix: string | null = null;
    if (atom.prefix !== null && hi !== Infinity) {
      if (atom.single !== undefined) prefix = `${atom.plain}{1,${hi}}`;
      else prefix = hi === 1 ? atom.prefix : `(?:${atom.plain}){0,${hi - 1}}(?:${atom.prefix})`;
    }
    return { min: lo * atom.min, max: hi * atom.max, reach: (hi - 1) * atom.max + atom.reach, plain: `${atom.plain}{${lo},${hi}}`, prefix };
  }

  group(): Node {
    const start = this.i;
    const head = /^\((\?:|\?=|\?!|\?<=|\?<!|\?<[A-Za-z_$][\w$]*>)?/.exec(this.src.slice(this.i))![0];
    this.emit(head);
    this.i += head.length;
    const capturing = head === '(' || (head.startsWith('(?<') && head !== '(?<=' && head !== '(?<!');
    const slot = capturing ? this.groups.push(ZERO) - 1 : -1;
    const saved = this.lead;
    this.lead = undefined;
    const inner = this.disjunction(false);
    this.lead = saved;
    if (this.src[this.i] === ')') {
      this.emit(')');
      this.i++;
    }
    if (slot >= 0) this.groups[slot] = inner;
    if (head === '(?=' || head === '(?!') {
      this.unsupported.push({ what: `the lookahead ${head}`, at: start });
      this.noPrefix = true;
      return { min: 0, max: 0, reach: inner.reach, plain: '', prefix: null };
    }
    if (head === '(?<=' || head === '(?<!') {
      this.unsupported.push({ what: `the lookbehind ${head}`, at: start });
      this.noPrefix = true;
      return ZERO;
    }
    return { ...inner, plain: `(?:${inner.plain})` };
  }

  set(): Node {
    const start = this.i;
    this.i++;
    if (this.src[this.i] === '^') this.i++;
    // A ] right after [ or [^ closes an empty set in JavaScript, so scanning starts here.
    while (this.i < this.src.length && this.src[this.i] !== ']') this.i += this.src[this.i] === '\\' ? 2 : 1;
    this.i++;
    const text = this.src.slice(start, this.i);
    this.emit(text);
    return { min: 1, max: 1, reach: 1, single: text, plain: text, prefix: text };
  }

  escape(): Node {
    const rest = this.src.slice(this.i);
    const m = /^\\(?:[bB]|k<[^>]+>|[1-9]\d*|c[A-Za-z]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|[\s\S])/.exec(rest)!;
    const text = m[0];
    this.emit(text);
    this.i += text.length;
    if (text === '\\b' || text === '\\B') return { min: 0, max: 0, reach: 1, plain: text, prefix: null };
    const backref = /^\\([1-9]\d*)$/.exec(text);
    if (backref || text.startsWith('\\k<')) {
      const group = backref ? this.groups[Number(backref[1]) - 1] : undefined;
      const max = group ? group.max : 0;
      this.noPrefix = true;
      return { min: 0, max, reach: max, plain: text, prefix: null };
    }
    return { min: 1, max: 1, reach: 1, single: text, plain: text, prefix: text };
  }

  emit(s: string): void {
    this.out += s;
  }
}

function escapeLiteral(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

/** Reads a pattern's bounds; with `cap`, unbounded quantifiers count as {n,cap} (see `capped`). */
export function regexBound(source: string, cap?: number): RegexBound & { capped: string } {
  const p = new Parser(source, cap);
  const node = p.disjunction(true);
  return {
    min: node.min, max: node.max, reach: Math.max(node.reach, node.max), unsupported: p.unsupported,
    unboundedAt: p.unboundedAt, lead: p.lead ?? [], capped: p.out,
    ...(p.noPrefix || node.prefix === null ? {} : { prefix: node.prefix }),
  };
}
