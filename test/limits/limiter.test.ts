// The sidecar-wide limiter under a clock the test moves: each limit refuses the call after its last
// allowed one with the Retry-After its window really frees at; tokens are reserved and settled against
// reported usage; concurrency frees when a call ends; spend is per UTC day and survives a reopen of
// its store; tasks are held apart; irreversible tool calls per hour.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { HOLD, Limiter, type CallDemand, type Hold, type LimitHit } from '../../proxy/limits/limiter.ts';
import { msToUtcMidnight, SpendStore, utcDay } from '../../proxy/limits/spend-store.ts';
import type { LimitsConfig } from '../../policies/types.ts';
import { testCall, testPolicy } from '../helpers/policy.ts';
import { tempDataDir } from '../helpers/warden.ts';

const NOON = Date.UTC(2025, 5, 1, 12, 0, 0);

function limiter(start = NOON, spend = new SpendStore(':memory:')) {
  const clock = { now: start };
  const refused: string[] = [];
  const l = new Limiter({ spend, now: () => clock.now, onRefused: (limit) => refused.push(limit) });
  return { l, clock, refused };
}

function demand(limits: Partial<LimitsConfig>, extra: Partial<CallDemand> = {}): CallDemand {
  return { agent: 'a1', limits: { maxBodyBytes: 1_000, ...limits }, tokens: 0, ...extra };
}

function hitOf(r: ReturnType<Limiter['admit']>): LimitHit {
  assert.ok('hit' in r, 'expected the call to be refused');
  return r.hit;
}

function holdOf(r: ReturnType<Limiter['admit']>): Hold {
  assert.ok('hold' in r, `expected the call to be admitted, got ${'hit' in r ? r.hit.message : ''}`);
  return r.hold;
}

/** Ends a call the way the traffic listener does, with the usage and cost the upstream reported. */
function end(l: Limiter, hold: Hold | undefined, usage?: { in: number; out: number }, costUsd?: number, status = 200, task?: string) {
  const base = testCall(testPolicy());
  const call = { ...base, agent: { ...base.agent, id: 'a1' }, task, costUsd, usage: usage && { inputTokens: usage.in, outputTokens: usage.out, cachedInputTokens: 0, cacheWriteTokens: 0 } };
  if (hold) call.state.set(HOLD, hold);
  l.settle(call, status);
}

test('requestsPerMinute: the (N+1)th call gets the seconds until a slot frees; a second earlier it is still refused', () => {
  const { l, clock } = limiter();
  for (let i = 0; i < 6; i++) holdOf(l.admit(demand({ requestsPerMinute: 6 })));
  clock.now += 2_500;
  const hit = hitOf(l.admit(demand({ requestsPerMinute: 6 })));
  assert.equal(hit.limit, 'requests_per_minute');
  assert.equal(hit.retryAfterSeconds, 8, 'a slot frees 10 s after the burst, 7.5 s from now: 8 whole seconds');
  assert.match(hit.message, /^rate limit reached: limits\.requestsPerMinute is 6 \(requests per minute for agent a1\); retry in 8 s$/);
  clock.now += (hit.retryAfterSeconds - 1) * 1_000;
  assert.equal(hitOf(l.admit(demand({ requestsPerMinute: 6 }))).retryAfterSeconds, 1, 'one second early');
  clock.now += 1_000;
  holdOf(l.admit(demand({ requestsPerMinute: 6 })));
});

test('a refused call takes nothing from the other limits', () => {
  const { l } = limiter();
  holdOf(l.admit(demand({ requestsPerMinute: 100, tokensPerMinute: 1_000 }, { tokens: 900 })));
  hitOf(l.admit(demand({ requestsPerMinute: 100, tokensPerMinute: 1_000 }, { tokens: 900 })));
  assert.equal(l.state('a1').requests, 99, 'the refused call spent no request');
});

test('several limits refuse: the one that frees last is named, because only then can the call go', () => {
  const { l } = limiter();
  const limits = { requestsPerMinute: 1, concurrent: 1 };
  holdOf(l.admit(demand(limits)));
  const hit = hitOf(l.admit(demand(limits)));
  assert.equal(hit.limit, 'requests_per_minute');
  assert.equal(hit.retryAfterSeconds, 60);
});

