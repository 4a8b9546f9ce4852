// Hallucination-pattern checks: hints that a tool result was written by a model (a broken tool,
// an agent that "fills in" what it expected) rather than returned by a real system. Each signal is
// weak evidence on its own: real systems return round prices, ids 1, 2, 3 and bare acknowledgements
// too. So results are scored, never blocked on a signal alone.
//
// Combination: signals are read as independent pieces of evidence, score = 1 − Π(1 − wᵢ). Two
// moderate signals outweigh one strong one, more signals never push past 1, and the order does not
// matter. Weak signals weigh below 0.5 so one alone stays under the default threshold (0.5); only a
// pattern that is hard to meet by accident weighs more (four or more figures all round, a success
// sentence and nothing else, four echoed arguments and nothing else, schema type names or N/A in
// most fields), and nothing weighs more than 0.6.
//
// Reading is bounded (leaves here; nodes, depth and JSON-in-strings in result-walk.ts; characters the
// patterns read), so a huge or deeply nested result costs the same as a moderate one; what lies past
// the bounds is not scored.
import { isRecord, MAX_TEXT, readResult, walk, type Leaf, type Walked } from './result-walk.ts';

export type SignalName =
  | 'round_numbers' // every figure is a multiple of 5, 10, 100 or a half/quarter
  | 'round_times' // every timestamp falls on the hour
  | 'sequential_ids' // 1, 2, 3 or ORD-001, ORD-002 down a list
  | 'template_ids' // 12345, TXN123456789, INV-001, user123
  | 'placeholder_values' // example.com, John Doe, 555 numbers, lorem ipsum, "string", N/A everywhere…
  | 'generic_success' // "Operation completed successfully" and nothing else
  | 'echoed_arguments'; // the arguments repeated back with nothing new

export interface Signal {
  name: SignalName;
  weight: number;
  detail: string;
}

export interface SignalReport {
  /** 0..1: 1 − Π(1 − weight) over the signals. */
  score: number;
  signals: Signal[];
}

const MAX_LEAVES = 2_000;
/** Characters of one string the patterns read, and of all strings together. */
const MAX_STRING = 2_000;
const MAX_CHARS = 256_000;
/** Items of a list compared for sequences. */
const MAX_ROWS = 50;

/**
 * Scores a tool result (a parsed JSON value, or text when it is not JSON) against the call's
 * arguments (parsed JSON, may be undefined). An MCP CallToolResult is read through its
 * structuredContent or its text; JSON inside text is parsed.
 */
export function scoreToolResult(result: unknown, args?: unknown): SignalReport {
  const value = readResult(result);
  const argSet = new Set(walk(args, 500).leaves.flatMap((l) => (typeof l.value === 'boolean' || l.value === null ? [] : [norm(l.value)])));
  argSet.delete('');
  const quoted = argumentPattern([...argSet]);
  const { leaves, arrays, complete } = walk(value, MAX_LEAVES);
  const isText = typeof value === 'string';

  const signals: Signal[] = [];
  const fresh = leaves.filter((l) => !(l.value !== null && typeof l.value !== 'boolean' && argSet.has(norm(l.value))));
  const placeholders = placeholderSignals(fresh, quoted);
  const templates = new Set(fresh.flatMap((l) => (isTemplateLeaf(l) ? [String(l.value)] : [])));
  const numbers = fresh.flatMap((l) => informativeNumbers(l, isText));
  const times = fresh.flatMap(timestampOf);

  push(signals, roundNumbers(numbers));
  push(signals, roundTimes(times));
  push(signals, sequentialIds(arrays));
  if (templates.size > 0) {
    push(signals, { name: 'template_ids', weight: templates.size >= 2 ? 0.35 : 0.25, detail: `ids that look made up: ${sample([...templates])}` });
  }
  signals.push(...placeholders.signals);

  // What is left once echoes, verdicts (ok, "sent", true) and invented values are set aside is the
  // result's information; a result with none of it is either a bare success or an echo.
  let echoed = 0;
  let novel = 0;
  let effusive = false;
  let succeeded = false;
  for (const l of leaves) {
    const verdict = verdictOf(l, quoted);
    if (verdict) {
      effusive ||= verdict.effusive;
      succeeded ||= verdict.success;
    } else if (l.value !== null && typeof l.value !== 'boolean' && argSet.has(norm(l.value))) echoed++;
    else if (!placeholders.fake.has(l) && !templates.has(String(l.value))) novel++;
  }
  if (complete && leaves.length > 0 && novel === 0 && succeeded) {
    push(signals, { name: 'generic_success', weight: effusive ? 0.55 : 0.4, detail: echoed > 0 ? 'a success message with only the arguments and no data of its own' : 'a success message with no data' });
  }
  if (!isText) push(signals, echoedArguments(echoed, novel));

  const score = 1 - signals.reduce((p, s) => p * (1 - s.weight), 1);
  return { score: Math.round(score * 1000) / 1000, signals };
}

