// Follows an OpenAI chat completions stream so a stall can end it as a finished, truncated answer:
// a finish_reason "length" chunk for every choice still open, then [DONE]. Chat completions take no
// assistant prefill, so a stalled chat stream cannot be continued, only closed.
import type { Json, StreamTracker } from '../types.ts';
import { arr, num, obj, sseBytes, str } from '../wire.ts';

const DONE = 'data: [DONE]\n\n';
// Copied from the stream's own chunks onto the closing ones, so the SDK sees one completion throughout.
const ENVELOPE = ['id', 'created', 'model', 'system_fingerprint', 'service_tier'] as const;

interface ChoiceState {
  /** The SDK rejects a choice that never said its role, so a closing chunk may have to say it. */
  role: boolean;
  finished: boolean;
}

class ChatTracker implements StreamTracker {
  #envelope: Json = {};
  #choices = new Map<number, ChoiceState>();
  #done = false;

  get finished(): boolean {
    return this.#done;
  }

  observe(_event: string | undefined, data: Json | undefined): void {
    // [DONE] is the only data in a chat stream that is not JSON.
    if (data === undefined) {
      this.#done = true;
      return;
    }
    // An in-band error already ended the stream for the SDK; nothing may follow it.
    if (data.error !== undefined) {
      this.#done = true;
      return;
    }
    for (const key of ENVELOPE) if (data[key] !== undefined && data[key] !== null) this.#envelope[key] = data[key];
    for (const c of arr(data.choices)) {
      const choice = obj(c);
      if (!choice) continue;
      const index = num(choice.index) ?? 0;
      const state = this.#choices.get(index) ?? { role: false, finished: false };
      if (str(obj(choice.delta)?.role) !== undefined) state.role = true;
      if (typeof choice.finish_reason === 'string') state.finished = true;
      this.#choices.set(index, state);
    }
  }

  close(note: Json): Buffer {
    if (this.#done) return Buffer.alloc(0);
    // A stream cut before its first chunk still has to read as one answer with one (empty) choice.
    const choices = this.#choices.size > 0 ? this.#choices : new Map([[0, { role: false, finished: false }]]);
    // In the API's own field order; a field the stream never carried stays out.
    const seen = this.#envelope;
    const envelope = {
      id: seen.id ?? 'chatcmpl-warden-partial',
      object: 'chat.completion.chunk',
      created: seen.created ?? Math.floor(Date.now() / 1000),
      model: seen.model ?? '',
      ...(seen.service_tier === undefined ? {} : { service_tier: seen.service_tier }),
      ...(seen.system_fingerprint === undefined ? {} : { system_fingerprint: seen.system_fingerprint }),
    };
    const out: Buffer[] = [];
    for (const [index, state] of [...choices].sort(([a], [b]) => a - b)) {
      if (state.finished) continue;
      const delta = state.role ? {} : { role: 'assistant', content: '' };
      out.push(sseBytes({ ...envelope, choices: [{ index, delta, logprobs: null, finish_reason: 'length' }], warden: note }, undefined));
    }
    out.push(Buffer.from(DONE));
    return Buffer.concat(out);
  }
}

/** A fresh tracker for one chat completions stream. */
export function openaiChatTracker(): StreamTracker {
  return new ChatTracker();
}
