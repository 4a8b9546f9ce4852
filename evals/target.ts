// Sending one eval case to a target (an OpenAI or Anthropic base URL: the vendor, a gateway, or a
// Warden sidecar) and reading back what it did. A trial is an observation, never an exception: an
// HTTP error, a refused connection or a timeout is recorded on the Observation and fails the trial's
// checks, so one bad trial cannot sink a run. Only the caller's own abort throws.
//
// Wire differences are data (one adapter per API below), so the runner and judge never branch on the API.
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import type { EvalCase, Judge, Observation, Pact } from './types.ts';

export type TargetApi = 'openai' | 'anthropic';

export interface SendOptions {
  /** Overrides the case's model (e.g. a baseline's dated snapshot). */
  model?: string;
  headers?: Record<string, string>;
  apiKey?: string;
  /** The whole call, request to last byte (default 60 s). */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  prices?: Pact['prices'];
  /** Aborting rejects with the signal's reason (the run is being cancelled, not the trial failing). */
  signal?: AbortSignal;
}

type Json = Record<string, any>;

interface Adapter {
  path: string;
  headers(apiKey: string | undefined): Record<string, string>;
  body(c: EvalCase, model: string): Json;
  parse(json: Json): Pick<Observation, 'text' | 'toolCalls' | 'finishReason' | 'model' | 'systemFingerprint' | 'usage'>;
}

const ANTHROPIC_MAX_TOKENS = 1024; // Anthropic requires max_tokens; a case that needs more says so

const ADAPTERS: Record<TargetApi, Adapter> = {
  openai: {
    path: '/chat/completions',
    headers: (key): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {}),
    body: (c, model) => ({
      model,
      messages: c.messages.map((m) => ({ role: m.role, content: m.content })),
      ...(c.tools.length > 0 && { tools: c.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } })) }),
      // max_completion_tokens: the only limit reasoning models accept, and every current chat model does.
      ...(c.maxTokens !== undefined && { max_completion_tokens: c.maxTokens }),
      ...(c.temperature !== undefined && { temperature: c.temperature }),
    }),
    parse(json) {
      const choice = json.choices?.[0] ?? {};
      const message = choice.message ?? {};
      const content = typeof message.content === 'string' ? message.content : partsText(message.content);
      return {
        // A refusal comes back in its own field with null content; the checks read it as the reply.
        text: content || (typeof message.refusal === 'string' ? message.refusal : ''),
        toolCalls: (Array.isArray(message.tool_calls) ? message.tool_calls : [])
          .filter((c: Json) => typeof c?.function?.name === 'string')
          .map((c: Json) => ({ name: c.function.name, arguments: typeof c.function.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function.arguments ?? {}) })),
        finishReason: choice.finish_reason ?? undefined,
        model: json.model ?? undefined,
        systemFingerprint: json.system_fingerprint ?? undefined,
        usage: json.usage ? { inputTokens: json.usage.prompt_tokens ?? 0, outputTokens: json.usage.completion_tokens ?? 0 } : undefined,
      };
    },
  },
  anthropic: {
    path: '/v1/messages',
    headers: (key) => ({ 'anthropic-version': '2023-06-01', ...(key ? { 'x-api-key': key } : {}) }),
    body(c, model) {
      const system = c.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
      return {
        model,
        max_tokens: c.maxTokens ?? ANTHROPIC_MAX_TOKENS,
        ...(system && { system }),
        messages: c.messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role, content: m.content })),
        ...(c.tools.length > 0 && { tools: c.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters })) }),
        ...(c.temperature !== undefined && { temperature: c.temperature }),
      };
    },
    parse(json) {
      const blocks: Json[] = Array.isArray(json.content) ? json.content : [];
      return {
        text: blocks.filter((b) => b?.type === 'text').map((b) => String(b.text ?? '')).join(''),
        toolCalls: blocks.filter((b) => b?.type === 'tool_use').map((b) => ({ name: String(b.name), arguments: JSON.stringify(b.input ?? {}) })),
        finishReason: json.stop_reason ?? undefined,
        model: json.model ?? undefined,
        usage: json.usage ? { inputTokens: json.usage.input_tokens ?? 0, outputTokens: json.usage.output_tokens ?? 0 } : undefined,
      };
    },
  },
};

function partsText(content: unknown): string {
  return Array.isArray(content) ? content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('') : '';
}

const DEFAULT_TIMEOUT_MS = 60_000;
const ERROR_BODY_CHARS = 300; // enough of a non-JSON error page to recognise it

function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