function push(signals: Signal[], s: Signal | undefined): void {
  if (s) signals.push(s);
}

/** How a value is compared with the arguments: trimmed, lower case, numbers in one spelling. */
function norm(v: string | number): string {
  const s = String(v).trim().toLowerCase();
  return /^-?\d+(?:\.\d+)?$/.test(s) ? String(Number(s)) : s;
}

function sample(values: readonly (string | number)[]): string {
  return values.slice(0, 3).map((v) => JSON.stringify(v)).join(', ') + (values.length > 3 ? ', …' : '');
}

// --- round numbers and times ----------------------------------------------------------------

const ID_KEY = /(?:^|[_-])(?:id|uuid|guid|sku|key|number|no|num|ref|sid)$|[a-z](?:Id|ID|Number|Key)$|^(?:id|number)$/;
const TIME_KEY = /(?:^|[_-])(?:at|time|timestamp|ts|date|dt|created|updated|modified|start|end|sunrise|sunset|expires)$|[a-z](?:At|Time|Date|Timestamp)$|^(?:ts|dt|created|updated)$/;
// Fields whose values are round by design: HTTP statuses, versions, years, pagination.
const DESIGNED_KEY = /^(?:status|status_?code|statusCode|code|cod|version|api_?version|year|page|per_?page|perPage|page_?size|pageSize|limit|offset|skip|top)$/i;
const DECIMAL_STRING = /^-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$/;

