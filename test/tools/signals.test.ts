import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { scoreToolResult, type SignalName } from '../../proxy/tools/signals.ts';

const THRESHOLD = 0.5; // the policy's default suspicionThreshold

function names(result: unknown, args?: unknown): SignalName[] {
  return scoreToolResult(result, args).signals.map((s) => s.name);
}

function detects(name: SignalName, result: unknown, args?: unknown): void {
  assert.ok(names(result, args).includes(name), `expected ${name} in ${JSON.stringify(scoreToolResult(result, args))}`);
}

function misses(name: SignalName, result: unknown, args?: unknown): void {
  assert.ok(!names(result, args).includes(name), `did not expect ${name} in ${JSON.stringify(scoreToolResult(result, args))}`);
}

test('round_numbers: every figure round; not a round price among irregular ones, nor statuses and paging', () => {
  detects('round_numbers', { temperature: 20, humidity: 60, wind_speed: 10, pressure: 1010 });
  detects('round_numbers', '{"price": 120.00, "change": 2.50, "volume": 50000000}');
  misses('round_numbers', { price: 20, tax: 1.65, total: 21.65 });
  misses('round_numbers', { price: '20.00', quantity: 3 });
  misses('round_numbers', { status: 200, page: 1, per_page: 100, limit: 50, total: 1482 });
  // The caller's own round amount, repeated back, is not the tool's invention.
  misses('round_numbers', { amount: 100, rate: 1.0832, converted: 108.32 }, { amount: 100 });
  assert.ok(scoreToolResult({ a: 10, b: 20, c: 30 }).score < THRESHOLD, 'three round figures alone stay under the threshold');
});

test('round_numbers: figures in prose count, digits of dates and paths do not', () => {
  detects('round_numbers', 'It is 15°C in Oslo, humidity 70% and wind 10 km/h.');
  misses('round_numbers', 'src/a.ts:120:  // fixed in 2.10.0 on 2025-03-10, see #4100');
});

test('round_times: every timestamp on the hour; not when one has minutes or seconds', () => {
  detects('round_times', [{ at: '2025-05-14T08:00:00' }, { at: '2025-05-14T12:00:00' }, { at: '2025-05-14T16:00:00Z' }]);
  detects('round_times', { events: [{ created: 1704067200 }, { created: 1704153600 }, { created: 1704240000 }] });
  misses('round_times', [{ at: '2025-05-14T08:00:00' }, { at: '2025-05-14T12:00:00' }, { at: '2025-05-14T14:07:31' }]);
  misses('round_times', [{ at: '2025-05-14T08:00:00' }, { at: '2025-05-14T12:00:00' }]);
});

test('sequential_ids: 1, 2, 3 and ORD-001, ORD-002; not scattered ids, quantities or days', () => {
  detects('sequential_ids', [{ id: 1, name: 'a' }, { id: 2, name: 'b' }, { id: 3, name: 'c' }]);
  detects('sequential_ids', { orders: [{ order_id: 'ORD-001' }, { order_id: 'ORD-002' }] });
  detects('sequential_ids', { ids: [1001, 1002, 1003] });
  misses('sequential_ids', [{ number: 4127 }, { number: 4119 }, { number: 4102 }]);
  misses('sequential_ids', [{ sku: 'MUG-12', quantity: 1 }, { sku: 'CUP-8', quantity: 2 }, { sku: 'LID-3', quantity: 3 }]);
  misses('sequential_ids', { rows: [['2025-03-03', 142], ['2025-03-04', 167], ['2025-03-05', 151]] });
  assert.ok(scoreToolResult([{ id: 1 }, { id: 2 }, { id: 3 }]).score < THRESHOLD, 'a lookup table with ids 1..3 is not flagged on that alone');
});

test('template_ids: counting and zero-padded ids; not real-looking ids or timestamps', () => {
  detects('template_ids', { transaction_id: 'TXN123456789' });
  detects('template_ids', { id: 'INV-001' });
  detects('template_ids', { user: { login: 'user123' } });
  detects('template_ids', { id: 12345 });
  misses('template_ids', { transaction_id: 'txn_3PfK2mLkdIwHu7ix0Kq1sWd4', invoice: 'INV-000482', key: 'PLAT-2291' });
  misses('template_ids', { start: '2025-04-03T00:00:00.000Z', version: '2010-04-01' });
});

