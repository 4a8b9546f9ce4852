// The one shape every stage sees, whatever the provider. Adapters in proxy/providers/ translate the
// wire formats to it and back. Each canonical piece keeps a reference to the wire object it came from,
// so an adapter can write back exactly what a stage left untouched (unknown fields survive).

export interface Usage {
  /** Every prompt token, cached and cache-write tokens included (adapters normalise to this). */
  inputTokens: number;
  outputTokens: number;
  /** The part of inputTokens served from the provider's prompt cache. */
  cachedInputTokens: number;
  /** The part of inputTokens written to the provider's prompt cache (Anthropic). */
  cacheWriteTokens: number;
}

export interface ToolCall {
  id: string;
  name: string;
  /** The arguments as the model wrote them: JSON text, possibly invalid. */
  arguments: string;
  /** The provider's item for a call of another kind than its default (a Responses custom_tool_call), written back as it came. */
  raw?: Record<string, unknown>;
}

export interface ToolResult {
  toolCallId: string;
  /** Text content of the result (JSON text for structured results). */
  content: string;
  isError?: boolean;
}

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  /** All text content joined; images and other parts are kept only in `raw`. */
  text: string;
  toolCalls?: readonly ToolCall[];
  toolResults?: readonly ToolResult[];
  /** The wire object this message came from; absent for messages a stage created. */
  raw?: unknown;
}

export interface ToolDefinition {
  name: string;
  description?: string;
  parameters?: unknown;
  raw?: unknown;
}

export type CallKind = 'chat' | 'embeddings';

export interface Request {
  kind: CallKind;
  model: string;
  messages: readonly Message[];
  tools: readonly ToolDefinition[];
  stream: boolean;
  maxOutputTokens?: number;
  /** The stream will carry usage (the client asked for it, or the provider always sends it). */
  streamUsage: boolean;
  /** The provider needs to be asked for stream usage; false when it always sends it. */
  streamUsageOptional: boolean;
  /** The tool the request forces the model to call (a tool_choice naming one). */
  forcedTool?: string;
  /** Ways this request calls tools that Warden cannot judge (n > 1, legacy functions, provider-run MCP). */
  unjudgedToolPaths?: readonly string[];
  /** How many answers the request asks for (OpenAI chat's n); stages read the first one only. */
  choices?: number;
}

export interface Response {
  id?: string;
  model?: string;
  systemFingerprint?: string;
  text: string;
  toolCalls: ToolCall[];
  finishReason?: string;
  usage?: Usage;
}

/**
 * Canonical stream events. Usage fields are absolute values: a later event overrides an earlier one.
 * Text and tool-call arguments flow on channels, one per (type, index). `text-end` and
 * `tool-call-end` mark where a provider closes one channel (Anthropic content_block_stop, Responses
 * output_text.done and the other .done events), carrying the channel's whole content when the wire
 * event repeats it; `finish` closes every channel (OpenAI chat has no per-channel close). A stage
 * that holds text back on a channel releases it as content events placed before the closing event.
 */
export type StreamEvent =
  | { type: 'start'; id?: string; model?: string; systemFingerprint?: string }
  | { type: 'text'; index: number; text: string }
  | { type: 'tool-call'; index: number; id?: string; name?: string; argumentsDelta: string }
  | { type: 'text-end'; index: number; text?: string }
  | { type: 'tool-call-end'; index: number; arguments?: string }
  | { type: 'finish'; reason: string }
  | { type: 'usage'; usage: Partial<Usage> };

/** An empty response to accumulate stream events into. */
export function emptyResponse(): Response {
  return { text: '', toolCalls: [] };
}

// Accumulated text is capped so a runaway stream cannot grow memory without bound; the bytes still
// flow to the client, only Warden's copy stops growing.
export const MAX_ACCUMULATED_CHARS = 4 * 1024 * 1024;

/** Folds one stream event into the response being accumulated (tool-call argument deltas joined by index). */
export function accumulate(res: Response, ev: StreamEvent): void {
  switch (ev.type) {
    case 'start':
      if (ev.id) res.id = ev.id;
      if (ev.model) res.model = ev.model;
      if (ev.systemFingerprint) res.systemFingerprint = ev.systemFingerprint;
      return;
    case 'text':
      if (res.text.length < MAX_ACCUMULATED_CHARS) res.text += ev.text;
      return;
    case 'tool-call': {
      let call = res.toolCalls[ev.index];
      if (!call) call = res.toolCalls[ev.index] = { id: '', name: '', arguments: '' };
      if (ev.id) call.id = ev.id;
      if (ev.name) call.name = ev.name;
      if (call.arguments.length < MAX_ACCUMULATED_CHARS) call.arguments += ev.argumentsDelta;
      return;
    }
    case 'finish':
      res.finishReason = ev.reason;
      return;
    case 'usage':
      res.usage = { ...(res.usage ?? zeroUsage()), ...definedOnly(ev.usage) };
      return;
    case 'text-end':
    case 'tool-call-end':
      return; // the deltas already carried the content
  }
}

/** Usage with every count at zero. */
export function zeroUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0 };
}

/** The sum of two usage reports. */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens, cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  };
}

/** Ends accumulation: drops the holes left by providers that index tool calls by content position. */
export function finishAccumulation(res: Response): Response {
  const dense = res.toolCalls.filter(Boolean); // filter skips holes, which some() would too
  if (dense.length !== res.toolCalls.length) res.toolCalls = dense;
  return res;
}

function definedOnly(u: Partial<Usage>): Partial<Usage> {
  const out: Partial<Usage> = {};
  for (const [k, v] of Object.entries(u) as [keyof Usage, number | undefined][]) if (typeof v === 'number') out[k] = v;
  return out;
}
