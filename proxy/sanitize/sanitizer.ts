// Sanitizing a whole text: scan left to right, take the next match (see scan.ts), write it as its
// treatment says, go on after it. Streams (stream.ts) give the same result for any split of the text.
import { render, type Engine, type Finding } from './engine.ts';
import { JsonState, type TextMode } from './json-state.ts';
import { Scanner } from './scan.ts';

export interface Sanitized {
  text: string;
  findings: Finding[];
}

/** Sanitizes a whole text; `mode` json quotes replacements outside strings, auto decides by the first character. */
export function sanitizeText(engine: Engine, text: string, mode: TextMode = 'text'): Sanitized {
  const findings: Finding[] = [];
  const json = new JsonState(mode);
  let out = '';
  const scanner = new Scanner(text, engine.detectors);
  let pos = 0;
  for (;;) {
    const m = scanner.next(pos, text.length);
    if (!m) break;
    const before = text.slice(pos, m.start);
    json.feed(before);
    const treatment = engine.treatment(m.detector.name);
    const original = text.slice(m.start, m.end);
    out += before + render(engine, m.detector, original, treatment, json.quote);
    json.feed(original);
    findings.push({ detector: m.detector.name, treatment });
    pos = m.end;
  }
  if (findings.length === 0) return { text, findings };
  return { text: out + text.slice(pos), findings };
}
