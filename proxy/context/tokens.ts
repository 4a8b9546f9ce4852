// Token counts for the context window, as the providers bill them. OpenAI models are counted with
// tiktoken and the OpenAI cookbook's chat formula; Anthropic's tokenizer is not public, so its counts
// are a byte-based estimate scaled by a per-model ratio learned from the usage each answer reports.
// Every request resends the whole conversation, so per-message counts are cached by a hash of the
// message, and a message equal to its counterpart in the conversation's previous request is not even
// hashed: re-counting a long conversation costs a string comparison per message and a tokenization
// of the new ones.
import { hash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Tiktoken } from 'tiktoken';
import type { Message, Request, ToolCall, ToolDefinition, ToolResult } from '../canonical.ts';
import { encodingFor, type Encoding } from './model-windows.ts';

export type TokenizerFamily = 'openai' | 'anthropic';

export interface TokenCounter {
  /** Tokens of one canonical message, as the provider counts it (content, tool calls, tool results, per-message overhead). Cached by a hash of the message's content, so re-counting a long conversation costs only its new messages. */
  countMessage(model: string, family: TokenizerFamily, m: Message): number;
  /** Tokens of a whole request: its messages, its tool definitions, and the reply priming. */
  countRequest(model: string, family: TokenizerFamily, req: Pick<Request, 'messages' | 'tools'>): number;
  /**
   * A cheap upper bound on countRequest, never below it: the same formula with each text's UTF-8
   * byte length for its token count (a BPE token spans at least one byte). It needs no tokenizer, so
   * a request that fits by its bound is never tokenized, and the tokenizer's tables (tens of MB) are
   * loaded only once a conversation comes near its window.
   */
  boundRequest(model: string, family: TokenizerFamily, req: Pick<Request, 'messages' | 'tools'>): number;
  /** Tokens of a plain text (e.g. a note Warden adds). */
  countText(model: string, family: TokenizerFamily, text: string): number;
  /**
   * Learns from a real response: Warden's estimate for the request (what countRequest returned, the
   * current ratio applied) vs the input tokens the upstream reported. Used for the anthropic family,
   * whose tokenizer is not public.
   */
  calibrate(model: string, estimated: number, reported: number): void;
  /** The current anthropic ratio for a model (reported / raw estimate), 1 until calibrated. */
  ratio(model: string): number;
}

// OpenAI cookbook, num_tokens_from_messages: each message is framed as <|start|>{role}<|message|>…<|end|>,
// a participant name costs one more, and every reply is primed with <|start|>assistant<|message|>.
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING = 3;
// Not in the cookbook: a tool call is counted as its name and arguments plus framing like a message's.
const TOKENS_PER_TOOL_CALL = 3;
// OpenAI cookbook, num_tokens_for_tools: the constants it found (and checked against the API) for
// gpt-4o / gpt-4o-mini (o200k_base) and gpt-4 / gpt-3.5-turbo (cl100k_base).
const FUNC_INIT: Record<Encoding, number> = { o200k_base: 7, cl100k_base: 10 };
const PROP_INIT = 3;
const PROP_KEY = 3;
const ENUM_INIT = -3;
const ENUM_ITEM = 3;
const FUNC_END = 12;

// Claude's tokenizer averages about 3.5 bytes of UTF-8 per token on English and code. Counting bytes
// rather than characters gives non-Latin scripts and emoji their larger share of tokens. The framing
// constants are rough; the learned ratio absorbs what they miss.
const ANTHROPIC_BYTES_PER_TOKEN = 3.5;
const ANTHROPIC_TOKENS_PER_MESSAGE = 4;
/** A tool_use or tool_result block's framing, or a tool definition's. */
const ANTHROPIC_TOKENS_PER_BLOCK = 4;
// The system prompt Anthropic adds whenever tools are present (its docs list 159 to 530 tokens by
// model and tool_choice; 346 for current models with tool_choice auto).
const ANTHROPIC_TOOL_PROMPT = 346;

// Calibration: each sample is bounded so one odd answer cannot wreck the ratio; the first samples are
// averaged (so the ratio settles at once), then the newest weighs 0.2, following drift over ~10 calls.
const RATIO_MIN = 0.5;
const RATIO_MAX = 2;
const RATIO_WEIGHT = 0.2;
// Model names come from traffic; the ratios kept are bounded all the same.
const MAX_CALIBRATED_MODELS = 1024;

