// Anthropic messages: `system` beside the messages, content blocks, tool_use inputs as objects,
// usage split between message_start (input) and message_delta (output).
import type { Message, Request, Response, StreamEvent, ToolCall, Usage } from '../canonical.ts';
import type { EndpointAdapter, HeldEvent, Json, ParsedStreamEvent } from './types.ts';
import { argumentsText, argumentsValue, arr, joinText, mapCanonicalText, mapContentText, num, obj, payloadOf, requireModel, sseBytes, str } from './wire.ts';
import { anthropicMessagesTracker } from './stream-trackers/anthropic-messages-tracker.ts';

// `system` travels as the first canonical message and goes back to its own field.
const SYSTEM = Symbol('anthropic.system');
const TEXT = new Set(['text']);

function blocksOf(content: unknown): Json[] {
  return typeof content === 'string' ? [{ type: 'text', text: content }] : arr(content).map((b) => obj(b) ?? {});
}

function parseMessage(raw: unknown): Message {
  const m = obj(raw) ?? {};
  const blocks = blocksOf(m.content);
  const toolCalls: ToolCall[] = blocks.filter((b) => b.type === 'tool_use')
    .map((b) => ({ id: str(b.id) ?? '', name: str(b.name) ?? '', arguments: argumentsText(b.input) }));
  const toolResults = blocks.filter((b) => b.type === 'tool_result').map((b) => ({
    toolCallId: str(b.tool_use_id) ?? '',
    content: joinText(b.content, TEXT),
    isError: b.is_error === true,
  }));
  return {
    role: m.role === 'assistant' ? 'assistant' : 'user',
    text: joinText(m.content, TEXT),
    toolCalls: toolCalls.length ? toolCalls : undefined,
    toolResults: toolResults.length ? toolResults : undefined,
    raw,
  };
}

function messageToWire(m: Message): Json {
  if (m.raw !== undefined) return m.raw as Json;
  const content: Json[] = [];
  for (const r of m.toolResults ?? []) content.push({ type: 'tool_result', tool_use_id: r.toolCallId, content: r.content, ...(r.isError ? { is_error: true } : {}) });
  if (m.text !== '') content.push({ type: 'text', text: m.text });
  for (const c of m.toolCalls ?? []) content.push({ type: 'tool_use', id: c.id, name: c.name, input: argumentsValue(c.arguments) });
  return { role: m.role === 'assistant' ? 'assistant' : 'user', content };
}

/** Anthropic usage → canonical: input_tokens excludes cache reads and writes, so they are added. */
function anthropicUsage(u: unknown): Partial<Usage> | undefined {
  const usage = obj(u);
  if (!usage) return undefined;
  const out: Partial<Usage> = {};
  const input = num(usage.input_tokens);
  const read = num(usage.cache_read_input_tokens) ?? 0;
  const write = num(usage.cache_creation_input_tokens) ?? 0;
  if (input !== undefined) Object.assign(out, { inputTokens: input + read + write, cachedInputTokens: read, cacheWriteTokens: write });
  const output = num(usage.output_tokens);
  if (output !== undefined) out.outputTokens = output;
  return out;
}



/**
 * Turns each blocked tool_use block into a text block at the same index holding the refusal, so the
 * SDK's per-index accumulation stays intact; with no tool_use left, the turn ends as a plain answer.
 */
function rewriteAnthropicToolCalls(held: readonly HeldEvent[], blocked: ReadonlyMap<number, string>): Buffer[] {
  const events = held.map(payloadOf);
  const rewritten = new Set<number>();
  let remaining = 0;
  for (const ev of events) {
    if (ev?.type !== 'content_block_start' || obj(ev.content_block)?.type !== 'tool_use') continue;
    const index = num(ev.index) ?? 0;
    if (blocked.has(index)) rewritten.add(index);
    else remaining++;
  }

  const out: Buffer[] = [];
  for (const [j, h] of held.entries()) {
    const ev = events[j];
    const index = num(ev?.index) ?? 0;
    if (ev && rewritten.has(index)) {
      if (ev.type === 'content_block_start') {
        out.push(sseBytes({ ...ev, content_block: { type: 'text', text: '' } }, h.event));
        continue;
      }
      // The refused call's input_json_delta fragments go with it.
      if (ev.type === 'content_block_delta') continue;
      if (ev.type === 'content_block_stop') {
        const text = { type: 'content_block_delta', index, delta: { type: 'text_delta', text: blocked.get(index) } };
        out.push(sseBytes(text, h.event === undefined ? undefined : 'content_block_delta'), h.raw);
        continue;
      }
    }
    if (ev?.type === 'message_delta' && remaining === 0 && obj(ev.delta)?.stop_reason === 'tool_use') {
      out.push(sseBytes({ ...ev, delta: { ...obj(ev.delta), stop_reason: 'end_turn' } }, h.event));
      continue;
    }
    out.push(h.raw);
  }
  return out;
}

