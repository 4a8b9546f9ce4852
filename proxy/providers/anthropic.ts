// The Anthropic wire format as data: x-api-key auth, `{"type":"error",…}` bodies, named SSE error events.
import type { WardenError } from '../errors.ts';
import type { ProviderSpec } from './types.ts';
import { anthropicMessages } from './anthropic-messages.ts';

function errorJson(err: WardenError): string {
  return JSON.stringify({ type: 'error', error: { type: err.type, message: err.message, code: err.code } });
}

export const anthropicProvider: ProviderSpec = {
  name: 'anthropic',
  auth: { header: 'x-api-key', scheme: '' },
  credentialHeaders: ['x-api-key', 'authorization'],
  // count_tokens and batches are not model calls: they pass through untouched.
  endpoints: [{ method: 'POST', suffix: '/messages', adapter: anthropicMessages }],
  errorBody: errorJson,
  streamErrorEvent: (err) => `event: error\ndata: ${errorJson(err)}\n\n`,
  retryableStatuses: [529],
  ownCall: {
    path: '/v1/messages',
    headers: { 'anthropic-version': '2023-06-01' },
    body: (model, system, user, maxTokens) => ({ model, max_tokens: maxTokens, system, messages: [{ role: 'user', content: user }] }),
  },
};
