// How far a regular expression can reach from where a match starts: the longest text it can match and
// the furthest character it reads (lookaheads and \b read past a match's end). A stream sanitizer holds
// back only that much, so every pattern it runs must be bounded; this reads JavaScript regex source
// (no `u` or `v` flag) well enough to prove it, to cap unbounded quantifiers at a given length, and to
// name the pattern's leading literal characters (what a match in progress must begin with).

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
}

interface Node {
  min: number;
  max: number;
  reach: number;
  /** One character wide, always (a literal, an escape class, a set, or `.`). */
  single?: string;
}

const ZERO: Node = { min: 0, max: 0, reach: 0 };

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
      best = best ? { min: Math.min(best.min, alt.min), max: Math.max(best.max, alt.max), reach: Math.max(best.reach, alt.reach) } : alt;
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
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      const start = this.i;
      const atom = this.term();
      reach = Math.max(reach, max + atom.reach);
      min += atom.min;
      max += atom.max;
      if (leading && this.lead) {
        if (atom.single !== undefined && atom.min === 1 && atom.max === 1) this.lead.push(atom.single);
        else if (!(atom.min === 0 && atom.max === 0 && atom.reach <= 1 && /^\\[bB]$/.test(this.src.slice(start, this.i)))) leading = false;
      }
    }
    return { min, max, reach };
  }

  term(): Node {
    const start = this.i;
    const c = this.src[this.i];
    if (c === '^' || c === '$') {
      this.unsupported.push({ what: c === '^' ? 'the anchor ^' : 'the anchor $', at: start });
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
      atom = { min: 1, max: 1, reach: 1, single: c === '.' ? '.' : escapeLiteral(c) };
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
    return { min: lo * atom.min, max: hi * atom.max, reach: (hi - 1) * atom.max + atom.reach };
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
      return { min: 0, max: 0, reach: inner.reach };
    }
    if (head === '(?<=' || head === '(?<!') {
      this.unsupported.push({ what: `the lookbehind ${head}`, at: start });
      return ZERO;
    }
    return inner;
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
    return { min: 1, max: 1, reach: 1, single: text };
  }

  escape(): Node {
    const rest = this.src.slice(this.i);
    const m = /^\\(?:[bB]|k<[^>]+>|[1-9]\d*|c[A-Za-z]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|[\s\S])/.exec(rest)!;
    const text = m[0];
    this.emit(text);
    this.i += text.length;
    if (text === '\\b' || text === '\\B') return { min: 0, max: 0, reach: 1 };
    const backref = /^\\([1-9]\d*)$/.exec(text);
    if (backref || text.startsWith('\\k<')) {
      const group = backref ? this.groups[Number(backref[1]) - 1] : undefined;
      const max = group ? group.max : 0;
      return { min: 0, max, reach: max };
    }
    return { min: 1, max: 1, reach: 1, single: text };
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
  };
}
