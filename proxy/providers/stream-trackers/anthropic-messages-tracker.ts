// Follows an Anthropic messages stream so a stall can end it as a finished, truncated answer
// (stop_reason "max_tokens"), or continue it: Anthropic takes a trailing assistant message as a
// prefill, so the upstream can be asked to go on from the text the client already has.
import type { Continuation, Json, StreamTracker } from '../types.ts';
import { num, obj, sseBytes, str } from '../wire.ts';
import { prefillContinuation, type MessageProgress, type UsageCounts } from './anthropic-continuation.ts';

// Input-side counters: message_start reports them, a message_delta may restate them.
const INPUT_USAGE = ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const;

class AnthropicTracker implements StreamTracker {
  /** The events carried `event:` names (they always do at api.anthropic.com); what Warden adds matches. */
  #named = true;
  #started = false;
  /** Block types by index, in stream order. */
  #blocks: string[] = [];
  #open: number | undefined;
  #text = '';
  #usage: UsageCounts = { output_tokens: 0 };
  #sawMessageDelta = false;
  #done = false;

  get finished(): boolean {
    return this.#done;
  }

  observe(event: string | undefined, data: Json | undefined): void {
    if (!data) return;
    this.#named = event !== undefined;
    const index = num(data.index) ?? 0;
    switch (data.type) {
      case 'message_start':
        this.#started = true;
        this.#countUsage(obj(obj(data.message)?.usage));
        break;
      case 'content_block_start': {
        const block = obj(data.content_block) ?? {};
        this.#blocks[index] = str(block.type) ?? 'unknown';
        this.#open = index;
        if (block.type === 'text') this.#text += str(block.text) ?? '';
        break;
      }
      case 'content_block_delta': {
        const delta = obj(data.delta);
        if (delta?.type === 'text_delta' && this.#blocks[index] === 'text') this.#text += str(delta.text) ?? '';
        break;
      }
      case 'content_block_stop':
        if (this.#open === index) this.#open = undefined;
        break;
      case 'message_delta':
        this.#sawMessageDelta = true;
        this.#countUsage(obj(data.usage));
        break;
      case 'message_stop':
      // An error event already ended the stream for the SDK; nothing may follow it.
      case 'error':
        this.#done = true;
        break;
    }
  }

  #countUsage(usage: Json | undefined): void {
    if (!usage) return;
    const output = num(usage.output_tokens);
    if (output !== undefined) this.#usage.output_tokens = output;
    for (const key of INPUT_USAGE) {
      const n = num(usage[key]);
      if (n !== undefined) this.#usage[key] = n;
    }
  }

  close(note: Json): Buffer {
    if (this.#done) return Buffer.alloc(0);
    const out: Buffer[] = [];
    const emit = (data: Json) => out.push(sseBytes(data, this.#named ? String(data.type) : undefined));
    // Cut before message_start: the SDK still needs a message to finish, so an empty one is opened.
    if (!this.#started) emit({ type: 'message_start', message: emptyMessage() });
    if (this.#open !== undefined) emit({ type: 'content_block_stop', index: this.#open });
    if (this.#sawMessageDelta) {
      emit({ type: 'message_stop', warden: note });
    } else {
      emit({
        type: 'message_delta',
        delta: { stop_reason: 'max_tokens', stop_sequence: null },
        usage: { output_tokens: this.#usage.output_tokens },
        warden: note,
      });
      emit({ type: 'message_stop' });
    }
    return Buffer.concat(out);
  }

  continuation(requestBody: Json): Continuation | undefined {
    if (this.#done || !this.#started || this.#sawMessageDelta) return undefined;
    return prefillContinuation(this.#progress(), requestBody);
  }

  #progress(): MessageProgress {
    return {
      blocks: [...this.#blocks],
      open: this.#open,
      text: this.#text,
      usage: { ...this.#usage },
      named: this.#named,
    };
  }
}

function emptyMessage(): Json {
  return {
    id: 'msg_warden_partial', type: 'message', role: 'assistant', model: '', content: [],
    stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 },
  };
}

/** A fresh tracker for one Anthropic messages stream. */
export function anthropicMessagesTracker(): StreamTracker {
  return new AnthropicTracker();
}