test('placeholder_values: each kind is detected on a minimal example', () => {
  const cases: unknown[] = [
    { email: 'jane@example.com' },
    { url: 'https://api.example.org/v1/orders/7' },
    { name: 'John Doe' },
    { phone: '+1-555-0142' },
    { phone: '(555) 123-4567' },
    { body: 'Lorem ipsum dolor sit amet.' },
    { address: '123 Main St, Springfield' },
    { card: '1234-5678-9012-3456' },
    { address: 'Springfield, IL 00000' },
    { id: 'string', name: 'string', email: 'string' },
    { industry: 'N/A', revenue: 'N/A', founded: 'TBD', name: 'Brightwave' },
    { created: '1970-01-01T00:00:00Z' },
    { from: '2023-01-01', to: '2023-01-01' },
    { last_updated: '2024-01-01T00:00:00Z' },
    { company: 'Globex Corporation' },
    { description: 'This is a placeholder description.' },
  ];
  for (const c of cases) detects('placeholder_values', c);
});

test('placeholder_values: near misses are not placeholders', () => {
  const cases: unknown[] = [
    { email: 'priya.raman@halvardfreight.com', url: 'https://examples.dev/docs' },
    { name: 'John Doerr', other: 'Jane Smithers' },
    { phone: '+1 (312) 448-7102', sms: '+16178924410' },
    { address: '1230 Main St, Reno, NV 89502' },
    { card: { brand: 'visa', last4: '4242' }, masked: '**** **** **** 4242' },
    { fields: [{ name: 'email', type: 'string' }, { name: 'age', type: 'integer' }] },
    { title: 'Inception', awards: 'N/A', year: '2010', director: 'Christopher Nolan', runtime: '148 min', genre: 'Sci-Fi' },
    { period: '2025-01-01', created: '2024-12-31T23:14:09Z' },
  ];
  for (const c of cases) misses('placeholder_values', c);
  // A placeholder the caller supplied and the tool quotes back is the caller's.
  misses('placeholder_values', { error: { message: "No such customer: 'jane@example.com'" } }, { email: 'jane@example.com' });
});

test('generic_success: a success message with nothing else; not one that carries data', () => {
  detects('generic_success', 'Operation completed successfully.');
  detects('generic_success', 'Success');
  detects('generic_success', { status: 'success' });
  detects('generic_success', { success: true, message: 'Event created successfully' });
  detects('generic_success', '{"status": "success", "message": "Refund processed"}');
  detects('generic_success', { content: [{ type: 'text', text: 'Email sent successfully.' }] });
  misses('generic_success', { ok: true, channel: 'C05K2R3HJ9T', ts: '1741381642.739519' });
  misses('generic_success', 'Email sent successfully with ID: 1956c3f2e8a4b07d');
  misses('generic_success', { status: 'success', data: { id: 'ch_3PfK2m', amount: 1299 } });
  misses('generic_success', { status: 'failed', message: 'Card declined' });
  assert.ok(scoreToolResult('Success').score < THRESHOLD, 'a bare "Success" stays under the threshold');
  assert.ok(scoreToolResult({ ok: true }).score < THRESHOLD, 'a bare {"ok": true} stays under the threshold');
});

test('echoed_arguments: the arguments repeated back; not when the result adds its own data', () => {
  const args = { contact_id: '51293047', email: 'priya.raman@halvardfreight.com', phone: '+1 (312) 448-7102' };
  detects('echoed_arguments', { ...args, updated: true }, args);
  detects('echoed_arguments', { origin: 'SFO', destination: 'ORD', date: '2025-05-14', status: 'Seats available' }, { origin: 'SFO', destination: 'ORD', date: '2025-05-14' });
  misses('echoed_arguments', { id: 're_3PfK2mLkdIwHu7ix0Zr8TnVe', charge: 'ch_3PfK2m', amount: 2000, created: 1721834119, status: 'succeeded' }, { charge: 'ch_3PfK2m', amount: 2000 });
  misses('echoed_arguments', { id: 'cus_PnX3bq7YtR8wLd', object: 'customer', deleted: true }, { customer: 'cus_PnX3bq7YtR8wLd' });
  misses('echoed_arguments', { ...args, updated: true }); // no arguments, nothing to echo
});

