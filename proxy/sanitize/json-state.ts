// Where in a JSON text we are: inside a string or not. A match outside a string (a card number written
// as a JSON number) is replaced by a quoted token, so tool-call arguments stay valid JSON. `auto`
// decides by the first non-blank character: { or [ is JSON, anything else is prose.
export type TextMode = 'text' | 'json' | 'auto';

export class JsonState {
  #mode: 'text' | 'json' | undefined;
  #inString = false;
  #escaped = false;

  constructor(mode: TextMode) {
    this.#mode = mode === 'auto' ? undefined : mode;
  }

  /** Follows the text, in order, up to where a replacement is decided. */
  feed(s: string): void {
    if (this.#mode === 'text') return;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (this.#mode === undefined) {
        if (c === 32 || c === 9 || c === 10 || c === 13) continue;
        this.#mode = c === 123 || c === 91 ? 'json' : 'text';
        if (this.#mode === 'text') return;
      }
      if (this.#escaped) this.#escaped = false;
      else if (this.#inString && c === 92) this.#escaped = true;
      else if (c === 34) this.#inString = !this.#inString;
    }
  }

  /** Whether a replacement here must be a JSON string of its own (outside any string of a JSON text). */
  get quote(): boolean {
    return this.#mode === 'json' && !this.#inString;
  }
}
