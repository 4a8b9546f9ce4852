// OpenAI chat completions (also spoken by vLLM, Azure OpenAI, Gemini's OpenAI endpoint and most gateways).
import { openaiChatLogprobs } from './openai-logprobs.ts';
import type { Message, Request, Response, StreamEvent, ToolCall, Usage } from '../canonical.ts';
import type { EndpointAdapter, HeldEvent, Json, ParsedStreamEvent, TextMap } from './types.ts';
import { arr, joinText, mapCanonicalText, mapContentText, num, obj, payloadOf, requireModel, sseBytes, str } from './wire.ts';
import { openaiChatTracker } from './stream-trackers/openai-chat-tracker.ts';

function parseToolCalls(v: unknown): ToolCall[] | undefined {
  const calls = arr(v).map((c) => {
    const call = obj(c) ?? {};
    const fn = obj(call.function) ?? obj(call.custom) ?? {};
    return { id: str(call.id) ?? '', name: str(fn.name) ?? '', arguments: str(fn.arguments) ?? str(fn.input) ?? '' };
  });
  return calls.length > 0 ? calls : undefined;
}

/** Maps the arguments of an assistant message's tool_calls (function or custom); the same value when nothing changed. */
function mapToolCallArguments(v: unknown, map: TextMap): unknown {
  if (!Array.isArray(v)) return v;
  let changed = false;
  const calls = v.map((c) => {
    const call = obj(c);
    const key = obj(call?.function) ? 'function' : obj(call?.custom) ? 'custom' : undefined;
    const fn = key && obj(call![key])!;
    const field = typeof fn?.arguments === 'string' ? 'arguments' : typeof fn?.input === 'string' ? 'input' : undefined;
    if (!fn || !field) return c;
    const args = map(fn[field] as string, 'tool-call');
    if (args === fn[field]) return c;
    changed = true;
    return { ...call, [key!]: { ...fn, [field]: args } };
  });
  return changed ? calls : v;
}

function parseMessage(raw: unknown): Message {
  const m = obj(raw) ?? {};
  const role = str(m.role);
  if (role === 'tool' || role === 'function') {
    const content = joinText(m.content);
    return { role: 'tool', text: content, toolResults: [{ toolCallId: str(m.tool_call_id) ?? str(m.name) ?? '', content }], raw };
  }
  return {
    role: role === 'system' || role === 'developer' || role === 'assistant' ? role : 'user',
    text: joinText(m.content),
    toolCalls: parseToolCalls(m.tool_calls),
    raw,
  };
}

function messageToWire(m: Message): Json[] {
  if (m.raw !== undefined) return [m.raw as Json];
  if (m.toolResults?.length) {
    return m.toolResults.map((r) => ({ role: 'tool', tool_call_id: r.toolCallId, content: r.content }));
  }
  if (m.toolCalls?.length) {
    return [{
      role: 'assistant',
      content: m.text === '' ? null : m.text,
      tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
    }];
  }
  return [{ role: m.role, content: m.text }];
}

/** OpenAI usage → canonical; prompt_tokens already includes cached tokens. */
export function openaiUsage(u: unknown): Usage | undefined {
  const usage = obj(u);
  if (!usage) return undefined;
  return {
    inputTokens: num(usage.prompt_tokens) ?? num(usage.input_tokens) ?? 0,
    outputTokens: num(usage.completion_tokens) ?? num(usage.output_tokens) ?? 0,
    cachedInputTokens: num(obj(usage.prompt_tokens_details ?? usage.input_tokens_details)?.cached_tokens) ?? 0,
    cacheWriteTokens: 0,
  };
}

function parseTools(body: Json) {
  const tools = arr(body.tools).map((t) => {
    const tool = obj(t) ?? {};
    const fn = obj(tool.function) ?? obj(tool.custom) ?? tool;
    return { name: str(fn.name) ?? '', description: str(fn.description), parameters: fn.parameters, raw: t };
  });
  // The legacy `functions` field still works upstream, so its tools count too.
  for (const f of arr(body.functions)) {
    const fn = obj(f) ?? {};
    tools.push({ name: str(fn.name) ?? '', description: str(fn.description), parameters: fn.parameters, raw: f });
  }
  return tools;
}


/** The chunk's canonical choice (index 0), as parseStreamEvent reads it. */
function firstChoice(chunk: Json | undefined): Json | undefined {
  const choice = obj(arr(chunk?.choices)[0]);
  return choice && (num(choice.index) ?? 0) === 0 ? choice : undefined;
}

/**
 * Drops the blocked calls from the tool_calls deltas and renumbers the rest 0, 1, … (the SDKs
 * accumulate by index, so a hole would leave an empty call); the refusals become the message's text.
 */
