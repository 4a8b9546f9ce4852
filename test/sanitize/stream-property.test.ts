// The streaming promise, as a property: for any text (random text with generated secrets and PII,
// near misses, escapes and JSON mixed in) and any split of it into pieces, the concatenated streamed
// output equals sanitizing the whole text; every prefix the stream lets out is a prefix of that
// output that never ends inside a replacement (so no fragment of a secret leaves before its
// redaction); and what the stream holds back never exceeds the longest reach of a detector.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BUILTIN_DETECTORS } from '../../proxy/sanitize/detectors/index.ts';
import { customDetector } from '../../proxy/sanitize/custom.ts';
import type { Detector } from '../../proxy/sanitize/detector.ts';
import { render, type Engine, type Treatment } from '../../proxy/sanitize/engine.ts';
import { JsonState, type TextMode } from '../../proxy/sanitize/json-state.ts';
import { nextMatch } from '../../proxy/sanitize/scan.ts';
import { sanitizeText } from '../../proxy/sanitize/sanitizer.ts';
import { StreamSanitizer } from '../../proxy/sanitize/stream.ts';
import { DETECTOR_NAMES, secretOf } from './secrets.ts';

const detectors = [...BUILTIN_DETECTORS, customDetector({ name: 'ticket', pattern: 'TKT-[0-9]{8}' })];
const MAX_REACH = Math.max(...detectors.map((d) => d.reach));

function engineWith(treatments: Record<string, Treatment>, only: readonly Detector[] = detectors): Engine {
  return { detectors: only, treatment: (name) => treatments[name] ?? 'mask', hashKey: Buffer.from('property-key') };
}

/** The whole text's output as segments: plain text, and replacements with the span they replace. */
function segments(engine: Engine, text: string, mode: TextMode) {
  const detectors = engine.detectors;
  const out: { text: string; replaces?: string }[] = [];
  const json = new JsonState(mode);
  let pos = 0;
  for (let m = nextMatch(text, 0, text.length, detectors); m; m = nextMatch(text, pos, text.length, detectors)) {
    const before = text.slice(pos, m.start);
    json.feed(before);
    out.push({ text: before });
    const original = text.slice(m.start, m.end);
    out.push({ text: render(engine, m.detector, original, engine.treatment(m.detector.name), json.quote), replaces: original });
    json.feed(original);
    pos = m.end;
  }
  out.push({ text: text.slice(pos) });
  return out;
}

const noise = fc.string({ unit: fc.constantFrom(...'abcXYZ019 .,:;-_@+/=\n\\"{}[]()#<>'.split('')), maxLength: 12 });
const nearMiss = fc.oneof(...DETECTOR_NAMES.map(secretOf)).chain((s) => fc.oneof(
  fc.constant(s.slice(0, Math.max(1, s.length - 2))),
  fc.nat(s.length - 1).map((i) => s.slice(0, i) + (/\d/.test(s[i]) ? 'x' : '7') + s.slice(i + 1)),
  fc.constant(`${s}${s.slice(-3)}`),
));
const piece = fc.oneof(
  { weight: 4, arbitrary: noise },
  { weight: 3, arbitrary: fc.oneof(...DETECTOR_NAMES.map(secretOf)) },
  { weight: 2, arbitrary: nearMiss },
  { weight: 1, arbitrary: fc.nat(99_999_999).map((n) => `TKT-${String(n).padStart(8, '0')}`) },
  { weight: 1, arbitrary: fc.constantFrom('\\n', '\\"', '"', '{"a": ', ', "b": [', ']}', ' 4242424242424242 ', 'version 1.2.3.4', '\uD83D\uDE00') },
);
const text = fc.array(piece, { maxLength: 20 }).map((ps) => ps.join(''));
const treatments = fc.dictionary(fc.constantFrom(...DETECTOR_NAMES, 'ticket'), fc.constantFrom<Treatment>('mask', 'hash', 'allow'), { maxKeys: 4 });

test('streamed output equals sanitizing the whole text, for any split, and nothing leaks early', () => {
  // Some runs use every detector, others a few: each one's partial pattern must hold on its own.
  const subset = fc.oneof(fc.constant(detectors), fc.subarray(detectors, { minLength: 1, maxLength: 3 }));
  fc.assert(fc.property(text, fc.oneof({ weight: 3, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 60 }) }, { weight: 1, arbitrary: fc.constant([]) }), treatments, fc.constantFrom<TextMode>('text', 'json', 'auto'), subset, (t, cutSeeds, treat, mode, only) => {
    const engine = engineWith(treat, only);
    const whole = sanitizeText(engine, t, mode).text;
    const segs = segments(engine, t, mode);
    assert.equal(segs.map((s) => s.text).join(''), whole, 'the segments reassemble the whole output');
    // Where a replacement token sits in the output: a prefix may end before or after it, never inside.
    const inside: [number, number][] = [];
    let at = 0;
    for (const s of segs) {
      if (s.replaces !== undefined && s.text !== s.replaces) inside.push([at, at + s.text.length]);
      at += s.text.length;
    }
    // Random cut points, or (one run in four) a cut after every character.
    const cuts = cutSeeds.length === 0 && t.length < 400 ? Array.from({ length: t.length }, (_, i) => i) : [...new Set(cutSeeds.map((c) => (t.length === 0 ? 0 : c % t.length)))].sort((a, b) => a - b);
    const stream = new StreamSanitizer(engine, mode);
    let emitted = '';
    let last = 0;
    for (const cut of [...cuts, t.length]) {
      emitted += stream.push(t.slice(last, cut));
      last = cut;
      assert.ok(whole.startsWith(emitted), `the emitted prefix is a prefix of the whole output:\n${JSON.stringify(emitted)}\n${JSON.stringify(whole)}`);
      assert.ok(!inside.some(([a, b]) => emitted.length > a && emitted.length < b), 'a replacement is never cut');
      assert.ok(stream.held <= MAX_REACH, `held ${stream.held} > ${MAX_REACH}`);
    }
    emitted += stream.end();
    assert.equal(emitted, whole);
  }), { numRuns: Number(process.env.SANITIZE_RUNS ?? 1_500) });
});

