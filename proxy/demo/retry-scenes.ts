// The demo's retry scenes: transport retries that wait out Retry-After, a Retry-After too long to
// wait passed to the agent, a stream that stalls mid-answer, and a critical call judged by a jury.
import { call, expect, type Scene } from './scene-kit.ts';

const ask = (content: string) => ({ model: 'gpt-4o', messages: [{ role: 'user', content }] });

export const RETRY_SCENES: Scene[] = [
  {
    title: 'Transport retries: a 429 with Retry-After: 1 is waited out, then retried',
    async run(env) {
      const started = performance.now();
      // times=1: the fake upstream fails this request once, then answers.
      const r = await call(`${env.trafficUrl}/v1/chat/completions`, ask('hi'), { 'x-fake-scenario': `status=429;retry-after=1;times=1;id=${Date.now()}` });
      const waited = performance.now() - started;
      expect(r.status === 200, `200 after the retry, got ${r.status}`);
      expect(waited >= 1_000, `a wait of at least 1 s, waited ${waited.toFixed(0)} ms`);
      return [`200 after ${(waited / 1000).toFixed(2)} s; x-warden-actions: ${r.headers['x-warden-actions']}`];
    },
  },
  {
    title: 'A Retry-After longer than the policy waits (backoff.maxRetryAfterMs) goes straight to the agent',
    async run(env) {
      const r = await call(`${env.trafficUrl}/v1/chat/completions`, ask('hi'), { 'x-fake-scenario': 'status=429;retry-after=7' });
      expect(r.status === 429 && r.headers['retry-after'] === '7', '429 with Retry-After: 7');
      return [`${r.status}, Retry-After: ${r.headers['retry-after']}, body ${r.text}`];
    },
  },
  {
    title: 'A stream that stalls mid-answer ends as a truncated answer; the record keeps the partial output',
    async run(env) {
      const r = await call(`${env.trafficUrl}/v1/chat/completions`, { ...ask('tell me a long story'), stream: true }, { 'x-fake-scenario': 'stall-after=4;words=40' });
      const events = r.text.split('\n\n').filter((e) => e.startsWith('data:'));
      const last = events.filter((e) => e.includes('"finish_reason":"length"'));
      expect(r.status === 200 && last.length === 1 && events.at(-1) === 'data: [DONE]', 'a stream finished with finish_reason "length"');
      return [`${events.length} events; the last chunk: ${last[0].slice(6, 160)}…`, `x-warden-actions: ${r.headers['x-warden-actions'] ?? '(sent before the stall)'}`];
    },
  },
  {
    title: 'A critical call (x-warden-critical) runs three times at once; a jury picks the answer',
    async run(env) {
      const r = await call(`${env.trafficUrl}/v1/chat/completions`, ask('Is the order refundable?'), { 'x-warden-critical': '1' });
      expect(r.status === 200 && String(r.headers['x-warden-actions']).includes('jury:3'), 'a jury of 3');
      return [`answer: ${r.json?.choices?.[0]?.message?.content}`, `x-warden-actions: ${r.headers['x-warden-actions']}`];
    },
  },
];