test('tokensPerMinute: the reservation is settled against the reported usage, refunded or charged', () => {
  const { l, clock } = limiter();
  const limits = { tokensPerMinute: 10_000 };
  const first = holdOf(l.admit(demand(limits, { tokens: 6_000 })));
  const refused = hitOf(l.admit(demand(limits, { tokens: 6_000 })));
  assert.equal(refused.limit, 'tokens_per_minute');
  assert.equal(refused.retryAfterSeconds, 12, '2000 tokens short at 10000 a minute');
  assert.match(refused.message, /this call reserves 6000, its estimated input plus its max output/);
  end(l, first, { in: 500, out: 500 }); // used 1000 of the 6000 reserved
  assert.equal(l.state('a1').tokens, 9_000);
  const second = holdOf(l.admit(demand(limits, { tokens: 1_000 })));
  end(l, second, { in: 4_000, out: 4_000 }); // 7000 more than reserved: charged
  assert.equal(l.state('a1').tokens, 1_000);
  clock.now += 30_000;
  assert.equal(l.state('a1').tokens, 6_000);
});

test('without reported usage the reservation stands, unless the call ended in an error answer', () => {
  const { l } = limiter();
  const limits = { tokensPerMinute: 10_000 };
  end(l, holdOf(l.admit(demand(limits, { tokens: 3_000 }))), undefined, undefined, 200);
  assert.equal(l.state('a1').tokens, 7_000, 'a stream that ended without usage: the estimate stands');
  end(l, holdOf(l.admit(demand(limits, { tokens: 3_000 }))), undefined, undefined, 503);
  assert.equal(l.state('a1').tokens, 7_000, 'an error answer is refunded');
  const hold = holdOf(l.admit(demand(limits, { tokens: 1_000 })));
  end(l, hold, { in: 10, out: 0 });
  end(l, hold, { in: 10, out: 0 });
  assert.equal(l.state('a1').tokens, 6_990, 'settled once');
});

test('concurrent: a full limit answers at once with Retry-After 1, and a slot frees when a call ends', () => {
  const { l } = limiter();
  const a = holdOf(l.admit(demand({ concurrent: 2 })));
  holdOf(l.admit(demand({ concurrent: 2 })));
  const hit = hitOf(l.admit(demand({ concurrent: 2 })));
  assert.deepEqual([hit.limit, hit.retryAfterSeconds], ['concurrent', 1]);
  assert.match(hit.message, /^concurrency limit reached: limits\.concurrent is 2 /);
  end(l, a, undefined, undefined, 500);
  assert.equal(l.state('a1').inFlight, 1);
  holdOf(l.admit(demand({ concurrent: 2 })));
});

test('usdPerDay: spent ≥ budget refuses until UTC midnight; the next UTC day starts afresh', () => {
  const { l, clock } = limiter();
  const limits = { usdPerDay: 1 };
  end(l, holdOf(l.admit(demand(limits))), undefined, 0.6);
  end(l, holdOf(l.admit(demand(limits))), undefined, 0.6); // admitted at $0.60 spent; now $1.20
  const hit = hitOf(l.admit(demand(limits)));
  assert.equal(hit.limit, 'usd_per_day');
  assert.equal(hit.retryAfterSeconds, 12 * 3_600, 'noon to midnight');
  assert.match(hit.message, /^daily budget spent: limits\.usdPerDay is \$1 \(USD per UTC day for agent a1, and \$1\.2 is spent today\); it starts afresh at UTC midnight, in 43200 s$/);
  clock.now = Date.UTC(2025, 5, 1, 23, 59, 59, 500);
  assert.equal(hitOf(l.admit(demand(limits))).retryAfterSeconds, 1);
  clock.now = Date.UTC(2025, 5, 2);
  holdOf(l.admit(demand(limits)));
});

test('daily spend survives a restart: a new limiter on the same store refuses at once', () => {
  const path = join(tempDataDir(), 'limits.db');
  const first = limiter(NOON, new SpendStore(path));
  end(first.l, holdOf(first.l.admit(demand({ usdPerDay: 2 }))), undefined, 2.5);
  first.l.close();
  const second = limiter(NOON + 60_000, new SpendStore(path));
  assert.equal(hitOf(second.l.admit(demand({ usdPerDay: 2 }))).limit, 'usd_per_day');
  assert.equal(second.l.state('a1').usdToday, 2.5);
  second.l.close();
});