function rewriteChatToolCalls(held: readonly HeldEvent[], blocked: ReadonlyMap<number, string>): Buffer[] {
  const chunks = held.map(payloadOf);
  const seen = new Set<number>();
  for (const chunk of chunks) {
    for (const call of arr(obj(firstChoice(chunk)?.delta)?.tool_calls)) seen.add(num(obj(call)?.index) ?? 0);
  }
  const kept = [...seen].filter((i) => !blocked.has(i)).sort((a, b) => a - b);
  const renumbered = new Map(kept.map((from, to) => [from, to]));
  const refusal = [...blocked].filter(([i]) => seen.has(i)).sort(([a], [b]) => a - b).map(([, text]) => text).join(' ');
  // The text rides on the finishing chunk, or on the last one there is when the stream was cut short.
  let target = chunks.findLastIndex((c) => typeof firstChoice(c)?.finish_reason === 'string');
  if (target === -1) target = chunks.findLastIndex((c) => firstChoice(c) !== undefined);

  const out: Buffer[] = [];
  held.forEach((h, j) => {
    const chunk = chunks[j];
    const choice = firstChoice(chunk);
    if (!chunk || !choice) {
      out.push(h.raw);
      return;
    }
    const delta: Json = { ...obj(choice.delta) };
    let changed = false;
    if (Array.isArray(delta.tool_calls)) {
      const original: unknown[] = delta.tool_calls;
      const calls = original.flatMap((c) => {
        const call = obj(c) ?? {};
        const to = renumbered.get(num(call.index) ?? 0);
        if (to === undefined) return [];
        return [to === call.index ? c : { ...call, index: to }];
      });
      if (calls.length !== original.length || calls.some((c, k) => c !== original[k])) {
        changed = true;
        if (calls.length > 0) delta.tool_calls = calls;
        else delete delta.tool_calls;
      }
    }
    if (j === target && refusal !== '') {
      delta.content = (typeof delta.content === 'string' ? delta.content : '') + refusal;
      changed = true;
    }
    let finish = choice.finish_reason;
    if (kept.length === 0 && finish === 'tool_calls') {
      finish = 'stop';
      changed = true;
    }
    if (!changed) {
      out.push(h.raw);
      return;
    }
    const choices = arr(chunk.choices);
    // A chunk that only carried blocked calls says nothing any more.
    if (Object.keys(delta).length === 0 && finish == null && chunk.usage == null && choices.length === 1) return;
    out.push(sseBytes({ ...chunk, choices: [{ ...choice, delta, finish_reason: finish }, ...choices.slice(1)] }, h.event));
  });
  return out;
}

