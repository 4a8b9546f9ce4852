// A stream that stalls while a possible secret is held back: closing it as a truncated answer
// releases the held text, redacted, before the finish (chat and Anthropic, through the SDKs); the
// record's stalled-attempt partial is what the agent had then, with nothing held in it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { auditRecords } from '../helpers/audit.ts';
import { anthropicEvents, chatEvents, script, sse } from '../helpers/scripted.ts';
import { sanitizingSidecar } from './setup.ts';

const ctx = sanitizingSidecar('st.yaml', `sanitize: {}
retries:
  timeouts: { idleMs: 300 }
  onStall: return_partial
`);

test('openai chat: the held address is released redacted with the length-cut finish; the record holds no piece of it', async () => {
  // The role chunk, "mail ", then the address, held (it could go on: .com.au); then silence.
  script(ctx.fake, (_req, _n, res) => sse(res, chatEvents('mail ann.lee@example.com'), 3));
  const c = new OpenAI({ apiKey: 'sk', baseURL: `${ctx.warden.trafficUrl}/v1`, maxRetries: 0 });
  const final = await c.chat.completions.stream({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] }).finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'mail <EMAIL>');
  assert.equal(final.choices[0].finish_reason, 'length');
  const rec = auditRecords(ctx.dataDir).at(-1)!;
  assert.ok(!JSON.stringify(rec).includes('ann.lee'), JSON.stringify(rec.decisions));
  // When the stall hit, the agent had "mail " (the address was held); the closed answer has it redacted.
  assert.equal(rec.decisions.find((d: any) => d.decision === 'stalled').detail.partial.value.text, 'mail ');
  assert.equal(rec.response.value.text, 'mail <EMAIL>');
});

test('anthropic: the held text is released before the closing content_block_stop', async () => {
  script(ctx.fake, (_req, _n, res) => sse(res, anthropicEvents(['mail ann.lee@exa', 'mple.com', ' later']), 4));
  const c = new Anthropic({ apiKey: 'sk', baseURL: `${ctx.warden.trafficUrl}/anthropic`, maxRetries: 0 });
  const final = await c.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
  assert.equal((final.content[0] as { text: string }).text, 'mail <EMAIL>');
  assert.equal(final.stop_reason, 'max_tokens');
});
