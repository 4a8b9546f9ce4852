// Continue-by-prefill for a stalled Anthropic messages stream: the text the client already has goes
// back upstream as a trailing assistant message, and the answer's events are spliced into the
// client's stream as if the first call had never paused: its message_start is dropped, its text
// carries on in the client's open block, every block index is shifted past the client's, and the
// usage it reports is added to what the first call used.
import type { Continuation, Json } from '../types.ts';
import { arr, num, obj, sseBytes, str } from '../wire.ts';

export interface UsageCounts {
  output_tokens: number;
  input_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** What the client has been sent of the current message, as the tracker saw it. */
export interface MessageProgress {
  /** Content block types by index. */
  blocks: readonly string[];
  /** The block still open (started, not stopped), if one is. */
  open: number | undefined;
  /** All text the message's text blocks carried, in order. */
  text: string;
  /** The last counts seen (message_start's, until a message_delta). */
  usage: UsageCounts;
  /** Whether the stream's events carry `event:` names. */
  named: boolean;
}

const SUMMED_USAGE = ['output_tokens', 'input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const;

/**
 * The continuation of a stream that stalled in plain text; undefined when it cannot be continued:
 * no text yet, a non-text block seen (a tool_use's input or a thinking block cannot be resumed by
 * prefill), or extended thinking on (the API refuses a prefill then).
 */
export function prefillContinuation(progress: MessageProgress, requestBody: Json): Continuation | undefined {
  const { blocks, text } = progress;
  if (blocks.length === 0 || text === '' || blocks.some((type) => type !== 'text')) return undefined;
  const thinking = str(obj(requestBody.thinking)?.type);
  if (thinking !== undefined && thinking !== 'disabled') return undefined;

  const prefill = withPrefill(arr(requestBody.messages), text);
  if (!prefill) return undefined;
  return {
    body: { ...requestBody, messages: prefill.messages, stream: true },
    splice: splicer(progress, prefill.trimmed),
  };
}

/**
 * The messages with the text appended as an assistant prefill (extending the request's own prefill
 * when it ends with one), and how many trailing whitespace characters were cut: the API rejects a
 * prefill ending in whitespace, though the client has already been sent it.
 */
function withPrefill(original: unknown[], text: string): { messages: unknown[]; trimmed: number } | undefined {
  const messages = original.slice();
  const last = obj(messages.at(-1));
  let base = '';
  let build: (prefill: string) => Json;
  if (last?.role === 'assistant' && typeof last.content === 'string') {
    base = last.content;
    build = (prefill) => ({ ...last, content: prefill });
    messages.pop();
  } else if (last?.role === 'assistant' && Array.isArray(last.content)) {
    const blocks = last.content.slice();
    const tail = obj(blocks.at(-1));
    if (tail?.type === 'text' && typeof tail.text === 'string') {
      base = tail.text;
      blocks.pop();
      build = (prefill) => ({ ...last, content: [...blocks, { ...tail, text: prefill }] });
    } else {
      build = (prefill) => ({ ...last, content: [...blocks, { type: 'text', text: prefill }] });
    }
    messages.pop();
  } else {
    build = (prefill) => ({ role: 'assistant', content: prefill });
  }
  const full = base + text;
  const prefill = full.trimEnd();
  if (prefill === '') return undefined;
  messages.push(build(prefill));
  return { messages, trimmed: full.length - prefill.length };
}

/**
 * Maps the continuation's events into the client's stream. State is the splicer's own, fixed when
 * the continuation was made: the tracker goes on observing what the splicer emits, so a second stall
 * starts from the client's view, the spliced text included.
 */
function splicer(progress: MessageProgress, trimmed: number): Continuation['splice'] {
  const open = progress.open;
  const earlier = progress.usage;
  // Where the continuation's block 0 lands: decided by its first content_block_start.
  let offset: number | undefined;
  // Whitespace the client already has and the model will likely write again after the trimmed prefill.
  let owed = trimmed;
  const emit = (data: Json) => sseBytes(data, progress.named ? String(data.type) : undefined);

  const unowed = (text: string): string => {
    let cut = 0;
    while (owed > 0 && cut < text.length && /\s/.test(text[cut])) {
      cut++;
      owed--;
    }
    // Past the first visible character, nothing is owed any more.
    if (cut < text.length) owed = 0;
    return text.slice(cut);
  };

  return (_event, data) => {
    let ev: Json | undefined;
    try {
      ev = obj(JSON.parse(data));
    } catch {
      return null;
    }
    if (!ev) return null;
    const index = num(ev.index);
    switch (ev.type) {
      case 'message_start':
      case 'ping':
        return null;
      case 'content_block_start': {
        const block = obj(ev.content_block) ?? {};
        const at = index ?? 0;
        const out: Buffer[] = [];
        if (offset === undefined) {
          if (at === 0 && open !== undefined && block.type === 'text') {
            // The first text block carries on the client's open one: no new block, only its text.
            offset = open;
            const rest = unowed(str(block.text) ?? '');
            return rest === '' ? null : emit({ type: 'content_block_delta', index: open, delta: { type: 'text_delta', text: rest } });
          }
          if (open !== undefined) out.push(emit({ type: 'content_block_stop', index: open }));
          offset = open !== undefined ? open + 1 : progress.blocks.length;
        }
        let content = block;
        if (block.type === 'text' && owed > 0) content = { ...block, text: unowed(str(block.text) ?? '') };
        else owed = 0;
        out.push(emit({ ...ev, index: at + offset, content_block: content }));
        return Buffer.concat(out);
      }
      case 'content_block_delta': {
        const delta = obj(ev.delta);
        if (delta?.type === 'text_delta' && owed > 0) {
          const rest = unowed(str(delta.text) ?? '');
          if (rest === '') return null;
          return emit({ ...ev, index: (index ?? 0) + (offset ?? 0), delta: { ...delta, text: rest } });
        }
        return emit({ ...ev, index: (index ?? 0) + (offset ?? 0) });
      }
      case 'message_delta': {
        const out: Buffer[] = [];
        // A continuation with no content at all still has to close the block the client has open.
        if (offset === undefined && open !== undefined) {
          out.push(emit({ type: 'content_block_stop', index: open }));
          offset = open + 1;
        }
        const usage: Json = { ...obj(ev.usage) };
        for (const key of SUMMED_USAGE) {
          const mine = num(usage[key]);
          // Both calls were billed, so the spliced answer reports what the two cost together.
          if (mine !== undefined || key === 'output_tokens') usage[key] = (earlier[key] ?? 0) + (mine ?? 0);
        }
        out.push(emit({ ...ev, usage }));
        return Buffer.concat(out);
      }
      default:
        // content_block_stop, message_stop, error and anything newer: indices shifted, the rest as sent.
        return emit(index === undefined ? ev : { ...ev, index: index + (offset ?? 0) });
    }
  };
}