export const openaiChat: EndpointAdapter = {
  name: 'openai.chat',
  logprobs: openaiChatLogprobs,
  stopReason: 'stop',
  tokenizer: 'openai',

  parseRequest(body) {
    const stream = body.stream === true;
    return {
      kind: 'chat',
      model: requireModel(body, 'chat completions'),
      messages: arr(body.messages).map(parseMessage),
      tools: parseTools(body),
      stream,
      maxOutputTokens: num(body.max_completion_tokens) ?? num(body.max_tokens),
      streamUsage: stream && obj(body.stream_options)?.include_usage === true,
      streamUsageOptional: true,
      forcedTool: str(obj(obj(body.tool_choice)?.function)?.name) ?? str(obj(obj(body.tool_choice)?.custom)?.name),
      choices: num(body.n),
      unjudgedToolPaths: [
        ...((num(body.n) ?? 1) > 1 && (arr(body.tools).length > 0 || arr(body.functions).length > 0) ? ['n > 1 (only the first choice is read)'] : []),
        ...(body.functions !== undefined || body.function_call !== undefined ? ['the legacy functions API (use tools)'] : []),
      ],
    };
  },

  writeRequest(body, req: Request) {
    const out: Json = { ...body, model: req.model, messages: req.messages.flatMap(messageToWire) };
    // Tools parsed from the legacy `functions` field go back there; every other tool goes to `tools`.
    const legacy = new Set(arr(body.functions));
    const tools = req.tools.filter((t) => !legacy.has(t.raw)).map((t) => t.raw ?? {
      type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters },
    });
    // An empty `tools` array is rejected upstream, so no tools means no field.
    if (tools.length > 0) out.tools = tools;
    else {
      // With every tool gone, a tool_choice (or parallel_tool_calls) would make the upstream answer 400.
      delete out.tools;
      delete out.tool_choice;
      delete out.parallel_tool_calls;
    }
    if (body.functions !== undefined) out.functions = req.tools.filter((t) => legacy.has(t.raw)).map((t) => t.raw);
    if (req.stream && req.streamUsage) out.stream_options = { ...obj(body.stream_options), include_usage: true };
    return out;
  },

  parseResponse(body): Response {
    const choice = obj(arr(body.choices)[0]) ?? {};
    const message = obj(choice.message) ?? {};
    return {
      id: str(body.id),
      model: str(body.model),
      systemFingerprint: str(body.system_fingerprint),
      text: joinText(message.content),
      toolCalls: parseToolCalls(message.tool_calls) ?? [],
      finishReason: str(choice.finish_reason),
      usage: openaiUsage(body.usage),
    };
  },

  writeResponse(body, res) {
    const choices = arr(body.choices).slice();
    const first = obj(choices[0]) ?? {};
    const message: Json = { ...obj(first.message), content: res.toolCalls.length && res.text === '' ? null : res.text };
    if (res.toolCalls.length) {
      message.tool_calls = res.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    } else delete message.tool_calls;
    choices[0] = { ...first, message, finish_reason: res.finishReason ?? first.finish_reason };
    // Logprobs describe the upstream's text; changed text would be disclosed through them.
    if (first.logprobs != null && res.text !== joinText(obj(first.message)?.content)) choices[0] = { ...choices[0] as Json, logprobs: null };
    return { ...body, choices };
  },

  parseStreamEvent(_event, data): ParsedStreamEvent | undefined {
    if (data === '[DONE]') return undefined;
    // JSON that is not an object (`null`, a number) carries nothing canonical.
    const chunk = obj(JSON.parse(data));
    if (!chunk) return undefined;
    const events: StreamEvent[] = [];
    if (typeof chunk.model === 'string') {
      events.push({ type: 'start', id: str(chunk.id), model: chunk.model, systemFingerprint: str(chunk.system_fingerprint) });
    }
    const choice = obj(arr(chunk.choices)[0]);
    // Only the first choice is canonical; other choices (n > 1) pass through untouched.
    if (choice && (num(choice.index) ?? 0) === 0) {
      const delta = obj(choice.delta) ?? {};
      if (typeof delta.content === 'string' && delta.content !== '') events.push({ type: 'text', index: 0, text: delta.content });
      for (const tc of arr(delta.tool_calls)) {
        const call = obj(tc) ?? {};
        const fn = obj(call.function) ?? {};
        events.push({ type: 'tool-call', index: num(call.index) ?? 0, id: str(call.id), name: str(fn.name), argumentsDelta: str(fn.arguments) ?? '' });
      }
      if (typeof choice.finish_reason === 'string') events.push({ type: 'finish', reason: choice.finish_reason });
    }
    const usage = openaiUsage(chunk.usage);
    if (usage) events.push({ type: 'usage', usage });
    return { data: chunk, events };
  },

  isTerminal: (_event, data) => data === '[DONE]',

  writeStreamEvent(parsed, events) {
    const out: Json = { ...parsed.data };
    if (!events.some((e) => e.type === 'usage') && parsed.events.some((e) => e.type === 'usage')) delete out.usage;
    const choices = arr(out.choices);
    const first = obj(choices[0]);
    if (first) {
      const delta: Json = { ...obj(first.delta) };
      const texts = events.filter((e) => e.type === 'text');
      const text = texts.map((e) => e.text).join('');
      const choice: Json = { ...first, delta };
      if (texts.length > 0 || typeof delta.content === 'string') {
        // Logprobs describe the upstream's tokens: once a stage changed the text they would describe,
        // and disclose, text the agent never gets.
        if (first.logprobs != null && text !== (typeof delta.content === 'string' ? delta.content : '')) choice.logprobs = null;
        delta.content = text;
      }
      const calls = events.filter((e) => e.type === 'tool-call');
      if (calls.length > 0 || delta.tool_calls !== undefined) {
        // One entry per index: text a stage released at the finish joins the index's own delta.
        const byIndex = new Map<number, Json>();
        for (const e of calls) {
          const seen = byIndex.get(e.index);
          if (seen) {
            seen.function = { ...obj(seen.function), arguments: `${str(obj(seen.function)?.arguments) ?? ''}${e.argumentsDelta}` };
            continue;
          }
          const orig = obj(arr(obj(first.delta)?.tool_calls).find((c) => obj(c)?.index === e.index)) ?? { index: e.index };
          byIndex.set(e.index, { ...orig, function: { ...obj(orig.function), arguments: e.argumentsDelta } });
        }
        delta.tool_calls = [...byIndex.values()];
      }
      out.choices = [choice, ...choices.slice(1)];
    }
    return out;
  },

  writeStreamEvents(parsed, events) {
    // The chunk that carries usage has no choices. When a stage took its usage away (the usage Warden
    // asked for on the agent's behalf), nothing is left of it that the agent asked for or that SDK
    // code reading choices[0] expects, so it goes whole.
    const usageTaken = parsed.events.some((e) => e.type === 'usage') && !events.some((e) => e.type === 'usage');
    if (usageTaken && arr(parsed.data.choices).length === 0) return [];
    return [openaiChat.writeStreamEvent(parsed, events)];
  },

  mapMessageText(m, map) {
    const raw = obj(m.raw);
    if (m.raw === undefined) return mapCanonicalText(m, map);
    if (!raw) return m;
    const kind = m.role === 'tool' ? 'tool-result' : 'text';
    const content = mapContentText(raw.content, (t) => map(t, kind));
    const toolCalls = mapToolCallArguments(raw.tool_calls, map);
    if (content === raw.content && toolCalls === raw.tool_calls) return m;
    return parseMessage({ ...raw, content, ...(toolCalls !== raw.tool_calls ? { tool_calls: toolCalls } : {}) });
  },

  rewriteToolCalls: rewriteChatToolCalls,
  streamTracker: openaiChatTracker,
};