/** Sends one case to the target as a single non-streaming call and reports what came back. */
export async function sendCase(target: string, api: TargetApi, evalCase: EvalCase, opts: SendOptions = {}): Promise<Observation> {
  const adapter = ADAPTERS[api];
  const asked = opts.model ?? evalCase.model;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const started = performance.now();
  const failed = (status: number, error: string): Observation => ({ status, error, text: '', toolCalls: [], latencyMs: performance.now() - started });
  try {
    const res = await request(joinUrl(target, adapter.path), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adapter.headers(opts.apiKey), ...opts.headers },
      body: JSON.stringify(adapter.body(evalCase, asked)),
      signal,
      dispatcher: opts.dispatcher,
    });
    const raw = await res.body.text();
    const latencyMs = performance.now() - started;
    let json: Json | undefined;
    try {
      json = JSON.parse(raw);
    } catch { /* an HTML error page, a proxy's plain text */ }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      // Both providers (and Warden's own errors) put the message at error.message.
      const message = typeof json?.error?.message === 'string' ? json.error.message : raw.slice(0, ERROR_BODY_CHARS) || 'no body';
      return { ...failed(res.statusCode, `HTTP ${res.statusCode}: ${message}`), latencyMs };
    }
    if (!json || typeof json !== 'object') return { ...failed(res.statusCode, `the target answered ${res.statusCode} with a body that is not JSON: ${raw.slice(0, ERROR_BODY_CHARS)}`), latencyMs };
    const parsed = adapter.parse(json);
    const price = opts.prices?.[asked];
    const costUsd = price && parsed.usage
      ? (parsed.usage.inputTokens * price.inputPerMTok + parsed.usage.outputTokens * price.outputPerMTok) / 1e6
      : undefined;
    return { status: res.statusCode, ...parsed, latencyMs, ...(costUsd !== undefined && { costUsd }) };
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (timeout.aborted) return failed(0, `timed out after ${timeoutMs} ms`);
    const e = err as { code?: string; message?: string };
    return failed(0, `cannot reach ${target}: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`.trim());
  }
}

/** In the judge's system prompt, so fakes (and audit readers) can tell a judge call from a trial. */
export const JUDGE_MARKER = '[warden-eval-judge]';

const JUDGE_SYSTEM = `${JUDGE_MARKER} You grade an AI assistant's reply against criteria.
Read the conversation, the reply and the criteria, then answer ONLY with JSON, no other text:
{"score": <a number from 0 to 1>, "reason": "<one sentence>"}
1 means the reply fully meets the criteria, 0 that it does not meet them at all.`;

const JUDGE_MAX_TOKENS = 300; // a score and one sentence

/** The judge's user message: the graded conversation, the reply and the criteria, each in its own tag. */
export function judgePrompt(evalCase: EvalCase, observation: Observation, criteria: string): string {
  const conversation = evalCase.messages.map((m) => `${m.role}: ${m.content}`).join('\n');
  const calls = observation.toolCalls.map((c) => `[tool call ${c.name} ${c.arguments}]`).join('\n');
  const reply = [observation.text, calls].filter(Boolean).join('\n') || '(empty reply)';
  return `<conversation>\n${conversation}\n</conversation>\n<reply>\n${reply}\n</reply>\n<criteria>\n${criteria}\n</criteria>`;
}

/** Asks the judge model, through the same target, to grade replies; throws when the judge fails or is unreadable. */
export function createJudge(target: string, api: TargetApi, opts: Omit<SendOptions, 'model' | 'prices'> = {}): Judge {
  return async ({ model, criteria, evalCase, observation }) => {
    const judgeCase: EvalCase = {
      id: `${evalCase.id}/judge`,
      model,
      messages: [{ role: 'system', content: JUDGE_SYSTEM }, { role: 'user', content: judgePrompt(evalCase, observation, criteria) }],
      tools: [],
      maxTokens: JUDGE_MAX_TOKENS,
      // The grade should depend on the reply, not on the judge's sampling.
      temperature: 0,
      expect: [],
    };
    const answer = await sendCase(target, api, judgeCase, opts);
    if (answer.error !== undefined) throw new Error(`the judge (${model}) failed: ${answer.error}`);
    return parseJudgeReply(answer.text);
  };
}

/** Reads a judge's answer: JSON (fenced or not) with a score in [0, 1], on 0–10, "7/10" or a percentage. */
export function parseJudgeReply(text: string): { score: number; reason: string } {
  const unfenced = text.replace(/```(?:json)?/gi, '').trim();
  const start = unfenced.indexOf('{');
  const end = unfenced.lastIndexOf('}');
  let score: number | undefined;
  let reason = '';
  if (start >= 0 && end > start) {
    try {
      const json = JSON.parse(unfenced.slice(start, end + 1));
      score = toUnit(json?.score);
      reason = typeof json?.reason === 'string' ? json.reason : '';
    } catch { /* fall through to the plain-text reading */ }
  }
  // Judges that ignore the format still tend to write "score: 7/10".
  score ??= toUnit(/score["'\s]*[:=]\s*["']?([0-9.]+\s*(?:\/\s*[0-9.]+|%)?)/i.exec(unfenced)?.[1]);
  if (score === undefined) throw new Error(`the judge's answer has no readable score: ${JSON.stringify(text.slice(0, 200))}`);
  return { score, reason };
}

/** 0.7, "0.7", 7 (of 10), "7/10", 70, "70%" → 0.7; undefined when it is no score. */
function toUnit(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const m = /^\s*([0-9]*\.?[0-9]+)\s*(?:(%)|\/\s*([0-9]*\.?[0-9]+))?\s*$/.exec(value);
    if (!m) return undefined;
    const n = Number(m[1]);
    if (m[2]) return clampUnit(n / 100);
    if (m[3]) return Number(m[3]) > 0 ? clampUnit(n / Number(m[3])) : undefined;
    return toUnit(n);
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return undefined;
  if (value <= 1) return value;
  if (value <= 10) return value / 10;
  if (value <= 100) return value / 100;
  return undefined;
}

function clampUnit(n: number): number | undefined {
  return Number.isFinite(n) && n >= 0 && n <= 1 ? n : undefined;
}
