// The escalation queue on its own, over real SQLite files: a call's key attaches it to its escalation
// until its outcome is delivered once; approvals are bound to the exact arguments they approve; the
// deadline is kept across a restart; a decision written to the file by another process wakes the
// held call; model answers take a candidate's index; the webhook is retried until it lands, and its
// outbox survives a restart.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EscalationConfig } from '../../policies/types.ts';
import { applyVerdict } from '../../proxy/escalation/decide.ts';
import { EscalationQueue, type EscalationRequest } from '../../proxy/escalation/queue.ts';
import { EscalationStore } from '../../proxy/escalation/store.ts';
import { EscalationConsumedError, EscalationDecidedError, EscalationNotFoundError, InvalidApprovalError } from '../../proxy/errors.ts';
import { createMetrics } from '../../proxy/metrics.ts';
import { tempDataDir, waitFor } from '../helpers/warden.ts';

const SETTINGS: EscalationConfig = { timeoutMs: 600_000, onTimeout: 'fail', webhookHeaders: {}, webhookRetry: { attempts: 8, baseMs: 50, capMs: 200 } };
const SCHEMA = { type: 'object', additionalProperties: false, required: ['order_id', 'amount'], properties: { order_id: { type: 'string' }, amount: { type: 'number', maximum: 100 } } };

function queueAt(dir: string, settings: Partial<EscalationConfig> = {}, extra: Partial<ConstructorParameters<typeof EscalationQueue>[0]> = {}): EscalationQueue {
  return new EscalationQueue({ store: new EscalationStore(join(dir, 'escalations.db')), settings: () => ({ ...SETTINGS, ...settings }), pollMs: 50, ...extra });
}

function refund(key: string, args: unknown, timeoutMs = 60_000): EscalationRequest {
  return { kind: 'tool_call', key, agent: 'a1', session: 's1', requestId: `req-${key}`, tool: 'issue_refund', args, argsSchema: SCHEMA, reason: 'approval_required', timeoutMs };
}

const never = new AbortController().signal;

test('a call attaches to its escalation by key until its outcome is delivered; an approval releases one call', async () => {
  const q = queueAt(tempDataDir());
  try {
    const first = q.open(refund('k1', { order_id: 'ORD-1', amount: 80 }));
    assert.match(first.id, /^esc_[a-z2-7]{12}$/);
    assert.equal(q.open(refund('k1', { order_id: 'ORD-1', amount: 80 })).id, first.id, 'the same call sent again attaches');
    const waiting = q.wait(first.id, never);
    q.approve(first.id, { by: 'alice' });
    const d = await waiting;
    assert.equal(d.state, 'approved');
    assert.deepEqual(d.state === 'approved' && d.args, { order_id: 'ORD-1', amount: 80 });
    assert.equal(q.get(first.id)!.consumedAt !== undefined, true);
    assert.notEqual(q.open(refund('k1', { order_id: 'ORD-1', amount: 80 })).id, first.id, 'a delivered approval is not reused');

    // Two calls held on one escalation: the approval goes to one, the other needs its own.
    const shared = q.open(refund('k2', { order_id: 'ORD-2', amount: 5 }));
    const a = q.wait(shared.id, never);
    const b = q.wait(shared.id, never);
    q.approve(shared.id);
    const outcomes = await Promise.allSettled([a, b]);
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    assert.ok(outcomes.some((o) => o.status === 'rejected' && o.reason instanceof EscalationConsumedError));

    // A refusal reaches every call waiting on it.
    const refused = q.open(refund('k3', {}));
    const [r1, r2] = [q.wait(refused.id, never), q.wait(refused.id, never)];
    q.reject(refused.id, { by: 'bob', note: 'no' });
    assert.deepEqual(await Promise.all([r1, r2]), [{ state: 'rejected', by: 'bob', note: 'no' }, { state: 'rejected', by: 'bob', note: 'no' }]);
  } finally {
    q.close();
  }
});

