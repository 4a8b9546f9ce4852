// The demo's limits scene: a task over its per-task rate limit gets a 429 with Retry-After while other
// tasks go on, and a task's daily budget stops it once spent. The demo policy sets the limits per task
// (limits.perTask), and only this scene's task ids reach them.
import { call, expect, type Scene } from './scene-kit.ts';

export const LIMIT_SCENES: Scene[] = [
  {
    title: 'Limits and budgets: a task over its rate limit gets 429 with Retry-After; its budget stops it',
    async run(env) {
      const ask = (task: string, headers: Record<string, string> = {}) => call(`${env.trafficUrl}/v1/chat/completions`, {
        model: 'gpt-4o', messages: [{ role: 'user', content: 'What is the next step?' }],
      }, { 'x-warden-task': task, ...headers });
      const statuses: number[] = [];
      let limited;
      for (let i = 0; i < 6; i++) {
        const r = await ask('demo-limits');
        statuses.push(r.status);
        if (r.status === 429) limited = r;
      }
      expect(statuses.join(' ') === '200 200 200 200 200 429', `five calls, then a 429 (limits.perTask.requestsPerMinute: 5), got ${statuses.join(' ')}`);
      const other = await ask('demo-limits-other');
      expect(other.status === 200, `another task to go on, got ${other.status}`);
      // A 2,000-word answer costs about $0.02 at gpt-4o's output price: the whole of the task's day.
      const long = await ask('demo-budget', { 'x-fake-scenario': 'words=2000' });
      const over = await ask('demo-budget');
      expect(long.status === 200 && over.status === 429 && over.json?.error?.code === 'WARDEN_ERR_BUDGET_EXCEEDED', `the budget to stop the task, got ${over.status} ${over.text.slice(0, 120)}`);
      const metrics = (await call(`${env.adminUrl}/metrics`, undefined)).text.split('\n').filter((l) => l.startsWith('warden_rate_limited_total'));
      return [
        `task demo-limits, six calls in a row: ${statuses.join(' ')}`,
        `the 429: Retry-After: ${limited!.headers['retry-after']} s (a slot frees every 12 s), ${limited!.json?.error?.code}: ${limited!.json?.error?.message}`,
        `task demo-limits-other meanwhile: ${other.status}, it has an allowance of its own`,
        `task demo-budget: one long answer, then ${over.status} ${over.json?.error?.code}, Retry-After: ${over.headers['retry-after']} s (UTC midnight): ${over.json?.error?.message}`,
        ...metrics,
      ];
    },
  },
];
