// `node test/bench/tokens.ts`: the cost of counting a ~100,000-token agent conversation (prose,
// multilingual text, code, tool calls with JSON results) for gpt-4o, cold (a fresh counter, encoder
// already built) and warm: the next request, parsed afresh, with one new user turn appended, which is
// what the context window pays on every call. Prints one Markdown line; exits 1 if the warm median
// exceeds 1 ms.
import { performance } from 'node:perf_hooks';
import type { Message, ToolDefinition } from '../../proxy/canonical.ts';
import { createTokenCounter } from '../../proxy/context/tokens.ts';

const MODEL = 'gpt-4o';
const TARGET_TOKENS = 100_000;
const REPETITIONS = 200;
const WARM_LIMIT_MS = 1;

/** Deterministic pseudo-random numbers in [0, 1) (a linear congruential generator). */
function random(seed: number): () => number {
  let s = seed;
  return () => (s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
}
const rnd = random(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

const SENTENCES = [
  'The deployment failed because the migration locked the orders table for longer than the health check allowed.',
  'Could you look at the retry logic in the payment client and tell me whether it backs off correctly?',
  'I checked the logs from last night; the spike started at 02:14 UTC and lasted about eleven minutes.',
  'Let us keep the public API unchanged and move the validation into a separate module.',
  'Les tests d’intégration échouent seulement sur la branche principale, pas en local.',
  'この関数はキャッシュが空のときに例外を投げます。',
  'Проверьте, пожалуйста, конфигурацию прокси перед следующим релизом.',
  'Ship it 🚀 — but only after the canary has been green for an hour ✅.',
  'The customer says the invoice total is off by exactly one cent, which smells like a rounding issue.',
  'Summarise the differences between the two proposals in a short table.',
];
const CODE = [
  '```ts\nexport async function withRetry<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {\n  for (let i = 0; ; i++) {\n    try {\n      return await fn();\n    } catch (err) {\n      if (i + 1 >= attempts) throw err;\n      await new Promise((r) => setTimeout(r, 2 ** i * 100));\n    }\n  }\n}\n```',
  '```sql\nSELECT o.id, o.total_cents, c.email\nFROM orders o JOIN customers c ON c.id = o.customer_id\nWHERE o.created_at > now() - interval \'1 day\' AND o.status = \'failed\';\n```',
  '```python\ndef rounding_error(items):\n    return sum(round(i.price * i.qty, 2) for i in items) - round(sum(i.price * i.qty for i in items), 2)\n```',
];
const TOOLS: ToolDefinition[] = [
  { name: 'read_file', description: 'Read a file from the repository.', parameters: { type: 'object', properties: { path: { type: 'string', description: 'Path from the repository root.' } }, required: ['path'] } },
  { name: 'search_logs', description: 'Search the service logs.', parameters: { type: 'object', properties: { query: { type: 'string', description: 'Full-text query.' }, since: { type: 'string', description: 'ISO timestamp.' }, level: { type: 'string', enum: ['debug', 'info', 'warn', 'error'] } } } },
  { name: 'run_sql', description: 'Run a read-only SQL query.', parameters: { type: 'object', properties: { sql: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } } },
];

function paragraph(sentences: number): string {
  return Array.from({ length: sentences }, () => pick(SENTENCES)).join(' ');
}

function logLines(n: number): string {
  return Array.from({ length: n }, (_, i) => `2025-05-0${1 + (i % 9)}T02:${String(10 + (i % 50)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}Z ${pick(['INFO', 'WARN', 'ERROR'])} orders-api req=${Math.floor(rnd() * 1e9).toString(16)} latency_ms=${Math.floor(rnd() * 900)} ${pick(SENTENCES)}`).join('\n');
}

/** One exchange: a user turn, sometimes a tool round (call, JSON result), and the assistant's answer. */
function exchange(i: number): Message[] {
  const out: Message[] = [{ role: 'user', text: paragraph(1 + Math.floor(rnd() * 4)) }];
  if (rnd() < 0.5) {
    const id = `call_${i}`;
    const tool = pick(TOOLS).name;
    const args = JSON.stringify(tool === 'read_file' ? { path: `src/orders/handler${i}.ts` } : tool === 'run_sql' ? { sql: 'SELECT count(*) FROM orders WHERE status = \'failed\'', limit: 100 } : { query: 'timeout', since: '2025-05-01T00:00:00Z', level: 'error' });
    const result = tool === 'read_file' ? pick(CODE) : JSON.stringify({ rows: logLines(4 + Math.floor(rnd() * 20)).split('\n') });
    out.push({ role: 'assistant', text: '', toolCalls: [{ id, name: tool, arguments: args }] });
    out.push({ role: 'tool', text: result, toolResults: [{ toolCallId: id, content: result }] });
  }
  out.push({ role: 'assistant', text: `${paragraph(2 + Math.floor(rnd() * 6))}\n\n${rnd() < 0.3 ? pick(CODE) : ''}` });
  return out;
}

function conversation(): Message[] {
  const scratch = createTokenCounter();
  const messages: Message[] = [{ role: 'system', text: `You are a senior engineer helping with an incident. ${paragraph(6)}` }];
  let tokens = 0;
  for (let i = 0; tokens < TARGET_TOKENS; i++) {
    for (const m of exchange(i)) {
      messages.push(m);
      tokens += scratch.countMessage(MODEL, 'openai', m);
    }
  }
  return messages;
}

/** The next request as the proxy sees it: parsed afresh (new objects, new strings), one turn longer. */
function nextRequest(messages: readonly Message[], turn: number): Message[] {
  return [...(JSON.parse(JSON.stringify(messages)) as Message[]), { role: 'user', text: `Follow-up ${turn}: ${paragraph(2)}` }];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

let t = performance.now();
createTokenCounter().countText(MODEL, 'openai', 'build the encoder');
const encoderMs = performance.now() - t;

const messages = conversation();
const counter = createTokenCounter();
t = performance.now();
const total = counter.countRequest(MODEL, 'openai', { messages, tools: TOOLS });
const coldMs = performance.now() - t;

// Warm: what the context window pays on each call. Then, for reference, the same count when the
// previous request is not at hand to compare with (every message hashed: after a restart, or with
// more concurrent conversations than are kept), and the anthropic estimate (byte lengths, no cache).
function timed(run: (next: Message[]) => void, prepare?: (r: number) => void): number[] {
  const times: number[] = [];
  for (let r = 0; r < REPETITIONS; r++) {
    const next = nextRequest(messages, r);
    prepare?.(r);
    const start = performance.now();
    run(next);
    times.push(performance.now() - start);
  }
  return times;
}
const warm = timed((next) => counter.countRequest(MODEL, 'openai', { messages: next, tools: TOOLS }));
const forgetful = createTokenCounter();
forgetful.countRequest(MODEL, 'openai', { messages, tools: TOOLS });
// Sixteen other conversations counted in between push this one out of those kept.
const others = (r: number) => {
  for (let j = 0; j < 16; j++) forgetful.countRequest(MODEL, 'openai', { messages: [{ role: 'user', text: `other ${r}.${j}` }, { role: 'user', text: 'hi' }], tools: [] });
};
const hashed = timed((next) => forgetful.countRequest(MODEL, 'openai', { messages: next, tools: TOOLS }), others);
const anthropic = createTokenCounter();
const anthropicWarm = timed((next) => anthropic.countRequest('claude-sonnet-4-5', 'anthropic', { messages: next, tools: TOOLS }));
const warmMs = median(warm);

console.log(`| tokens: ${total.toLocaleString('en-US')}-token conversation, ${messages.length} messages, ${MODEL} | cold ${coldMs.toFixed(1)} ms (encoder built once before: ${encoderMs.toFixed(0)} ms) | warm, one new turn: median ${warmMs.toFixed(3)} ms of ${REPETITIONS} | without the previous request: ${median(hashed).toFixed(3)} ms | anthropic estimate: ${median(anthropicWarm).toFixed(3)} ms |`);
if (warmMs > WARM_LIMIT_MS) {
  console.error(`warm median ${warmMs.toFixed(3)} ms exceeds ${WARM_LIMIT_MS} ms`);
  process.exit(1);
}
