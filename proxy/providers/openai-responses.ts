// OpenAI Responses API (`POST /responses`): input items instead of messages, typed stream events.
import type { Message, Request, Response, StreamEvent, ToolCall } from '../canonical.ts';
import type { EndpointAdapter, HeldEvent, Json, ParsedStreamEvent } from './types.ts';
import { openaiUsage } from './openai-chat.ts';
import { arr, joinText, mapCanonicalText, mapContentText, num, obj, payloadOf, requireModel, sseBytes, str } from './wire.ts';
import { contentEnds, writeContentEnds, writeResponsesEvents } from './openai-responses-ends.ts';
import { openaiResponsesTracker } from './stream-trackers/openai-responses-tracker.ts';

// `instructions` is a field of its own, not an input item; this marker lets it travel as the first
// canonical message and go back to its field untouched.
const INSTRUCTIONS = Symbol('responses.instructions');
// Instructions a stage rewrote (sanitization): their text goes back to the instructions field.
const REWRITTEN_INSTRUCTIONS = new WeakSet<object>();
const isInstructions = (m: Message) => m.raw === INSTRUCTIONS || (typeof m.raw === 'object' && m.raw !== null && REWRITTEN_INSTRUCTIONS.has(m.raw));
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
const TERMINAL_DATA = /^\{\s*"type"\s*:\s*"response\.(completed|incomplete|failed)"/;

function parseItem(raw: unknown): Message {
  const item = obj(raw) ?? {};
  switch (item.type) {
    case 'function_call':
    case 'custom_tool_call':
      return {
        role: 'assistant', text: '', raw,
        toolCalls: [{ id: str(item.call_id) ?? '', name: str(item.name) ?? '', arguments: str(item.arguments) ?? str(item.input) ?? '' }],
      };
    case 'function_call_output':
    case 'custom_tool_call_output': {
      const content = typeof item.output === 'string' ? item.output : joinText(item.output);
      return { role: 'tool', text: content, toolResults: [{ toolCallId: str(item.call_id) ?? '', content }], raw };
    }
    default: {
      const role = str(item.role);
      return {
        role: role === 'system' || role === 'developer' || role === 'assistant' ? role : 'user',
        text: joinText(item.content),
        raw,
      };
    }
  }
}

function itemsToWire(m: Message): unknown[] {
  if (m.raw !== undefined) return [m.raw];
  if (m.toolResults?.length) return m.toolResults.map((r) => ({ type: 'function_call_output', call_id: r.toolCallId, output: r.content }));
  if (m.toolCalls?.length) return m.toolCalls.map((c) => ({ type: 'function_call', call_id: c.id, name: c.name, arguments: c.arguments }));
  return [{ role: m.role, content: m.text }];
}

// Calls the agent runs: functions, and custom tools (free-form input instead of JSON arguments),
// judged alike; a custom call keeps its own item.
const CALL_ITEMS = new Set(['function_call', 'custom_tool_call']);
// Not String(): an item whose type is {"toString":1} must not throw.
const isCall = (type: unknown): boolean => typeof type === 'string' && CALL_ITEMS.has(type);

function outputToolCalls(output: unknown[]): ToolCall[] {
  return output.map(obj).filter((i) => isCall(i?.type))
    .map((i) => i!.type === 'custom_tool_call'
      ? { id: str(i!.call_id) ?? '', name: str(i!.name) ?? '', arguments: str(i!.input) ?? '', raw: i! }
      : { id: str(i!.call_id) ?? '', name: str(i!.name) ?? '', arguments: str(i!.arguments) ?? '' });
}

function outputText(output: unknown[]): string {
  return output.map(obj).filter((i) => i?.type === 'message')
    .map((i) => joinText(i!.content, new Set(['output_text']))).join('');
}

function parseResponseObject(body: Json): Response {
  const output = arr(body.output);
  const status = str(body.status);
  return {
    id: str(body.id),
    model: str(body.model),
    text: outputText(output),
    toolCalls: outputToolCalls(output),
    finishReason: status === 'incomplete' ? str(obj(body.incomplete_details)?.reason) ?? status : status,
    usage: openaiUsage(body.usage),
  };
}



/** The assistant message a refused call at output index k becomes, once its text is complete. */
function refusalMessage(k: number, text: string): Json {
  return { type: 'message', id: `msg_warden_${k}`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
}

/**
 * Turns each blocked function_call (or custom_tool_call) output item into an assistant message holding the refusal, with
 * the events the API sends for a text message, so the SDK's accumulator (which checks item ids,
 * content indices and the final output against what it streamed) takes it as a real one.
 */
function rewriteResponsesToolCalls(held: readonly HeldEvent[], blocked: ReadonlyMap<number, string>): Buffer[] {
  const events = held.map(payloadOf);
  const named = held.some((h) => h.event !== undefined);
  // Events dropped and added shift every later sequence_number; the tail counts on from the first.
  let next = num(events.find((ev) => num(ev?.sequence_number) !== undefined)?.sequence_number);
  const rewritten = new Set<number>();
  const out: Buffer[] = [];

  const emit = (ev: Json, event: string | undefined, raw?: Buffer) => {
    let payload = ev;
    if (next !== undefined && num(ev.sequence_number) !== undefined) {
      if (ev.sequence_number !== next) payload = { ...ev, sequence_number: next };
      next++;
    }
    out.push(payload === ev && raw ? raw : sseBytes(payload, event));
  };
  const add = (type: string, fields: Json) => {
    emit({ type, ...(next === undefined ? {} : { sequence_number: next }), ...fields }, named ? type : undefined);
  };

  for (const [j, h] of held.entries()) {
    const ev = events[j];
    if (!ev) {
      out.push(h.raw);
      continue;
    }
    const k = num(ev.output_index);
    const refusal = k === undefined ? undefined : blocked.get(k);
    if (k !== undefined && refusal !== undefined) {
      if (ev.type === 'response.output_item.added' && isCall(obj(ev.item)?.type)) {
        rewritten.add(k);
        emit({ ...ev, item: { type: 'message', id: `msg_warden_${k}`, role: 'assistant', status: 'in_progress', content: [] } }, h.event);
        continue;
      }
      if (rewritten.has(k)) {
        // The refused call's arguments go with it.
        if (typeof ev.type === 'string' && /^response\.(function_call_arguments|custom_tool_call_input)\.(delta|done)$/.test(ev.type)) continue;
        if (ev.type === 'response.output_item.done') {
          const at = { item_id: `msg_warden_${k}`, output_index: k, content_index: 0 };
          const part = { type: 'output_text', text: refusal, annotations: [] };
          add('response.content_part.added', { ...at, part: { ...part, text: '' } });
          add('response.output_text.delta', { ...at, delta: refusal, logprobs: [] });
          add('response.output_text.done', { ...at, text: refusal, logprobs: [] });
          add('response.content_part.done', { ...at, part });
          emit({ ...ev, item: refusalMessage(k, refusal) }, h.event);
          continue;
        }
      }
    }
    // The final response lists the output again; the SDK checks it against the items it streamed.
    const response = obj(ev.response);
    const output = arr(response?.output);
    const refused = (item: unknown, i: number) => rewritten.has(i) && isCall(obj(item)?.type);
    if (TERMINAL.has(ev.type as string) && output.some(refused)) {
      const replaced = output.map((item, i) => (refused(item, i) ? refusalMessage(i, blocked.get(i) ?? '') : item));
      emit({ ...ev, response: { ...response, output: replaced } }, h.event);
      continue;
    }
    emit(ev, h.event, h.raw);
  }
  return out;
}

export const openaiResponses: EndpointAdapter = {
  name: 'openai.responses',
  tokenizer: 'openai',

  parseRequest(body): Request {
    const messages: Message[] = [];
    if (typeof body.instructions === 'string') messages.push({ role: 'system', text: body.instructions, raw: INSTRUCTIONS });
    if (typeof body.input === 'string') messages.push({ role: 'user', text: body.input, raw: body.input });
    else for (const item of arr(body.input)) messages.push(parseItem(item));
    return {
      kind: 'chat',
      model: requireModel(body, 'responses'),
      messages,
      tools: arr(body.tools).map((t) => {
        const tool = obj(t) ?? {};
        return { name: str(tool.name) ?? str(tool.type) ?? '', description: str(tool.description), parameters: tool.parameters, raw: t };
      }),
      stream: body.stream === true,
      maxOutputTokens: num(body.max_output_tokens),
      // response.completed always carries usage.
      streamUsage: true,
      streamUsageOptional: false,
      forcedTool: obj(body.tool_choice)?.type === 'function' ? str(obj(body.tool_choice)?.name) : undefined,
    };
  },

  writeRequest(body, req) {
    const out: Json = { ...body, model: req.model };
    const rest = req.messages.filter((m) => !isInstructions(m));
    const instructions = req.messages.find(isInstructions);
    if (!instructions) delete out.instructions;
    else if (instructions.raw !== INSTRUCTIONS) out.instructions = instructions.text;
    // A bare string input stays a string while it is the only, unchanged item.
    out.input = rest.length === 1 && rest[0].raw === body.input && typeof body.input === 'string'
      ? body.input
      : rest.flatMap(itemsToWire);
    if (req.tools.length > 0) out.tools = req.tools.map((t) => t.raw ?? { type: 'function', name: t.name, description: t.description, parameters: t.parameters });
    else {
      delete out.tools;
      delete out.tool_choice;
      delete out.parallel_tool_calls;
    }
    return out;
  },

  parseResponse: parseResponseObject,

  writeResponse(body, res) {
    const output = arr(body.output).filter((i) => {
      const type = obj(i)?.type;
      return type !== 'message' && !isCall(type);
    });
    if (res.text !== '') {
      const first = obj(arr(body.output).find((i) => obj(i)?.type === 'message')) ?? { type: 'message', role: 'assistant', status: 'completed' };
      output.push({ ...first, content: [{ type: 'output_text', text: res.text, annotations: [] }] });
    }
    for (const c of res.toolCalls) {
      output.push(c.raw ? { ...c.raw, input: c.arguments } : { type: 'function_call', call_id: c.id, name: c.name, arguments: c.arguments, status: 'completed' });
    }
    return { ...body, output };
  },

  parseStreamEvent(_event, data): ParsedStreamEvent | undefined {
    // JSON that is not an object (`null`, a number) carries nothing canonical.
    const ev = obj(JSON.parse(data));
    if (!ev) return undefined;
    const events: StreamEvent[] = [];
    const response = obj(ev.response);
    switch (ev.type) {
      case 'response.created':
      case 'response.in_progress':
        if (response) events.push({ type: 'start', id: str(response.id), model: str(response.model) });
        break;
      case 'response.output_text.delta':
        if (typeof ev.delta === 'string' && ev.delta !== '') events.push({ type: 'text', index: 0, text: ev.delta });
        break;
      case 'response.output_item.added': {
        const item = obj(ev.item);
        if (item && isCall(item.type)) {
          const args = item.type === 'custom_tool_call' ? item.input : item.arguments;
          events.push({ type: 'tool-call', index: num(ev.output_index) ?? 0, id: str(item.call_id), name: str(item.name), argumentsDelta: str(args) ?? '' });
        }
        break;
      }
      case 'response.function_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
        events.push({ type: 'tool-call', index: num(ev.output_index) ?? 0, argumentsDelta: str(ev.delta) ?? '' });
        break;
      case 'response.output_text.done':
      case 'response.content_part.done':
      case 'response.output_item.done':
      case 'response.function_call_arguments.done':
        events.push(...contentEnds(ev));
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        if (response) {
          const final = parseResponseObject(response);
          events.push({ type: 'start', id: final.id, model: final.model });
          // The final output repeats every text and argument: their channels end here too.
          events.push(...contentEnds(ev));
          if (final.finishReason) events.push({ type: 'finish', reason: final.finishReason });
          if (final.usage) events.push({ type: 'usage', usage: final.usage });
        }
        break;
    }
    return { data: ev, events };
  },

  isTerminal(event, data) {
    // Named events are the norm; without the name, the type is the payload's first field.
    return event !== undefined ? TERMINAL.has(event) : TERMINAL_DATA.test(data.slice(0, 64));
  },

  writeStreamEvent(parsed, events) {
    const out: Json = { ...parsed.data };
    const delta = events.find((e) => e.type === 'text' || e.type === 'tool-call');
    if (delta?.type === 'text' && out.type === 'response.output_text.delta') {
      // Logprobs describe the upstream's tokens; changed text would be disclosed through them.
      if (delta.text !== out.delta) out.logprobs = [];
      out.delta = delta.text;
    } else if (delta?.type === 'tool-call' && (out.type === 'response.function_call_arguments.delta' || out.type === 'response.custom_tool_call_input.delta')) out.delta = delta.argumentsDelta;
    else if (delta?.type === 'tool-call' && obj(out.item)?.type === 'function_call') out.item = { ...obj(out.item), arguments: delta.argumentsDelta };
    else if (delta?.type === 'tool-call' && obj(out.item)?.type === 'custom_tool_call') out.item = { ...obj(out.item), input: delta.argumentsDelta };
    writeContentEnds(out, events);
    return out;
  },

  writeStreamEvents: (parsed, events) => writeResponsesEvents(parsed, events, openaiResponses.writeStreamEvent),
  streamSequence: 'sequence_number',

  mapMessageText(m, map) {
    if (m.raw === undefined) return mapCanonicalText(m, map);
    if (isInstructions(m) || typeof m.raw === 'string') {
      const text = map(m.text, 'text');
      if (text === m.text) return m;
      const raw = isInstructions(m) ? { instructions: true } : { role: 'user', content: text };
      if (isInstructions(m)) REWRITTEN_INSTRUCTIONS.add(raw);
      return { ...m, text, raw };
    }
    const item = obj(m.raw);
    if (!item) return m;
    if (item.type === 'function_call_output' || item.type === 'custom_tool_call_output') {
      const output = mapContentText(item.output, (t) => map(t, 'tool-result'));
      return output === item.output ? m : parseItem({ ...item, output });
    }
    if (item.type === 'function_call' || item.type === 'custom_tool_call') {
      const field = item.type === 'function_call' ? 'arguments' : 'input';
      if (typeof item[field] !== 'string') return m;
      const args = map(item[field] as string, 'tool-call');
      return args === item[field] ? m : parseItem({ ...item, [field]: args });
    }
    if (item.type !== undefined && item.type !== 'message') return m;
    const content = mapContentText(item.content, (t) => map(t, 'text'));
    return content === item.content ? m : parseItem({ ...item, content });
  },

  rewriteToolCalls: rewriteResponsesToolCalls,
  streamTracker: openaiResponsesTracker,
};
