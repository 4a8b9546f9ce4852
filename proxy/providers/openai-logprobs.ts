// Token logprobs in OpenAI chat completions: asked for with `logprobs: true`, returned per choice as
// `logprobs.content[].logprob`, whole or per chunk. Only the first choice is scored: it is the answer
// the canonical form (and so every stage) reads.
import type { Json, LogprobSupport } from './types.ts';
import { arr, num, obj } from './wire.ts';

function ofChoice(choice: unknown): number[] {
  return arr(obj(obj(choice)?.logprobs)?.content).flatMap((t) => {
    const lp = num(obj(t)?.logprob);
    return lp === undefined ? [] : [lp];
  });
}

function firstChoice(body: Json): unknown {
  return arr(body.choices).find((c) => (obj(c)?.index ?? 0) === 0);
}

function clear(body: Json): void {
  // `logprobs: null` is what the API itself sends when they were not asked for.
  for (const c of arr(body.choices)) {
    const choice = obj(c);
    if (choice && 'logprobs' in choice) choice.logprobs = null;
  }
}

export const openaiChatLogprobs: LogprobSupport = {
  asked: (body) => body.logprobs === true,
  ask: (body) => ({ ...body, logprobs: true }),
  ofResponse: (body) => ofChoice(firstChoice(body)),
  ofEvent: (data) => ofChoice(firstChoice(data)),
  strip: clear,
  stripEvent: clear,
};
