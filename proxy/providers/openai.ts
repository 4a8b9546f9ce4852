// The OpenAI wire format as data: Bearer auth, `{"error":{…}}` bodies, `data:`-only SSE errors.
import type { WardenError } from '../errors.ts';
import type { ProviderSpec } from './types.ts';
import { openaiChat } from './openai-chat.ts';
import { openaiEmbeddings } from './openai-embeddings.ts';
import { openaiResponses } from './openai-responses.ts';

function errorJson(err: WardenError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: null, code: err.code } });
}

export const openaiProvider: ProviderSpec = {
  name: 'openai',
  auth: { header: 'authorization', scheme: 'Bearer' },
  // `api-key` is Azure OpenAI's header.
  credentialHeaders: ['authorization', 'api-key'],
  endpoints: [
    { method: 'POST', suffix: '/chat/completions', adapter: openaiChat },
    { method: 'POST', suffix: '/responses', adapter: openaiResponses },
    { method: 'POST', suffix: '/embeddings', adapter: openaiEmbeddings },
  ],
  errorBody: errorJson,
  streamErrorEvent: (err) => `data: ${errorJson(err)}\n\n`,
  ownCall: {
    path: '/chat/completions',
    headers: {},
    body: (model, system, user, maxTokens) => ({ model, max_tokens: maxTokens, messages: [{ role: 'system', content: system }, { role: 'user', content: user }] }),
  },
};
