// The token bucket under a clock the test moves: a burst of N, then one every period/N, a wait that is
// exact to the millisecond, debt from a charge after the fact, refunds capped at the capacity, and a
// resize on reload that neither refills nor drains.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../proxy/limits/token-bucket.ts';

test('N at once, then the (N+1)th waits exactly period/N', () => {
  const b = new TokenBucket(3, 60_000, 0);
  for (let i = 0; i < 3; i++) {
    assert.equal(b.waitMs(1, 0), 0);
    b.take(1, 0);
  }
  assert.equal(b.waitMs(1, 0), 20_000);
  assert.equal(b.waitMs(1, 19_999), 1, 'one millisecond short');
  assert.equal(b.waitMs(1, 20_000), 0, 'the slot frees at 20 s exactly');
  b.take(1, 20_000);
  assert.equal(b.waitMs(1, 20_000), 20_000, 'and only one slot freed');
});

test('the wait counts from the first call of the burst, not the last', () => {
  const b = new TokenBucket(20, 60_000, 1_000);
  for (let t = 1_000; t < 1_200; t += 10) b.take(1, t); // 20 calls over 190 ms
  assert.ok(Math.abs(b.level(1_190) - (190 * 20) / 60_000) < 1e-9);
  assert.equal(b.waitMs(1, 1_190), 3_000 - 190);
});

test('a charge after the fact puts the bucket in debt; the debt delays the next call by as long as it takes to earn', () => {
  const b = new TokenBucket(1_000, 60_000, 0);
  b.take(600, 0);
  b.take(900, 0); // the reported usage was 900 more than reserved
  assert.equal(b.level(0), -500);
  assert.equal(b.waitMs(100, 0), (600 * 60_000) / 1_000);
  assert.equal(b.waitMs(100, 36_000), 0);
});

test('a refund never lifts the bucket over its capacity', () => {
  const b = new TokenBucket(1_000, 60_000, 0);
  b.take(800, 0);
  b.give(500, 30_000); // refilled 500 meanwhile
  assert.equal(b.level(30_000), 1_000);
});

test('a cost larger than the capacity waits for a full bucket, then goes once', () => {
  const b = new TokenBucket(1_000, 60_000, 0);
  b.take(100, 0);
  assert.equal(b.waitMs(5_000, 0), 6_000, 'waits for the 100 to come back');
  assert.equal(b.waitMs(5_000, 6_000), 0);
  b.take(5_000, 6_000);
  assert.equal(b.level(6_000), -4_000);
});

test('resize keeps what was spent; a clock stepping back refills nothing', () => {
  const b = new TokenBucket(100, 60_000, 0);
  b.take(40, 0);
  b.resize(200, 60_000, 0);
  assert.equal(b.level(0), 160);
  b.resize(50, 60_000, 0);
  assert.equal(b.level(0), 10);
  assert.equal(b.level(-5_000), 10);
});
