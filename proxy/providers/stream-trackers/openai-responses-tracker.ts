// Follows an OpenAI Responses stream so a stall can end it as a finished, truncated answer: each
// open content part and output item gets the `.done` events the SDK's accumulator expects, then
// `response.incomplete` (reason max_output_tokens) lists the output as far as it went. The Responses
// API has no assistant prefill, so a stalled stream cannot be continued, only closed.
import type { Json, StreamTracker } from '../types.ts';
import { num, obj, sseBytes, str } from '../wire.ts';

/** How a content part's text grows and is finished, by part type. */
const PARTS: Record<string, { field: string; delta: string; done: string; extra?: Json }> = {
  output_text: { field: 'text', delta: 'response.output_text.delta', done: 'response.output_text.done', extra: { logprobs: [] } },
  refusal: { field: 'refusal', delta: 'response.refusal.delta', done: 'response.refusal.done' },
};

/** How a tool call item's arguments grow and are finished, by item type. */
const CALLS: Record<string, { field: string; delta: string; done: string }> = {
  function_call: { field: 'arguments', delta: 'response.function_call_arguments.delta', done: 'response.function_call_arguments.done' },
  custom_tool_call: { field: 'input', delta: 'response.custom_tool_call_input.delta', done: 'response.custom_tool_call_input.done' },
};

const DELTAS = new Map<string, { kind: 'part' | 'call'; field: string }>([
  ...Object.values(PARTS).map((p) => [p.delta, { kind: 'part' as const, field: p.field }] as const),
  ...Object.values(CALLS).map((c) => [c.delta, { kind: 'call' as const, field: c.field }] as const),
]);
const DONES = new Map<string, { kind: 'part' | 'call'; field: string }>([
  ...Object.values(PARTS).map((p) => [p.done, { kind: 'part' as const, field: p.field }] as const),
  ...Object.values(CALLS).map((c) => [c.done, { kind: 'call' as const, field: c.field }] as const),
]);

const LIFECYCLE = new Set(['response.created', 'response.queued', 'response.in_progress']);
// An error event ends the stream for the SDK as surely as the terminal events do.
const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

interface PartState {
  part: Json;
  /** The text (or refusal) so far. */
  text: string;
  textDone: boolean;
  done: boolean;
}

interface ItemState {
  item: Json;
  parts: Map<number, PartState>;
  /** A tool call's arguments (or custom input) so far. */
  args: string;
  argsDone: boolean;
  done: boolean;
}

class ResponsesTracker implements StreamTracker {
  #named = true;
  #response: Json | undefined;
  #sequence: number | undefined;
  #items = new Map<number, ItemState>();
  #done = false;

  get finished(): boolean {
    return this.#done;
  }

  observe(event: string | undefined, data: Json | undefined): void {
    if (!data) return;
    this.#named = event !== undefined;
    const type = str(data.type) ?? '';
    const seq = num(data.sequence_number);
    if (seq !== undefined) this.#sequence = Math.max(seq, this.#sequence ?? seq);
    if (TERMINAL.has(type)) {
      this.#done = true;
      return;
    }
    if (LIFECYCLE.has(type)) {
      this.#response = obj(data.response) ?? this.#response;
      return;
    }
    const item = this.#items.get(num(data.output_index) ?? -1);
    const part = item?.parts.get(num(data.content_index) ?? -1);
    const delta = DELTAS.get(type);
    const done = DONES.get(type);
    if (type === 'response.output_item.added') {
      const added = obj(data.item) ?? {};
      const call = CALLS[str(added.type) ?? ''];
      this.#items.set(num(data.output_index) ?? this.#items.size, {
        item: added, parts: new Map(), args: (call && str(added[call.field])) ?? '', argsDone: false, done: false,
      });
    } else if (type === 'response.output_item.done' && item) {
      item.item = obj(data.item) ?? item.item;
      item.done = true;
    } else if (type === 'response.content_part.added' && item) {
      const added = obj(data.part) ?? {};
      const kind = PARTS[str(added.type) ?? ''];
      item.parts.set(num(data.content_index) ?? item.parts.size, {
        part: added, text: (kind && str(added[kind.field])) ?? '', textDone: false, done: false,
      });
    } else if (type === 'response.content_part.done' && part) {
      part.part = obj(data.part) ?? part.part;
      part.done = true;
    } else if (delta?.kind === 'part' && part) {
      part.text += str(data.delta) ?? '';
    } else if (delta?.kind === 'call' && item) {
      item.args += str(data.delta) ?? '';
    } else if (done?.kind === 'part' && part) {
      part.text = str(data[done.field]) ?? part.text;
      part.textDone = true;
    } else if (done?.kind === 'call' && item) {
      item.args = str(data[done.field]) ?? item.args;
      item.argsDone = true;
    }
  }

  close(note: Json): Buffer {
    if (this.#done) return Buffer.alloc(0);
    const out: Buffer[] = [];
    const emit = (type: string, fields: Json) => {
      // Every event Warden adds takes the next sequence number, so the numbers keep increasing.
      const sequence = this.#sequence === undefined ? {} : { sequence_number: (this.#sequence += 1) };
      out.push(sseBytes({ type, ...sequence, ...fields }, this.#named ? type : undefined));
    };
    // Cut before response.created: the SDK still needs a response to finish, so one is opened.
    if (!this.#response) {
      this.#response = emptyResponse();
      emit('response.created', { response: this.#response });
    }
    const output: Json[] = [];
    for (const [outputIndex, state] of [...this.#items].sort(([a], [b]) => a - b)) {
      output.push(state.done ? state.item : closeItem(outputIndex, state, emit));
    }
    emit('response.incomplete', {
      response: { ...this.#response, status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, output },
      warden: note,
    });
    return Buffer.concat(out);
  }
}

/** Emits the events that finish an open output item; returns the item as finished (status "incomplete"). */
function closeItem(outputIndex: number, state: ItemState, emit: (type: string, fields: Json) => void): Json {
  const itemId = state.item.id;
  const call = CALLS[str(state.item.type) ?? ''];
  let item: Json = { ...state.item, status: 'incomplete' };
  if (call) {
    if (!state.argsDone) emit(call.done, { item_id: itemId, output_index: outputIndex, [call.field]: state.args });
    item = { ...item, [call.field]: state.args };
  } else if (state.item.type === 'message') {
    const content: Json[] = [];
    for (const [contentIndex, part] of [...state.parts].sort(([a], [b]) => a - b)) {
      const kind = PARTS[str(part.part.type) ?? ''];
      if (part.done) {
        content.push(part.part);
        continue;
      }
      const at = { item_id: itemId, output_index: outputIndex, content_index: contentIndex };
      if (kind && !part.textDone) emit(kind.done, { ...at, [kind.field]: part.text, ...kind.extra });
      const finished = kind ? { ...part.part, [kind.field]: part.text } : part.part;
      emit('response.content_part.done', { ...at, part: finished });
      content.push(finished);
    }
    item = { ...item, content };
  }
  emit('response.output_item.done', { output_index: outputIndex, item });
  return item;
}

function emptyResponse(): Json {
  return {
    id: 'resp_warden_partial', object: 'response', created_at: Math.floor(Date.now() / 1000), status: 'in_progress',
    error: null, incomplete_details: null, model: '', output: [], usage: null,
  };
}

/** A fresh tracker for one Responses API stream. */
export function openaiResponsesTracker(): StreamTracker {
  return new ResponsesTracker();
}