export const anthropicMessages: EndpointAdapter = {
  name: 'anthropic.messages',
  stopReason: 'end_turn',
  tokenizer: 'anthropic',

  parseRequest(body): Request {
    const messages: Message[] = [];
    if (body.system !== undefined) messages.push({ role: 'system', text: joinText(body.system, TEXT), raw: SYSTEM });
    for (const m of arr(body.messages)) messages.push(parseMessage(m));
    return {
      kind: 'chat',
      model: requireModel(body, 'messages'),
      messages,
      tools: arr(body.tools).map((t) => {
        const tool = obj(t) ?? {};
        return { name: str(tool.name) ?? '', description: str(tool.description), parameters: tool.input_schema, raw: t };
      }),
      stream: body.stream === true,
      maxOutputTokens: num(body.max_tokens),
      // message_start and message_delta always carry usage.
      streamUsage: true,
      streamUsageOptional: false,
      forcedTool: obj(body.tool_choice)?.type === 'tool' ? str(obj(body.tool_choice)?.name) : undefined,
      // The MCP connector runs remote tools at Anthropic, before the answer comes back through Warden.
      unjudgedToolPaths: arr(body.mcp_servers).length > 0 ? ['mcp_servers (tools run at the provider; route MCP through /mcp/{server})'] : [],
    };
  },

  writeRequest(body, req) {
    const out: Json = { ...body, model: req.model };
    const system = req.messages.filter((m) => m.role === 'system');
    if (system.length === 0) delete out.system;
    else if (system.some((m) => m.raw !== SYSTEM)) out.system = system.map((m) => m.text).join('\n\n');
    out.messages = req.messages.filter((m) => m.role !== 'system').map(messageToWire);
    if (req.tools.length > 0) out.tools = req.tools.map((t) => t.raw ?? { name: t.name, description: t.description, input_schema: t.parameters });
    else {
      delete out.tools;
      delete out.tool_choice;
    }
    return out;
  },

  parseResponse(body): Response {
    const blocks = blocksOf(body.content);
    const usage = anthropicUsage(body.usage);
    return {
      id: str(body.id),
      model: str(body.model),
      text: joinText(blocks, TEXT),
      toolCalls: blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: str(b.id) ?? '', name: str(b.name) ?? '', arguments: argumentsText(b.input) })),
      finishReason: str(body.stop_reason),
      usage: usage ? { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, ...usage } : undefined,
    };
  },

  writeResponse(body, res) {
    const kept = blocksOf(body.content).filter((b) => b.type !== 'text' && b.type !== 'tool_use');
    const content: Json[] = [...kept];
    if (res.text !== '') content.push({ type: 'text', text: res.text });
    for (const c of res.toolCalls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: argumentsValue(c.arguments) });
    return { ...body, content, stop_reason: res.finishReason ?? body.stop_reason };
  },

  parseStreamEvent(_event, data): ParsedStreamEvent | undefined {
    // JSON that is not an object (`null`, a number) carries nothing canonical.
    const ev = obj(JSON.parse(data));
    if (!ev) return undefined;
    const events: StreamEvent[] = [];
    const index = num(ev.index) ?? 0;
    switch (ev.type) {
      case 'message_start': {
        const message = obj(ev.message) ?? {};
        events.push({ type: 'start', id: str(message.id), model: str(message.model) });
        const usage = anthropicUsage(message.usage);
        if (usage) events.push({ type: 'usage', usage });
        break;
      }
      case 'content_block_start': {
        const block = obj(ev.content_block) ?? {};
        if (block.type === 'tool_use') events.push({ type: 'tool-call', index, id: str(block.id), name: str(block.name), argumentsDelta: '' });
        else if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') events.push({ type: 'text', index, text: block.text });
        break;
      }
      case 'content_block_delta': {
        const delta = obj(ev.delta) ?? {};
        if (delta.type === 'text_delta') events.push({ type: 'text', index, text: str(delta.text) ?? '' });
        else if (delta.type === 'input_json_delta') events.push({ type: 'tool-call', index, argumentsDelta: str(delta.partial_json) ?? '' });
        break;
      }
      case 'content_block_stop':
        // The block's type is not repeated here; whichever channel has this index ends.
        events.push({ type: 'text-end', index }, { type: 'tool-call-end', index });
        break;
      case 'message_delta': {
        const stop = str(obj(ev.delta)?.stop_reason);
        if (stop) events.push({ type: 'finish', reason: stop });
        const usage = anthropicUsage(ev.usage);
        if (usage) events.push({ type: 'usage', usage });
        break;
      }
    }
    return { data: ev, events };
  },

  isTerminal: (event, data) => (event !== undefined ? event === 'message_stop' : /^\{\s*"type"\s*:\s*"message_stop"/.test(data)),

  writeStreamEvent(parsed, events) {
    const out: Json = { ...parsed.data };
    const delta = obj(out.delta);
    const block = obj(out.content_block);
    const changed = events.find((e) => e.type === 'text' || e.type === 'tool-call');
    if (delta && changed?.type === 'text') out.delta = { ...delta, text: changed.text };
    else if (delta && changed?.type === 'tool-call') out.delta = { ...delta, partial_json: changed.argumentsDelta };
    else if (block?.type === 'text' && changed?.type === 'text') out.content_block = { ...block, text: changed.text };
    return out;
  },

  writeStreamEvents(parsed, events) {
    // Only deltas and a block's start carry content; content a stage put before any other event
    // (the held tail released at content_block_stop) goes out as deltas of its own, first.
    const type = parsed.data.type;
    if (type === 'content_block_delta' || type === 'content_block_start') return [anthropicMessages.writeStreamEvent(parsed, events)];
    const extra: Json[] = [];
    for (const e of events) {
      if (e.type === 'text' && e.text !== '') extra.push({ type: 'content_block_delta', index: e.index, delta: { type: 'text_delta', text: e.text } });
      if (e.type === 'tool-call' && e.argumentsDelta !== '') extra.push({ type: 'content_block_delta', index: e.index, delta: { type: 'input_json_delta', partial_json: e.argumentsDelta } });
    }
    return [...extra, { ...parsed.data }];
  },

  mapMessageText(m, map) {
    if (m.raw === SYSTEM) {
      const text = map(m.text, 'text');
      // Written back as one string: the system blocks' boundaries are not in the canonical text.
      return text === m.text ? m : { ...m, text, raw: undefined };
    }
    if (m.raw === undefined) return mapCanonicalText(m, map);
    const raw = obj(m.raw);
    if (!raw) return m;
    let changed = false;
    const content = typeof raw.content === 'string' ? mapContentText(raw.content, (t) => map(t, 'text')) : arr(raw.content).map((b) => {
      const block = obj(b);
      if (block?.type === 'text' && typeof block.text === 'string') {
        const text = map(block.text, 'text');
        if (text === block.text) return b;
        changed = true;
        return { ...block, text };
      }
      if (block?.type === 'tool_use') {
        const args = argumentsText(block.input);
        const mapped = map(args, 'tool-call');
        if (mapped === args) return b;
        changed = true;
        return { ...block, input: argumentsValue(mapped) };
      }
      if (block?.type !== 'tool_result') return b;
      const inner = mapContentText(block.content, (t) => map(t, 'tool-result'), TEXT);
      if (inner === block.content) return b;
      changed = true;
      return { ...block, content: inner };
    });
    if (typeof raw.content === 'string') changed = content !== raw.content;
    return changed ? parseMessage({ ...raw, content }) : m;
  },

  rewriteToolCalls: rewriteAnthropicToolCalls,
  streamTracker: anthropicMessagesTracker,
};