const DEFAULT_CACHE_ENTRIES = 50_000;
// The latest request of this many conversations is kept (its text, not its wire objects) to compare
// the next one against; a sidecar serves one agent, which rarely runs more sessions at once.
const RECENT_CONVERSATIONS = 16;

// One encoder per encoding for the whole process, shared by every counter: building one parses a
// multi-megabyte BPE table into WASM memory (30-150 ms), they hold no per-use state, and are never freed.
// tiktoken itself is loaded on first use too (its WASM module is ~20 MB resident): a sidecar whose
// requests all fit by their bound (boundRequest) never loads it.
const encoders = new Map<Encoding, Tokens>();
const require = createRequire(import.meta.url);

function encoder(e: Encoding): Tokens {
  let enc = encoders.get(e);
  if (!enc) encoders.set(e, (enc = exactTokens((require('tiktoken') as typeof import('tiktoken')).get_encoding(e))));
  return enc;
}

/** Token counts of one message or tool definition, by encoding (filled as encodings ask for them). */
type Counts = Partial<Record<Encoding, number>>;

/**
 * A bounded map that forgets the least recently used entry first (a Map iterates in insertion order).
 * An entry used within the last max/2 insertions is left where it is, so that a hit is one lookup:
 * it is at least max/2 insertions away from eviction anyway.
 */
class Lru {
  private readonly entries = new Map<string, { counts: Counts; used: number }>();
  private readonly max: number;
  private clock = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** The entry for a key, created if missing, and now among the most recently used. */
  entry(key: string): Counts {
    const found = this.entries.get(key);
    if (found && this.clock - found.used < this.max / 2) return found.counts;
    if (found) this.entries.delete(key);
    const e = { counts: found?.counts ?? {}, used: this.clock++ };
    this.entries.set(key, e);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    return e.counts;
  }
}

/** The participant name of an OpenAI chat message: the canonical form keeps it only in the wire object. */
function nameOf(m: Message): string | undefined {
  const raw = m.raw as { role?: unknown; name?: unknown } | null | undefined;
  return typeof raw === 'object' && raw !== null && typeof raw.role === 'string' && typeof raw.name === 'string' ? raw.name : undefined;
}

/** The tool results whose contents count: a tool-role message carries its result as its text too. */
function countedResults(m: Message): readonly ToolResult[] {
  return m.role === 'tool' ? [] : (m.toolResults ?? []);
}

/** A length-prefixed field, so that no two different messages hash the same text. */
function field(s: string): string {
  return `${s.length}:${s}`;
}

/** A hash of everything a message's count depends on; sha256 over the text, far cheaper than BPE. */
function messageDigest(m: Message): string {
  const name = nameOf(m);
  let s = `${m.role}\0${name === undefined ? '-' : field(name)}${field(m.text)}`;
  for (const c of m.toolCalls ?? []) s += `\x01${field(c.id)}${field(c.name)}${field(c.arguments)}`;
  for (const r of m.toolResults ?? []) s += `\x02${field(r.toolCallId)}`;
  for (const r of countedResults(m)) s += `\x03${field(r.content)}`;
  return hash('sha256', s, 'base64');
}

function toolDigest(t: ToolDefinition): string {
  // The leading tag keeps tool definitions and messages (which start with a role) apart in the cache.
  return hash('sha256', `\x04${field(t.name)}${field(t.description ?? '')}${JSON.stringify(t.parameters) ?? ''}`, 'base64');
}

/** What a message's count depends on, kept from an earlier request, with its digest. */
interface Seen {
  role: string;
  text: string;
  name: string | undefined;
  toolCalls: readonly ToolCall[] | undefined;
  toolResults: readonly ToolResult[] | undefined;
  digest: string;
}

function seen(m: Message, digest: string): Seen {
  return { role: m.role, text: m.text, name: nameOf(m), toolCalls: m.toolCalls, toolResults: m.toolResults, digest };
}

/** Whether a message has the same digest input as one seen before, compared field by field. */
function sameMessage(a: Seen, b: Message): boolean {
  if (a.role !== b.role || a.text !== b.text || a.name !== nameOf(b)) return false;
  const ac = a.toolCalls ?? [];
  const bc = b.toolCalls ?? [];
  if (ac.length !== bc.length || ac.some((c, i) => c.id !== bc[i].id || c.name !== bc[i].name || c.arguments !== bc[i].arguments)) return false;
  const ar = a.toolResults ?? [];
  const br = b.toolResults ?? [];
  return ar.length === br.length && ar.every((r, i) => r.toolCallId === br[i].toolCallId && (b.role === 'tool' || r.content === br[i].content));
}