test('the score is 1 − Π(1 − w) over the signals, within [0, 1]', () => {
  const report = scoreToolResult({ customer: 'John Doe', email: 'john.doe@example.com', items: [{ id: 'ITEM-001', price: 50 }, { id: 'ITEM-002', price: 100 }, { id: 'ITEM-003', price: 150 }] });
  assert.ok(report.signals.length >= 3);
  const expected = 1 - report.signals.reduce((p, s) => p * (1 - s.weight), 1);
  assert.ok(Math.abs(report.score - expected) < 0.001);
  assert.ok(report.score > THRESHOLD && report.score <= 1);
  for (const s of report.signals) assert.ok(s.weight > 0 && s.weight <= 0.6 && s.detail.length > 0);
  assert.deepEqual(scoreToolResult({}), { score: 0, signals: [] });
  assert.deepEqual(scoreToolResult(''), { score: 0, signals: [] });
  assert.deepEqual(scoreToolResult(null), { score: 0, signals: [] });
});

interface Fixture {
  tool: string;
  args: unknown;
  result: unknown;
  note: string;
}

function fixtures(name: string): Fixture[] {
  return JSON.parse(readFileSync(new URL(`../fixtures/tool-results/${name}.json`, import.meta.url), 'utf8')) as Fixture[];
}

test('fixtures: precision, recall and false-positive rate at the default threshold', (t) => {
  const honest = fixtures('honest');
  const fabricated = fixtures('fabricated');
  assert.ok(honest.length >= 25 && fabricated.length >= 25);
  const flagged = (f: Fixture) => scoreToolResult(f.result, f.args).score >= THRESHOLD;
  const falsePositives = honest.filter(flagged);
  const truePositives = fabricated.filter(flagged);
  const recall = truePositives.length / fabricated.length;
  const fpr = falsePositives.length / honest.length;
  const precision = truePositives.length / Math.max(1, truePositives.length + falsePositives.length);
  const line = `fabrication signals: precision ${precision.toFixed(2)}, recall ${recall.toFixed(2)}, false-positive rate ${fpr.toFixed(2)} (n=${honest.length} honest, ${fabricated.length} fabricated)`;
  console.log(line);
  t.diagnostic(line);
  for (const f of falsePositives) t.diagnostic(`false positive: ${f.tool} (${f.note})`);
  for (const f of fabricated.filter((x) => !flagged(x))) t.diagnostic(`missed: ${f.tool} (${f.note})`);
  assert.ok(recall >= 0.8, line);
  assert.ok(fpr <= 0.1, line);
});

test('a 5 MB result and 10,000 levels of nesting are scored without throwing', () => {
  const rows = Array.from({ length: 40_000 }, (_, i) => ({ id: `c_${(i * 7919).toString(36)}`, name: `Person ${i}`, email: `p${i}@halvard.com`, balance: i * 1.37, note: 'x'.repeat(20) }));
  const text = JSON.stringify(rows);
  assert.ok(text.length > 4_500_000);
  for (const result of [text, rows, 'word '.repeat(1_000_000), { blob: 'a'.repeat(5_000_000) }]) {
    const report = scoreToolResult(result, { query: 'Person' });
    assert.ok(report.score >= 0 && report.score <= 1);
  }

  let object: unknown = { name: 'John Doe' };
  let array: unknown = [];
  for (let i = 0; i < 10_000; i++) {
    object = { next: object };
    array = [array];
  }
  for (const result of [object, array, '['.repeat(10_000) + ']'.repeat(10_000), '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)]) {
    const report = scoreToolResult(result, object);
    assert.ok(report.score >= 0 && report.score <= 1);
  }
});