test('an approval is bound to the hash of the exact arguments it approves; edited ones must fit the schema; decisions are final', async () => {
  const q = queueAt(tempDataDir());
  try {
    const esc = q.open(refund('k', { order_id: 'ORD-1', amount: 80 }));
    assert.throws(() => q.approve(esc.id, { args: { order_id: 'ORD-1', amount: 500 } }), (err: unknown) =>
      err instanceof InvalidApprovalError && err.status === 400 && /\/amount must be <= 100/.test(err.message));
    assert.throws(() => q.approve(esc.id, { choice: 1 }), InvalidApprovalError, 'a tool call has no candidates');
    assert.equal(q.get(esc.id)!.state, 'pending', 'a refused approval changes nothing');
    const approved = q.approve(esc.id, { by: 'alice', note: 'half', args: { amount: 40, order_id: 'ORD-1' } });
    // RFC 8785: keys sorted, so the hash does not depend on how the person wrote the object.
    const expected = createHash('sha256').update('{"amount":40,"order_id":"ORD-1"}').digest('hex');
    assert.deepEqual(approved.decision, { by: 'alice', note: 'half', args: { amount: 40, order_id: 'ORD-1' }, argsHash: expected, edited: true });
    const d = await q.wait(esc.id, never);
    assert.deepEqual(d, { state: 'approved', args: { amount: 40, order_id: 'ORD-1' }, argsHash: expected, edited: true, choice: undefined, by: 'alice', note: 'half' });
    assert.throws(() => q.approve(esc.id), (err: unknown) => err instanceof EscalationDecidedError && err.status === 409 && /already approved/.test(err.message));
    assert.throws(() => q.reject(esc.id), EscalationDecidedError);
    assert.throws(() => q.approve('esc_nosuchthing'), (err: unknown) => err instanceof EscalationNotFoundError && err.status === 404);
  } finally {
    q.close();
  }
});

test('a pending escalation times out at its deadline, which a restart does not reset; a decision on the file wakes the held call', async () => {
  const dir = tempDataDir();
  const metrics = createMetrics();
  const before = queueAt(dir);
  const esc = before.open(refund('k', {}, 400));
  before.close();
  const q = queueAt(dir, {}, { metrics });
  try {
    assert.equal(q.get(esc.id)!.state, 'pending');
    assert.equal(q.open(refund('k', {}, 60_000)).id, esc.id, 'the call sent to the new sidecar attaches, keeping its deadline');
    const d = await q.wait(esc.id, never);
    assert.deepEqual(d, { state: 'timed_out' });
    assert.ok(Date.now() >= esc.deadline, 'not before the deadline');
    assert.throws(() => q.approve(esc.id), /already timed out/);
    assert.match(await metrics.registry.metrics(), /warden_escalations\{state="timed_out"\} 1/);
    assert.match(await metrics.registry.metrics(), /warden_escalation_wait_seconds_count\{kind="tool_call",state="timed_out"\} 1/);

    // `warden escalations approve --data-dir`: another process writes the decision to the file.
    const held = q.open(refund('k2', { order_id: 'ORD-2', amount: 1 }));
    const waiting = q.wait(held.id, never);
    const cli = new EscalationStore(join(dir, 'escalations.db'));
    applyVerdict(cli, held.id, { state: 'approved', by: 'carol', args: { order_id: 'ORD-2', amount: 2 } });
    assert.throws(() => applyVerdict(cli, held.id, { state: 'rejected' }), EscalationDecidedError);
    cli.close();
    const woken = await waiting;
    assert.equal(woken.state, 'approved');
    assert.deepEqual(woken.state === 'approved' && woken.args, { order_id: 'ORD-2', amount: 2 });

    // A held call whose agent hangs up leaves its escalation open for the call to come back.
    const left = q.open(refund('k3', {}));
    const ac = new AbortController();
    const gone = q.wait(left.id, ac.signal);
    ac.abort(new Error('agent left'));
    await assert.rejects(gone, /agent left/);
    assert.equal(q.get(left.id)!.state, 'pending');
    assert.equal(q.get(left.id)!.consumedAt, undefined);
  } finally {
    q.close();
  }
});

