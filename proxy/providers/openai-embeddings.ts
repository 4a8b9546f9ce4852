// OpenAI embeddings: no messages and no stream, but a model to pin and prompt tokens to meter.
import type { EndpointAdapter } from './types.ts';
import { openaiUsage } from './openai-chat.ts';
import { requireModel, str } from './wire.ts';

function noStream(): never {
  throw new Error('embeddings do not stream');
}

export const openaiEmbeddings: EndpointAdapter = {
  name: 'openai.embeddings',
  parseRequest: (body) => ({
    kind: 'embeddings', model: requireModel(body, 'embeddings'), messages: [], tools: [],
    stream: false, streamUsage: false, streamUsageOptional: false,
  }),
  writeRequest: (body, req) => ({ ...body, model: req.model }),
  parseResponse: (body) => ({ model: str(body.model), text: '', toolCalls: [], usage: openaiUsage(body.usage) }),
  writeResponse: (body) => body,
  parseStreamEvent: noStream,
  isTerminal: () => false,
  writeStreamEvent: noStream,
};