test('custom patterns without a leading literal: streamed output equals the whole text\'s, held text stays within reach', () => {
  // Their partials are written from the pattern's structure (the prefixes of its matches), not from a lead.
  const custom = [
    customDetector({ name: 'code', pattern: '[A-Z]{2}[a-z0-9]+', maxLength: 24 }),
    customDetector({ name: 'ref', pattern: String.raw`\b(?:[XY][0-9]{2}|Z{3})[a-c]{1,4}\b` }),
    customDetector({ name: 'run', pattern: '(ab|c(?:1|9){2,3})+x?', maxLength: 20, ignoreCase: true }),
    customDetector({ name: 'tag', pattern: String.raw`[a-c]{2,6}@[0-9]{1,3}(?:\.[0-9])?` }),
  ];
  const reach = Math.max(...custom.map((d) => d.reach), ...BUILTIN_DETECTORS.map((d) => d.reach));
  const near = fc.constantFrom('XYab', 'XY', 'Y01abc', 'Z', 'ZZZa', 'ZZZ', 'abc91x', 'AB', 'ab@1.', 'cab@99.5', 'c1', 'ABc9xyz');
  const t = fc.array(fc.oneof({ weight: 3, arbitrary: noise }, { weight: 2, arbitrary: near }, { weight: 1, arbitrary: fc.oneof(...DETECTOR_NAMES.map(secretOf)) }), { maxLength: 20 }).map((ps) => ps.join(''));
  const subset = fc.oneof(fc.constant(custom), fc.subarray([...custom, ...BUILTIN_DETECTORS.slice(0, 3)], { minLength: 1, maxLength: 3 }));
  fc.assert(fc.property(t, fc.array(fc.nat(), { maxLength: 40 }), fc.constantFrom<TextMode>('text', 'json', 'auto'), subset, (text, cutSeeds, mode, only) => {
    const engine = engineWith({}, only);
    const whole = sanitizeText(engine, text, mode).text;
    const cuts = cutSeeds.length === 0 ? Array.from({ length: text.length }, (_, i) => i) : [...new Set(cutSeeds.map((c) => (text.length === 0 ? 0 : c % text.length)))].sort((a, b) => a - b);
    const stream = new StreamSanitizer(engine, mode);
    let emitted = '';
    let last = 0;
    for (const cut of [...cuts, text.length]) {
      emitted += stream.push(text.slice(last, cut));
      last = cut;
      assert.ok(whole.startsWith(emitted), `the emitted prefix is a prefix of the whole output:\n${JSON.stringify(emitted)}\n${JSON.stringify(whole)}`);
      assert.ok(stream.held <= reach, `held ${stream.held} > ${reach}`);
    }
    emitted += stream.end();
    assert.equal(emitted, whole);
  }), { numRuns: Number(process.env.SANITIZE_RUNS ?? 1_000) });
});

test('a custom pattern without a leading literal holds back only a real candidate: a long answer without one flows at once', () => {
  const engine = engineWith({}, [customDetector({ name: 'code', pattern: '[A-Z]{2}[a-z0-9]+', maxLength: 16_000 })]);
  const text = 'The Quick brown fox, Jumps over the lazy dog. '.repeat(1_500);
  const stream = new StreamSanitizer(engine, 'auto');
  let emitted = '';
  let maxHeld = 0;
  for (let i = 0; i < text.length; i += 4) {
    emitted += stream.push(text.slice(i, i + 4));
    maxHeld = Math.max(maxHeld, stream.held);
    if (i === 0) assert.ok(emitted.length > 0, 'the first event goes out');
  }
  assert.ok(maxHeld <= 2, `held ${maxHeld} characters at most (a capital that may start a match), not the pattern's reach`);
  assert.equal(emitted + stream.end(), text);
  // A real candidate is still held while it may grow, and masked whole.
  const candidate = new StreamSanitizer(engine, 'auto');
  const first = candidate.push('see ABcd');
  assert.equal(first, 'see ', 'ABcd… is held while it may grow');
  assert.equal(first + candidate.push('ef12 now') + candidate.end(), 'see <CODE> now');
});

test('a secret split one character at a time is never emitted before its redaction', () => {
  fc.assert(fc.property(fc.oneof(...DETECTOR_NAMES.map(secretOf)), noise, noise, (secret, before, after) => {
    const engine = engineWith({});
    const t = `${before} ${secret} ${after}`;
    const stream = new StreamSanitizer(engine);
    let emitted = '';
    for (const c of t) {
      emitted += stream.push(c);
      // No emitted text may hold a sizeable piece of a secret the whole text redacts.
      const whole = sanitizeText(engine, t).text;
      if (!whole.includes(secret)) assert.ok(!emitted.includes(secret.slice(0, 8)) || whole.startsWith(emitted), 'secret fragment leaked');
    }
    emitted += stream.end();
    assert.equal(emitted, sanitizeText(engine, t).text);
  }), { numRuns: 1_000 });
});
