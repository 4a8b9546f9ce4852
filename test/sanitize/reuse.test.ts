// Work done once is not done again: a request's history seen before is looked up, not rescanned; a
// stream's closing events that repeat a channel's content (Responses) and the record at its end reuse
// what the channels let out; and with audit bodies off the record's text is not sanitized at all.
// Scans are counted on the detectors' patterns.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sanitizeConfig } from '../../policies/sanitize.ts';
import type { Response, StreamEvent } from '../../proxy/canonical.ts';
import { openaiChat } from '../../proxy/providers/openai-chat.ts';
import { StreamChannels } from '../../proxy/sanitize/channels.ts';
import type { Detector } from '../../proxy/sanitize/detector.ts';
import { BUILTIN_DETECTORS } from '../../proxy/sanitize/detectors/index.ts';
import type { Engine } from '../../proxy/sanitize/engine.ts';
import { SanitizeMemo } from '../../proxy/sanitize/memo.ts';
import { sanitizeText } from '../../proxy/sanitize/sanitizer.ts';
import type { CallContext } from '../../proxy/stage.ts';
import { createSanitize } from '../../proxy/stages/sanitize.ts';
import { testCall, testPolicy } from '../helpers/policy.ts';

/** An engine whose detectors count the searches their patterns make. */
function counted(): { engine: Engine; scans: () => number } {
  let n = 0;
  class Counting extends RegExp {
    override exec(s: string) {
      n++;
      return super.exec(s);
    }
  }
  const detectors: Detector[] = BUILTIN_DETECTORS.map((d) => ({ ...d, pattern: new Counting(d.pattern.source, d.pattern.flags) }));
  return { engine: { detectors, treatment: () => 'mask', hashKey: Buffer.from('k') }, scans: () => n };
}

test('memo: a text seen before gives the same output and findings without a scan; short texts are scanned as they come', () => {
  const { engine, scans } = counted();
  const memo = new SanitizeMemo(engine);
  const text = `${'status report, nothing to see here. '.repeat(10)}contact ann@example.com or 536-22-1234`;
  const first = memo.sanitize(text);
  assert.deepEqual(first, sanitizeText(engine, text, 'auto'));
  const before = scans();
  const again = memo.sanitize(`${text}`);
  assert.equal(scans(), before, 'no pattern ran');
  assert.equal(again.text, first.text);
  assert.deepEqual(again.findings, first.findings);
  const clean = 'x'.repeat(300);
  assert.equal(memo.sanitize(clean).text, clean);
  memo.sanitize('hi ann@example.com');
  const short = scans();
  memo.sanitize('hi ann@example.com');
  assert.ok(scans() > short, 'a short text is cheaper to scan than to hash');
});

test('channels: closing events repeating the content and the record reuse what went out; other copies are sanitized once', () => {
  const { engine, scans } = counted();
  const ch = new StreamChannels(engine);
  const pieces = ['Mail ann.lee@exa', 'mple.com, or call', ' +44 20 7946 0958 today'];
  let out = '';
  for (const p of pieces) {
    const r = ch.push('text:0', p);
    ch.sent('text:0', r.text);
    out += r.text;
  }
  const closed = ch.close('text:0');
  ch.sent('text:0', closed.text);
  out += closed.text;
  const whole = pieces.join('');
  assert.equal(out, sanitizeText(engine, whole, 'auto').text);
  const before = scans();
  // output_text.done, content_part.done, output_item.done, response.completed: four copies, no scan.
  for (let i = 0; i < 4; i++) assert.equal(ch.repeat('text:0', whole), out);
  assert.equal(ch.recorded('text', whole), out);
  assert.equal(scans(), before);
  // The relay's own text after the channels' (a refused tool call) is sanitized on its own.
  assert.equal(ch.recorded('text', `${whole}\n\n[warden] refused: ann@example.com`), `${out}\n\n[warden] refused: <EMAIL>`);
  // A copy that is not what the channel took in is sanitized, once.
  const other = 'Mail bob@example.org';
  const n = scans();
  assert.equal(ch.repeat('text:0', other), 'Mail <EMAIL>');
  const once = scans();
  assert.ok(once > n);
  ch.repeat('text:0', other);
  assert.equal(scans(), once);
});

function stage(audit: boolean) {
  const base = testPolicy();
  const policy = testPolicy({ sanitize: sanitizeConfig({}), audit: { ...base.audit, enabled: audit } });
  const call: CallContext = { ...testCall(policy), adapter: openaiChat };
  return { response: createSanitize(policy).response!, call };
}

function run(events: StreamEvent[], audit: boolean) {
  const { response, call } = stage(audit);
  for (const ev of events) response.onStreamEvent!(call, ev);
  return { response, call };
}

const EVENTS: StreamEvent[] = [
  { type: 'text', index: 0, text: 'write ann@exa' },
  { type: 'text', index: 0, text: 'mple.com now' },
  { type: 'tool-call', index: 1, id: 'c1', name: 'save', argumentsDelta: '{"to":"bob@' },
  { type: 'tool-call', index: 1, argumentsDelta: 'example.org"}' },
  { type: 'finish', reason: 'tool_calls' },
];
const ACCUMULATED: Response = { text: 'write ann@example.com now', toolCalls: [{ id: 'c1', name: 'save', arguments: '{"to":"bob@example.org"}' }] };

test('stream end: the record gets what the agent received, text and tool calls, with audit bodies on', () => {
  const { response, call } = run(EVENTS, true);
  const res = response.onStreamEnd!(call, { ...ACCUMULATED, text: `${ACCUMULATED.text}\n\n[warden] refused` }) as Response;
  assert.equal(res.text, 'write <EMAIL> now\n\n[warden] refused');
  assert.equal(res.toolCalls[0].arguments, '{"to":"<EMAIL>"}');
});

test('stream end: with nothing keeping the text (audit off), the text is what went out, tool calls still redacted for the ledger', () => {
  const { response, call } = run(EVENTS, false);
  const res = response.onStreamEnd!(call, ACCUMULATED) as Response;
  assert.equal(res.text, 'write <EMAIL> now');
  assert.equal(res.toolCalls[0].arguments, '{"to":"<EMAIL>"}');
});

test('stream end: text a channel still held when the stream was cut is not in the record', () => {
  const { response, call } = run(EVENTS.slice(0, 1), true);
  const res = response.onStreamEnd!(call, { text: 'write ann@exa', toolCalls: [] }) as Response;
  assert.equal(res.text, 'write ');
});