/** How many tokens a text is: exactly, by an encoder, or bounded from above, by its UTF-8 bytes. */
type Tokens = (text: string) => number;

function exactTokens(enc: Tiktoken): Tokens {
  // encode_ordinary: text that spells a special token ("<|endoftext|>") is counted as text, not refused.
  return (text) => (text === '' ? 0 : enc.encode_ordinary(text).length);
}

const byteBound: Tokens = (text) => Buffer.byteLength(text, 'utf8');

function openaiMessageTokens(tokens: Tokens, m: Message): number {
  let n = TOKENS_PER_MESSAGE + tokens(m.role) + tokens(m.text);
  const name = nameOf(m);
  if (name !== undefined) n += TOKENS_PER_NAME + tokens(name);
  for (const c of m.toolCalls ?? []) n += TOKENS_PER_TOOL_CALL + tokens(c.name) + tokens(c.arguments);
  for (const r of countedResults(m)) n += tokens(r.content);
  return n;
}

function withoutFinalDot(s: string): string {
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/**
 * One function definition by the cookbook's num_tokens_for_tools: "name:description", then per
 * property "key:type:description" and its enum values, with the cookbook's constants. The cookbook
 * only covers flat properties; the rest of a property's schema (nested objects, array items, formats,
 * defaults) is counted by its JSON text, which over-counts the terser form OpenAI renders it in.
 */
function openaiToolTokens(tokens: Tokens, encoding: Encoding, t: ToolDefinition): number {
  let n = FUNC_INIT[encoding] + tokens(`${t.name}:${withoutFinalDot(t.description ?? '')}`);
  const properties = Object.entries(objectOf(objectOf(t.parameters)?.properties) ?? {});
  if (properties.length === 0) return n;
  n += PROP_INIT;
  for (const [key, schema] of properties) {
    const { type, description, enum: values, ...rest } = objectOf(schema) ?? {};
    n += PROP_KEY;
    if (Array.isArray(values)) {
      n += ENUM_INIT;
      for (const v of values) n += ENUM_ITEM + tokens(typeof v === 'string' ? v : JSON.stringify(v));
    }
    const typeText = Array.isArray(type) ? type.join(' | ') : typeof type === 'string' ? type : '';
    n += tokens(`${key}:${typeText}:${withoutFinalDot(typeof description === 'string' ? description : '')}`);
    if (Object.keys(rest).length > 0) n += tokens(JSON.stringify(rest));
  }
  return n;
}

function objectOf(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function bytesToTokens(...texts: string[]): number {
  let bytes = 0;
  for (const t of texts) bytes += Buffer.byteLength(t, 'utf8');
  return bytes / ANTHROPIC_BYTES_PER_TOKEN;
}

// Not cached: a byte length is cheaper than the hash that would key it.
function anthropicMessageRaw(m: Message): number {
  let n = ANTHROPIC_TOKENS_PER_MESSAGE + bytesToTokens(m.text);
  for (const c of m.toolCalls ?? []) n += ANTHROPIC_TOKENS_PER_BLOCK + bytesToTokens(c.id, c.name, c.arguments);
  for (const r of m.toolResults ?? []) n += ANTHROPIC_TOKENS_PER_BLOCK + bytesToTokens(r.toolCallId);
  for (const r of countedResults(m)) n += bytesToTokens(r.content);
  return n;
}

function anthropicToolRaw(t: ToolDefinition): number {
  return ANTHROPIC_TOKENS_PER_BLOCK + bytesToTokens(t.name, t.description ?? '', JSON.stringify(t.parameters) ?? '');
}

export function createTokenCounter(opts: { cacheEntries?: number } = {}): TokenCounter {
  const cache = new Lru(opts.cacheEntries ?? DEFAULT_CACHE_ENTRIES);
  // Within one request a stage counts the same message objects many times over (each candidate cut
  // of the window); their digests are remembered per object. Canonical messages and tool definitions
  // are never edited in place (stages rewrite by copying), so a digest cannot go stale.
  const digests = new WeakMap<object, string>();
  // Each request resends its conversation as new objects. The previous request of a conversation is
  // kept, and a message equal to the one at the same place in it takes that one's digest: comparing
  // strings is several times cheaper than hashing them (no UTF-8 encoding, no SHA rounds).
  const recent: Seen[][] = [];
  const ratios = new Map<string, { ratio: number; samples: number }>();

  /**
   * For a new request (its last message not counted before: a stage's candidate cuts reuse counted
   * messages), the messages equal to those at the same place in the request it continues, which lend
   * their digests; undefined for a list that is not a new request.
   */
  function recall(messages: readonly Message[]): (Seen | undefined)[] | undefined {
    const last = messages.at(-1);
    if (!last || digests.has(last)) return undefined;
    // The request it continues has the same message next to last (the last may be a retried turn, edited).
    const at = recent.findIndex((p) => {
      const k = Math.min(p.length, messages.length) - 2;
      return k >= 0 && sameMessage(p[k], messages[k]);
    });
    const previous = at < 0 ? [] : recent.splice(at, 1)[0];
    return messages.map((m, i) => {
      const s = previous[i];
      if (s === undefined || !sameMessage(s, m)) return undefined;
      digests.set(m, s.digest);
      return s;
    });
  }

  /** Keeps a new request, once counted, for the next one to be compared with. */
  function keep(messages: readonly Message[], known: readonly (Seen | undefined)[]): void {
    recent.unshift(known.map((s, i) => s ?? seen(messages[i], digests.get(messages[i])!)));
    if (recent.length > RECENT_CONVERSATIONS) recent.pop();
  }

  function digest<T extends object>(o: T, of: (o: T) => string): string {
    let d = digests.get(o);
    if (d === undefined) digests.set(o, (d = of(o)));
    return d;
  }

  function openaiMessage(encoding: Encoding, m: Message, known?: string): number {
    const counts = cache.entry(known ?? digest(m, messageDigest));
    return (counts[encoding] ??= openaiMessageTokens(encoder(encoding), m));
  }

  function openaiTool(encoding: Encoding, t: ToolDefinition): number {
    const counts = cache.entry(digest(t, toolDigest));
    return (counts[encoding] ??= openaiToolTokens(encoder(encoding), encoding, t));
  }

  function ratio(model: string): number {
    return ratios.get(model)?.ratio ?? 1;
  }

  const counter: TokenCounter = {
    countMessage(model, family, m) {
      return family === 'openai' ? openaiMessage(encodingFor(model), m) : Math.ceil(anthropicMessageRaw(m) * ratio(model));
    },

    countRequest(model, family, req) {
      if (family === 'openai') {
        const encoding = encodingFor(model);
        const known = recall(req.messages);
        let n = REPLY_PRIMING;
        req.messages.forEach((m, i) => (n += openaiMessage(encoding, m, known?.[i]?.digest)));
        if (req.tools.length > 0) n += FUNC_END;
        for (const t of req.tools) n += openaiTool(encoding, t);
        if (known) keep(req.messages, known);
        return n;
      }
      let raw = req.tools.length > 0 ? ANTHROPIC_TOOL_PROMPT : 0;
      for (const m of req.messages) raw += anthropicMessageRaw(m);
      for (const t of req.tools) raw += anthropicToolRaw(t);
      return Math.ceil(raw * ratio(model));
    },

    boundRequest(model, family, req) {
      // Anthropic counts are a byte estimate already: the count is as cheap as a bound would be.
      if (family !== 'openai') return counter.countRequest(model, family, req);
      const encoding = encodingFor(model);
      let n = REPLY_PRIMING;
      for (const m of req.messages) n += openaiMessageTokens(byteBound, m);
      if (req.tools.length > 0) n += FUNC_END;
      for (const t of req.tools) n += openaiToolTokens(byteBound, encoding, t);
      return n;
    },

    countText(model, family, text) {
      return family === 'openai' ? encoder(encodingFor(model))(text) : Math.ceil(bytesToTokens(text) * ratio(model));
    },

    calibrate(model, estimated, reported) {
      if (!(Number.isFinite(estimated) && Number.isFinite(reported) && estimated > 0 && reported > 0)) return;
      const prev = ratios.get(model);
      const current = prev?.ratio ?? 1;
      // The estimate had the current ratio applied; the sample is measured against the raw estimate.
      const sample = Math.min(RATIO_MAX, Math.max(RATIO_MIN, (reported * current) / estimated));
      const samples = (prev?.samples ?? 0) + 1;
      const next = current + Math.max(1 / samples, RATIO_WEIGHT) * (sample - current);
      if (!prev && ratios.size >= MAX_CALIBRATED_MODELS) ratios.delete(ratios.keys().next().value!);
      ratios.set(model, { ratio: next, samples });
    },

    ratio,
  };
  return counter;
}