function informativeNumbers(l: Leaf, isText: boolean): number[] {
  if (isText && typeof l.value === 'string') {
    // Figures in prose; digits that are part of a date, time, path, version or id are not figures.
    const found = l.value.match(/(?<![\w.:/#-])-?\d+(?:\.\d+)?(?![\w:/-]|\.\d)/g) ?? [];
    return found.map(Number).filter(informative);
  }
  if (ID_KEY.test(l.key) || TIME_KEY.test(l.key) || DESIGNED_KEY.test(l.key)) return [];
  if (typeof l.value === 'number') return informative(l.value) ? [l.value] : [];
  // Amounts sent as strings ("18.00", "$1,284.60"), but not digit strings, which are ids.
  if (typeof l.value === 'string' && /[.,$]/.test(l.value) && DECIMAL_STRING.test(l.value)) {
    const n = Number(l.value.replace(/[$,]/g, ''));
    return informative(n) ? [n] : [];
  }
  return [];
}

/** Zero and single digits (quantities, flags, counts) say nothing about invention. */
function informative(x: number): boolean {
  return Number.isFinite(x) && x !== 0 && (!Number.isInteger(x) || Math.abs(x) >= 10);
}

/** How much a number looks picked rather than measured. */
function roundness(x: number): number {
  const a = Math.abs(x);
  if (Number.isInteger(a)) return a % 100 === 0 ? 1 : a % 10 === 0 ? 0.7 : a % 5 === 0 ? 0.4 : 0;
  return (a * 2) % 1 === 0 ? 0.4 : (a * 4) % 1 === 0 ? 0.3 : 0;
}

function roundNumbers(numbers: number[]): Signal | undefined {
  if (numbers.length < 3) return undefined;
  const round = numbers.filter((x) => roundness(x) > 0);
  if (round.length / numbers.length < 0.8) return undefined;
  // Evidence grows with each distinct round value, and faster for rounder ones (100 > 10 > 5):
  // three multiples of 100 is rarer by chance than three multiples of 5. A repeated price is one
  // price, and a stray irregular figure weakens the case.
  const distinct = [...new Set(round)];
  const evidence = distinct.reduce((sum, x) => sum + roundness(x), 0);
  const cap = numbers.length >= 4 ? 0.6 : 0.45;
  const weight = Math.min(cap, 1 - 0.75 ** evidence) * (round.length === numbers.length ? 1 : 0.6);
  if (weight < 0.1) return undefined;
  return { name: 'round_numbers', weight: r2(weight), detail: `${round.length} of ${numbers.length} figures are round (${sample(distinct)})` };
}

interface Stamp {
  text: string;
  onTheHour: boolean;
  midnight: boolean;
}

function timestampOf(l: Leaf): Stamp[] {
  if (typeof l.value === 'string') {
    const m = /^\d{4}-\d\d-\d\d[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?/.exec(l.value);
    if (!m) return [];
    const onTheHour = m[2] === '00' && (m[3] ?? '00') === '00' && !/[1-9]/.test(m[4] ?? '');
    return [{ text: l.value, onTheHour, midnight: onTheHour && m[1] === '00' }];
  }
  // Unix seconds or milliseconds in a field named like a time.
  if (typeof l.value === 'number' && TIME_KEY.test(l.key) && l.value >= 1e9 && l.value < 1e13) {
    const seconds = l.value >= 1e12 ? l.value / 1000 : l.value;
    return [{ text: String(l.value), onTheHour: seconds % 3600 === 0, midnight: seconds % 86400 === 0 }];
  }
  return [];
}

function roundTimes(stamps: Stamp[]): Signal | undefined {
  const distinct = [...new Map(stamps.map((s) => [s.text, s])).values()];
  if (distinct.length < 3 || !distinct.every((s) => s.onTheHour)) return undefined;
  const midnight = distinct.every((s) => s.midnight);
  const weight = (distinct.length >= 6 ? 0.4 : 0.3) + (midnight ? 0.05 : 0);
  return { name: 'round_times', weight, detail: `all ${distinct.length} timestamps are ${midnight ? 'at midnight' : 'on the hour'}` };
}

function r2(x: number): number {
  return Math.round(x * 100) / 100;
}

// --- ids ------------------------------------------------------------------------------------

/** The strongest run of consecutive ids in any column of any list. */
function sequentialIds(arrays: Walked['arrays']): Signal | undefined {
  let best: Signal | undefined;
  for (const { key, items } of arrays) {
    for (const column of columns(key, items.slice(0, MAX_ROWS))) {
      const s = sequence(column.values, ID_KEY.test(column.name.replace(/s$/, '')));
      if (s && (!best || s.weight > best.weight)) best = { ...s, detail: `${column.name ? `"${column.name}" ` : ''}${s.detail}` };
    }
  }
  return best;
}

/** A list's columns: one per key of its objects, per index of its tuples, or the list itself. */
function columns(key: string, rows: unknown[]): Array<{ name: string; values: unknown[] }> {
  if (rows.length < 2) return [];
  if (rows.every(isRecord)) return Object.keys(rows[0]).slice(0, 20).map((k) => ({ name: k, values: rows.map((r) => (r as Record<string, unknown>)[k]) }));
  if (rows.every(Array.isArray)) return (rows[0] as unknown[]).slice(0, 20).map((_, i) => ({ name: '', values: rows.map((r) => (r as unknown[])[i]) }));
  return [{ name: key, values: rows }];
}

/** Numbers count as ids only in an id column (quantities 1, 2, 3 are not ids); strings anywhere. */
function sequence(values: unknown[], idColumn: boolean): Signal | undefined {
  const parts: Array<{ prefix: string; digits: string; n: number }> = [];
  for (const v of values) {
    const text = typeof v === 'number' && Number.isInteger(v) && v >= 0 && idColumn ? String(v) : typeof v === 'string' ? v : undefined;
    // Dates, times and versions count up legitimately (one row per day); they are not ids.
    if (text === undefined || text.length > 40 || /\s|[.:]|^\d{4}-\d\d-\d\d/.test(text)) return undefined;
    const m = /^(.*?)(\d{1,12})$/.exec(text);
    if (!m) return undefined;
    parts.push({ prefix: m[1], digits: m[2], n: Number(m[2]) });
  }
  if (parts.some((p) => p.prefix !== parts[0].prefix)) return undefined;
  const step = parts[1].n - parts[0].n;
  if (![1, 10, 100, 1000].includes(Math.abs(step)) || parts.some((p, i) => i > 0 && p.n - parts[i - 1].n !== step)) return undefined;
  // How a person numbers things when inventing them: from 1, 100 or 1001, zero-padded, or in tens.
  const min = Math.min(...parts.map((p) => p.n));
  const invented = [0, 1, 100, 101, 1000, 1001].includes(min) || Math.abs(step) >= 10 || (parts[0].digits.length >= 3 && parts[0].digits[0] === '0' && min <= 10);
  const weight = (parts.length >= 3 ? 0.35 : 0.2) + (invented ? 0.1 : 0);
  return { name: 'sequential_ids', weight: r2(weight), detail: `runs ${sample(values as Array<string | number>)}` };
}

/** 12345, TXN123456789, 123456789012, INV-001, user123, 000000: ids a model writes, not a system. */
function isTemplateLeaf(l: Leaf): boolean {
  const s = typeof l.value === 'number' && ID_KEY.test(l.key) ? String(l.value) : typeof l.value === 'string' ? l.value : '';
  if (s.length === 0 || s.length > 40 || /\s/.test(s) || /^\d{4}-\d\d-\d\d/.test(s)) return false;
  const runs = s.match(/\d+/g) ?? [];
  const last = runs.at(-1) ?? '';
  return runs.some((r) => r.startsWith('1234') || r.startsWith('01234') || /(\d)\1{5}/.test(r))
    || (last.length >= 3 && last[0] === '0' && Number(last) <= 9 && s.endsWith(last))
    || /^(?:user|test|demo|sample|customer|client|abc|xyz|foo|bar)[-_]?\d{1,4}$/i.test(s);
}

// --- placeholders ---------------------------------------------------------------------------

const PATTERNS: ReadonlyArray<{ kind: string; weight: number; re: RegExp }> = [
  { kind: 'reserved example domain', weight: 0.45, re: /\bexample\.(?:com|org|net)\b|@[\w.-]+\.(?:test|invalid|example)\b/i },
  { kind: 'stock name', weight: 0.4, re: /\b(?:john|jane|richard|mary) (?:q\. )?doe\b|\b(?:max|erika) mustermann\b/i },
  { kind: 'stock name', weight: 0.3, re: /\b(?:john|jane) smith\b/i },
  { kind: 'fictional phone number', weight: 0.4, re: /(?<!\d)(?:\+?1[-. ]?)?(?:\(555\)|555)[-. ]?\d{3}[-. ]?\d{4}(?!\d)|(?<!\d)555[-. ]?01\d\d(?!\d)|(?<!\d)(?:\+?1[-. ]?)?\(?\d{3}\)?[-. ]?555[-. ]?\d{4}(?!\d)|(?<!\d)\(?123\)?[-. ]?456[-. ]?7890(?!\d)/ },
  { kind: 'lorem ipsum', weight: 0.45, re: /\blorem ipsum\b|\bdolor sit amet\b|\bconsectetur adipiscing\b/i },
  { kind: 'placeholder address', weight: 0.4, re: /\b123 (?:main|fake|elm|oak|any) (?:st|street|ave|avenue|rd|road)\b|\bany(?:town|ville)\b/i },
  { kind: 'placeholder zip code', weight: 0.3, re: /\b(?:USA|US|[A-Z]{2}),? (?:00000|12345|99999)\b/ },
  { kind: 'placeholder card number', weight: 0.4, re: /(?<!\d)1234[- ]?5678[- ]?9012[- ]?3456(?!\d)|(?<!\d)4111[- ]?1111[- ]?1111[- ]?1111(?!\d)|(?<!\d)(\d)\1{3}([- ]?)\1{4}\2\1{4}\2\1{4}(?!\d)/ },
  { kind: 'template text', weight: 0.35, re: /\[(?:insert|your|enter)\b[^\]]*\]|<(?:insert|your)[ _-][^>]*>|\{\{\s*\w+\s*\}\}|\byour[_ -](?:api[_ -]key|name|email|company)\b|\bplaceholder\b|\b(?:sample|dummy|fake|mock) (?:data|issue|user|customer|product|order|description|text|value|name)\b/i },
  { kind: 'fictional company', weight: 0.35, re: /\b(?:acme (?:corp|corporation|inc)|globex|initech|umbrella corp(?:oration)?|hooli|contoso|fabrikam|wayne enterprises|stark industries|dunder mifflin|vandelay industries|cyberdyne)\b/i },
  { kind: 'generic item name', weight: 0.3, re: /^(?:(?:product|item|customer|user|company|project|task) (?:[a-c]|[1-9])|test user|sample product)$/i },
];
const FILLER = /^(?:n\/a|tbd|tba|tbc|placeholder|x{3,}|todo|\?{2,}|-)$/i;
const TYPE_NAME = /^(?:string|integer|number|boolean|float|date-time|uuid|<[a-z _-]+>)$/i;
const NEW_YEAR = /(?<!\d)(?:19|20)\d\d-01-01(?:[T ]00:00(?::00(?:\.0+)?)?)?(?!\d)/g;

/** One signal per kind of placeholder found (ten example.com addresses are one piece of evidence). */
function placeholderSignals(fresh: Leaf[], quoted: RegExp | undefined): { signals: Signal[]; fake: Set<Leaf> } {
  const kinds = new Map<string, { weight: number; example: string }>();
  const fake = new Set<Leaf>();
  const note = (kind: string, weight: number, example: string, leaf?: Leaf): void => {
    if (leaf) fake.add(leaf);
    if ((kinds.get(kind)?.weight ?? 0) < weight) kinds.set(kind, { weight, example });
  };
  let budget = MAX_CHARS;
  let strings = 0;
  let fillers = 0;
  let typeNames = 0;
  const newYears: string[] = [];
  for (const l of fresh) {
    if (typeof l.value !== 'string' || budget <= 0) continue;
    // A text result is one long leaf; in structured results each string gets MAX_STRING.
    let s = l.value.slice(0, Math.min(budget, fresh.length === 1 ? MAX_TEXT : MAX_STRING));
    budget -= s.length;
    // Fillers stand in for data, so they are counted among data fields, not statuses.
    if (!VERDICT_KEY.test(l.key)) strings++;
    // An argument quoted in the result ("No such customer: 'x'") is the caller's, not invented.
    if (quoted) s = s.replace(quoted, ' ');
    for (const p of PATTERNS) {
      const m = p.re.exec(s);
      if (m) note(p.kind, p.weight, m[0], l);
    }
    if (FILLER.test(s.trim()) && !VERDICT_KEY.test(l.key)) fillers++;
    if (TYPE_NAME.test(s.trim()) && !/type|format|kind/i.test(l.key)) {
      typeNames++;
      fake.add(l);
    }
    for (const d of s.match(NEW_YEAR) ?? []) newYears.push(d);
  }
  if (fillers >= 2 && fillers / strings >= 0.3) note('filler values (N/A, TBD)', fillers >= 3 && fillers / strings >= 0.6 ? 0.55 : 0.4, `${fillers} of ${strings} strings`);
  if (typeNames > 0) note('schema type names as values', typeNames >= 3 ? 0.6 : typeNames === 2 ? 0.5 : 0.35, `${typeNames} values such as "string"`);
  // One January 1st is often a real period boundary; the same date again and again, or a timestamp
  // claiming exactly New Year's midnight, is what a model writes when it has no date.
  if (newYears.some((d) => d.startsWith('1970-01-01'))) note('epoch date', 0.35, '1970-01-01');
  else if (newYears.length >= 2) note('new-year date', 0.35, newYears[0]);
  else if (newYears.length === 1 && newYears[0].length > 10) note('new-year date', 0.25, newYears[0]);
  const signals = [...kinds].map(([kind, k]): Signal => ({ name: 'placeholder_values', weight: k.weight, detail: `${kind}: ${JSON.stringify(k.example)}` }));
  return { signals, fake };
}

/** Matches the arguments' strings (4+ characters, longest first) where a result quotes them. */
function argumentPattern(values: string[]): RegExp | undefined {
  const quotable = values.filter((v) => v.length >= 4).sort((a, b) => b.length - a.length).slice(0, 50);
  return quotable.length > 0 ? new RegExp(quotable.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gi') : undefined;
}

// --- success messages and echoes ------------------------------------------------------------

const SUCCESS_WORDS = new Set('success successful successfully succeeded ok okay done complete completed processed sent created updated deleted removed saved submitted queued accepted confirmed executed performed finished applied scheduled cancelled canceled booked posted added issued refunded approved true'.split(' '));
const FILLER_WORDS = new Set('the a an has have had been was were is are be your you our we it its this that all request operation action task process job and with without no any errors to of for on in thank thanks please now changes data record records entry email mail message refund payment order event meeting ticket branch file subscription contact user account customer invoice item booking reservation transaction charge issue comment update note reminder notification post document profile status'.split(' '));
const VERDICT_KEY = /^(?:status|state|result|message|msg|detail|outcome)$/i;
const SUCCESS_KEY = /^(?:success|ok|done|completed|sent|created|updated|deleted|processed|saved|confirmed)$/i;

/**
 * A leaf that states an outcome rather than carrying data: a boolean, null, a sentence made only of
 * success and filler words (after removing the arguments it quotes), a short status word, or a 2xx code.
 */
function verdictOf(l: Leaf, quoted: RegExp | undefined): { success: boolean; effusive: boolean } | undefined {
  const v = l.value;
  if (v === null) return { success: false, effusive: false };
  if (typeof v === 'boolean') return { success: v && SUCCESS_KEY.test(l.key), effusive: false };
  if (typeof v === 'number') return /^(?:status|status_?code|statusCode|code)$/i.test(l.key) && v >= 200 && v < 300 ? { success: true, effusive: false } : undefined;
  if (v.length > 200) return undefined;
  const text = (quoted ? v.replace(quoted, ' ') : v).toLowerCase();
  const words: string[] = text.match(/[^\s.,;:!()"']+/g) ?? [];
  const success = words.some((w) => SUCCESS_WORDS.has(w));
  if (words.length > 0 && success && words.every((w) => SUCCESS_WORDS.has(w) || FILLER_WORDS.has(w))) {
    return { success, effusive: words.length >= 3 || words.includes('successfully') };
  }
  if (VERDICT_KEY.test(l.key) && words.length <= 4 && !/\d/.test(v)) return { success, effusive: false };
  return undefined;
}

/**
 * The result's data is (almost) all the caller's own arguments. A real write returns what it made
 * (an id, a time, a status of its own); a model asked to "do X" tends to say it did X.
 */
function echoedArguments(echoed: number, novel: number): Signal | undefined {
  let weight = 0;
  if (novel === 0 && echoed >= 2) weight = echoed >= 4 ? 0.55 : echoed === 3 ? 0.45 : 0.35;
  else if (echoed >= 3 && novel * 3 <= echoed) weight = 0.3;
  if (weight === 0) return undefined;
  return { name: 'echoed_arguments', weight, detail: `${echoed} of ${echoed + novel} values are the call's own arguments` };
}
