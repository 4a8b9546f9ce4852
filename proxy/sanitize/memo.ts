// Whole-text results remembered by a hash of the text. An agent resends the whole conversation on
// every model call, so sanitizing each request from scratch costs the session's length each time
// (quadratic over a session); with this, history already seen costs a hash and a lookup, and only
// new text is scanned. Bounded by entries and by characters kept, least recently used going first.
import { hash } from 'node:crypto';
import type { Engine, Finding } from './engine.ts';
import { sanitizeText, type Sanitized } from './sanitizer.ts';

// Hashing beats scanning at any length (0.4 µs against 2.4 µs at 64 characters, 1.2 against 30 at
// 1,024), but below this an entry saves too little to spend one of the slots on it.
const MIN_CACHED_CHARS = 64;
const MAX_ENTRIES = 20_000;
// Only rewritten texts are kept (an unchanged one is the caller's own string): 16 Mi characters, ~32 MB.
const MAX_KEPT_CHARS = 16 * 1024 * 1024;

interface Entry {
  /** The sanitized text; undefined when it equals the input. */
  text: string | undefined;
  findings: readonly Finding[];
}

export class SanitizeMemo {
  readonly #engine: Engine;
  readonly #entries = new Map<string, Entry>();
  #kept = 0;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  /** sanitizeText(engine, text, 'auto'), from memory when this text was seen before. Findings are shared: do not change them. */
  sanitize(text: string): { text: string; findings: readonly Finding[] } {
    if (text.length < MIN_CACHED_CHARS) return sanitizeText(this.#engine, text, 'auto');
    // sha256, not a faster non-cryptographic hash: a collision would hand one text another's output.
    const key = hash('sha256', text, 'base64');
    const found = this.#entries.get(key);
    if (found) {
      this.#entries.delete(key);
      this.#entries.set(key, found);
      return { text: found.text ?? text, findings: found.findings };
    }
    const out: Sanitized = sanitizeText(this.#engine, text, 'auto');
    const entry: Entry = { text: out.text === text ? undefined : out.text, findings: Object.freeze(out.findings) };
    this.#entries.set(key, entry);
    this.#kept += entry.text?.length ?? 0;
    while (this.#entries.size > MAX_ENTRIES || this.#kept > MAX_KEPT_CHARS) {
      const [oldest, e] = this.#entries.entries().next().value!;
      this.#entries.delete(oldest);
      this.#kept -= e.text?.length ?? 0;
    }
    return out;
  }
}
