// Precision and recall of every built-in detector on a labelled corpus (test/fixtures/sanitize/
// corpus.json: real-world formats, documented test values, lookalikes and generated values). Each
// entry holds at most one sensitive value, labelled with its class or null. A detector's finding on an
// entry labelled otherwise is a false positive; a labelled value it misses is a false negative.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BUILTIN_DETECTORS, BUILTIN_NAMES } from '../../proxy/sanitize/detectors/index.ts';
import { sanitizeText } from '../../proxy/sanitize/sanitizer.ts';

const corpus = JSON.parse(readFileSync(new URL('../fixtures/sanitize/corpus.json', import.meta.url), 'utf8')) as { text: string; label: string | null }[];
const engine = { detectors: BUILTIN_DETECTORS, treatment: () => 'mask' as const, hashKey: Buffer.from('corpus') };

test(`the corpus has at least 200 labelled strings, valid and invalid for every detector (${corpus.length})`, () => {
  assert.ok(corpus.length >= 200);
  for (const name of BUILTIN_NAMES) assert.ok(corpus.filter((c) => c.label === name).length >= 10, `${name} has too few positives`);
  for (const c of corpus) assert.ok(c.label === null || BUILTIN_NAMES.includes(c.label), `unknown label ${c.label}`);
});

test('every detector has precision and recall of at least 0.95 on the corpus', () => {
  const stats = new Map(BUILTIN_NAMES.map((n) => [n, { tp: 0, fp: 0, fn: 0 }]));
  const mistakes: string[] = [];
  for (const { text, label } of corpus) {
    const found = new Set(sanitizeText(engine, text).findings.map((f) => f.detector));
    if (label && found.has(label)) stats.get(label)!.tp++;
    else if (label) {
      stats.get(label)!.fn++;
      mistakes.push(`missed ${label}: ${JSON.stringify(text.slice(0, 80))}`);
    }
    for (const f of found) {
      if (f === label) continue;
      stats.get(f)!.fp++;
      mistakes.push(`false ${f}: ${JSON.stringify(text.slice(0, 80))}`);
    }
  }
  const rows = [...stats].map(([detector, s]) => ({
    detector, tp: s.tp, fp: s.fp, fn: s.fn,
    precision: Number((s.tp / Math.max(1, s.tp + s.fp)).toFixed(3)),
    recall: Number((s.tp / Math.max(1, s.tp + s.fn)).toFixed(3)),
  }));
  console.log(`sanitize corpus: ${corpus.length} strings`);
  console.table(rows);
  if (mistakes.length > 0) console.log(mistakes.join('\n'));
  for (const r of rows) {
    assert.ok(r.precision >= 0.95, `${r.detector} precision ${r.precision}`);
    assert.ok(r.recall >= 0.95, `${r.detector} recall ${r.recall}`);
  }
});