test('perTask: each task has its own allowance on top of the agent\'s; calls without a task only the agent\'s', () => {
  const { l } = limiter();
  const limits = { requestsPerMinute: 100, perTask: { requestsPerMinute: 2, usdPerDay: 1 } };
  holdOf(l.admit(demand(limits, { task: 't1' })));
  holdOf(l.admit(demand(limits, { task: 't1' })));
  const hit = hitOf(l.admit(demand(limits, { task: 't1' })));
  assert.equal(hit.limit, 'task_requests_per_minute');
  assert.equal(hit.retryAfterSeconds, 30);
  assert.match(hit.message, /limits\.perTask\.requestsPerMinute is 2 \(requests per minute for task "t1" of agent a1\)/);
  holdOf(l.admit(demand(limits, { task: 't2' })));
  for (let i = 0; i < 5; i++) holdOf(l.admit(demand(limits)));
  end(l, undefined, undefined, 1.5, 200, 't2');
  assert.equal(hitOf(l.admit(demand(limits, { task: 't2' }))).limit, 'task_usd_per_day');
  assert.equal(l.state('a1', 't2').taskUsdToday, 1.5);
  assert.equal(l.state('a1').usdToday, 1.5, 'the task\'s spend is the agent\'s too');
});

test('a reload that changes a limit keeps what was spent', () => {
  const { l } = limiter();
  for (let i = 0; i < 4; i++) holdOf(l.admit(demand({ requestsPerMinute: 4 })));
  hitOf(l.admit(demand({ requestsPerMinute: 4 })));
  holdOf(l.admit(demand({ requestsPerMinute: 5 })));
  hitOf(l.admit(demand({ requestsPerMinute: 5 })));
  holdOf(l.admit(demand({}))); // a limit removed no longer applies
});

test('irreversible tool calls per hour: all or none for a batch, never more than the hour allows', () => {
  const { l, clock } = limiter();
  assert.equal(l.takeIrreversible('a1', 2, 3), undefined);
  const hit = l.takeIrreversible('a1', 2, 3)!;
  assert.deepEqual([hit.limit, hit.retryAfterSeconds], ['irreversible_tools', 1_200]);
  assert.match(hit.message, /limits\.irreversibleToolCallsPerHour is 3 \(irreversible tool calls per hour for agent a1, and this batch has 2 irreversible calls\)/);
  assert.equal(l.takeIrreversible('a1', 1, 3), undefined, 'the refused batch took nothing');
  assert.equal(l.takeIrreversible('a1', 4, 3)?.retryAfterSeconds, 3_600, 'a batch over the hour\'s allowance never fits');
  clock.now += 1_200_000;
  assert.equal(l.takeIrreversible('a1', 1, 3), undefined);
});

test('settle never throws: a store that fails is reported, and the slot is freed all the same', () => {
  const spend = new SpendStore(':memory:');
  const errors: unknown[] = [];
  const l = new Limiter({ spend, now: () => NOON, onError: (e) => errors.push(e) });
  const hold = holdOf(l.admit(demand({ concurrent: 1 })));
  spend.close();
  end(l, hold, undefined, 0.1);
  assert.equal(errors.length, 1);
  assert.equal(hold.slot?.n, 0);
});

test('UTC helpers', () => {
  assert.equal(utcDay(NOON), '2025-06-01');
  // The day is remembered: each instant around midnight still gets its own day, in either order.
  const midnight = Date.UTC(2025, 5, 2);
  for (const ms of [midnight - 1, midnight, midnight - 1, NOON, midnight + 86_400_000 - 1, midnight + 86_400_000, -1, 0]) {
    assert.equal(utcDay(ms), new Date(ms).toISOString().slice(0, 10), String(ms));
  }
  assert.equal(msToUtcMidnight(NOON), 12 * 3_600_000);
  assert.equal(msToUtcMidnight(Date.UTC(2025, 5, 2)), 86_400_000);
});