test('the queue polls the file quickly only while a call waits; idle, it polls at the idle pace', async () => {
  /** Counts the polls for decisions made elsewhere (the query each tick runs). */
  class CountingStore extends EscalationStore {
    polls = 0;
    override unnoted() {
      this.polls++;
      return super.unnoted();
    }
  }
  const dir = tempDataDir();
  const store = new CountingStore(join(dir, 'escalations.db'));
  const q = new EscalationQueue({ store, settings: () => SETTINGS, pollMs: 20, idlePollMs: 300 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    await sleep(700);
    assert.ok(store.polls <= 5, `idle: ${store.polls} polls in 700 ms at a 300 ms pace`);
    const held = q.open(refund('k', {}));
    const waiting = q.wait(held.id, never);
    const before = store.polls;
    await sleep(300);
    assert.ok(store.polls - before >= 5, `waiting: ${store.polls - before} polls in 300 ms at a 20 ms pace`);
    // A decision written to the file by another process wakes the call at the quick pace.
    const cli = new EscalationStore(join(dir, 'escalations.db'));
    const decidedAt = Date.now();
    applyVerdict(cli, held.id, { state: 'rejected', by: 'erin' });
    cli.close();
    assert.equal((await waiting).state, 'rejected');
    assert.ok(Date.now() - decidedAt < 250, `woken after ${Date.now() - decidedAt} ms`);
    await sleep(100);
    const after = store.polls;
    await sleep(600);
    assert.ok(store.polls - after <= 3, `idle again: ${store.polls - after} polls in 600 ms`);
  } finally {
    q.close();
  }
});

test('model answers: approve picks a candidate by index (default 0); arguments and out-of-range choices are refused', async () => {
  const q = queueAt(tempDataDir());
  try {
    const candidates = [{ text: 'Paris', votes: 1 }, { text: 'Lyon', votes: 1 }, { text: 'Nice', votes: 1 }];
    const open = (key: string) => q.open({ kind: 'model_answer', key, agent: 'a1', requestId: key, candidates, reason: 'the jury agreed at 0.33', timeoutMs: 60_000 });
    const esc = open('model:1');
    assert.deepEqual(q.get(esc.id)!.candidates, candidates);
    assert.throws(() => q.approve(esc.id, { args: {} }), InvalidApprovalError);
    assert.throws(() => q.approve(esc.id, { choice: 3 }), /choice must be a candidate's index, 0 to 2/);
    q.approve(esc.id, { choice: 2, by: 'dan' });
    assert.deepEqual(await q.wait(esc.id, never), { state: 'approved', args: undefined, argsHash: undefined, edited: undefined, choice: 2, by: 'dan', note: undefined });
    const plain = open('model:2');
    q.approve(plain.id);
    const d = await q.wait(plain.id, never);
    assert.equal(d.state === 'approved' && d.choice, 0);
  } finally {
    q.close();
  }
});

interface Hook {
  url: string;
  got: { body: any; headers: IncomingHttpHeaders }[];
  failing: () => boolean;
  close(): Promise<void>;
}

/** A webhook receiver that answers 500 while `failing()` says so. */
async function startHook(failing: () => boolean): Promise<Hook> {
  const got: Hook['got'] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      got.push({ body: JSON.parse(text), headers: req.headers });
      res.writeHead(failing() ? 500 : 204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, failing, close: () => new Promise((r) => server.close(() => r())) };
}

test('the webhook is retried with backoff until it lands, resumes after a restart, and is given up after its attempts', async () => {
  let calls = 0;
  const hook = await startHook(() => ++calls <= 2);
  const dir = tempDataDir();
  const q = queueAt(dir, { webhook: hook.url, webhookHeaders: { authorization: 'Bearer hook-token' } });
  try {
    const esc = q.open(refund('k', { order_id: 'ORD-1', amount: 80 }));
    await waitFor(() => hook.got.length === 3 && q.outbox().length === 0, 5_000, 'a delivered webhook');
    const { body, headers } = hook.got[2];
    assert.deepEqual([body.id, body.kind, body.agent, body.tool, body.reason, body.admin.approve], [esc.id, 'tool_call', 'a1', 'issue_refund', 'approval_required', `/escalations/${esc.id}/approve`]);
    assert.match(body.text, new RegExp(`warden escalations approve ${esc.id}`));
    assert.deepEqual([headers.authorization, headers['idempotency-key']], ['Bearer hook-token', esc.id]);
    assert.ok(hook.got.every((g) => g.body.id === esc.id), 'one notification, sent again');
  } finally {
    q.close();
    await hook.close();
  }

  // Down when the call is held; the sidecar restarts; the new one delivers from the outbox.
  let down = true;
  const later = await startHook(() => down);
  const first = queueAt(dir, { webhook: later.url });
  const esc = first.open(refund('k2', {}));
  await waitFor(() => later.got.length >= 1 && first.outbox()[0]?.attempts >= 1, 5_000, 'a failed attempt');
  first.close();
  down = false;
  const second = queueAt(dir, { webhook: later.url });
  try {
    await waitFor(() => second.outbox().length === 0 && !later.failing(), 5_000, 'the outbox drained after the restart');
    assert.equal(later.got.at(-1)!.body.id, esc.id);
  } finally {
    second.close();
  }

  // A receiver that never answers 2xx: given up after `attempts`, the escalation itself unaffected.
  down = true;
  const stubborn = queueAt(tempDataDir(), { webhook: later.url, webhookRetry: { attempts: 2, baseMs: 20, capMs: 20 } });
  try {
    const before = later.got.length;
    const held = stubborn.open(refund('k3', {}));
    await waitFor(() => stubborn.outbox().length === 0, 5_000, 'the webhook given up');
    assert.equal(later.got.length - before, 2);
    assert.equal(stubborn.get(held.id)!.state, 'pending');
  } finally {
    stubborn.close();
    await later.close();
  }
});

test('a jury\'s kept answers live with their escalation, in one transaction, only while a call can still attach', () => {
  const store = new EscalationStore(join(tempDataDir(), 'escalations.db'));
  try {
    const answer = (text: string) => ({ status: 200, headers: { 'content-type': 'application/json' }, raw: Buffer.from(text), upstream: 'openai', model: 'gpt-4o' });
    const base = { kind: 'model_answer' as const, agent: 'a1', requestId: 'r', reason: 'split jury', candidates: [{ text: 'A' }, { text: 'B' }], createdAt: 0, deadline: 9e15 };
    store.insert({ ...base, id: 'esc_open', key: 'k-open' }, [answer('A'), answer('B')]);
    store.insert({ ...base, id: 'esc_old', key: 'k-old' }, [answer('C')]);
    store.insert({ ...base, id: 'esc_done', key: 'k-done' }, [answer('D')]);
    assert.deepEqual(store.answers('esc_open').map((a) => [a.raw.toString(), a.upstream, a.model]), [['A', 'openai', 'gpt-4o'], ['B', 'openai', 'gpt-4o']]);
    const now = Date.now();
    assert.ok(store.decide('esc_old', 'approved', { choice: 0 }, now - 10_000));
    assert.ok(store.decide('esc_done', 'approved', { choice: 0 }, now));
    assert.ok(store.consume('esc_done', now));
    assert.deepEqual(store.answers('esc_done'), [], 'delivered: dropped at once');
    // Decided before the claim window: no call can attach any more.
    assert.equal(store.pruneAnswers(now - 5_000), 1);
    assert.deepEqual(store.answers('esc_old'), []);
    assert.equal(store.answers('esc_open').length, 2, 'pending: kept');
  } finally {
    store.close();
  }
});
