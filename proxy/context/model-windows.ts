// What Warden knows of well-known models by name, for context windowing: which tiktoken encoding an
// OpenAI model uses, and how large a model's context window is when the policy does not say.

export type Encoding = 'o200k_base' | 'cl100k_base';

/** The model name without a gateway's path prefix ("openai/gpt-4o") or a fine-tune's "ft:". */
function baseName(model: string): string {
  return model.toLowerCase().replace(/^.*\//, '').replace(/^ft:/, '');
}

const O200K = /^(?:gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4)/;
const CL100K = /^(?:gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada)/;

/** The tiktoken encoding of an OpenAI model; o200k_base, the current one, for names it does not know. */
export function encodingFor(model: string): Encoding {
  const name = baseName(model);
  if (O200K.test(name)) return 'o200k_base';
  return CL100K.test(name) ? 'cl100k_base' : 'o200k_base';
}

// First match wins, so narrower names come before the families they belong to. A dated snapshot
// (gpt-4o-2024-08-06, claude-sonnet-4-5-20250929) matches its alias by the "-" after it.
const CONTEXT_WINDOWS: readonly [RegExp, number][] = [
  [/^(?:gpt|chatgpt)-4o(?:-|$)/, 128_000],
  [/^gpt-4\.1(?:-|$)/, 1_047_576],
  [/^gpt-4\.5(?:-|$)/, 128_000],
  [/^gpt-4-(?:turbo|1106|0125|vision)(?:-|$)/, 128_000],
  [/^gpt-4-32k(?:-|$)/, 32_768],
  [/^gpt-4(?:-|$)/, 8_192],
  [/^gpt-3\.5-turbo(?:-|$)/, 16_385],
  [/^o1-(?:mini|preview)(?:-|$)/, 128_000],
  [/^o[134](?:-|$)/, 200_000],
  [/^gpt-5(?:\.\d+)?-chat(?:-|$)/, 128_000],
  [/^gpt-5(?:[.-]|$)/, 400_000],
  [/^claude-/, 200_000],
];

/** The context window of well-known models, when the policy does not say. */
export function defaultContextTokens(model: string): number | undefined {
  const name = baseName(model);
  return CONTEXT_WINDOWS.find(([pattern]) => pattern.test(name))?.[1];
}
