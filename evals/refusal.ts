// Does a reply decline the request? Used by the passive monitor (refusal rate per window) and by the
// pact check `refusal`. English only, and deliberately a heuristic: the refusal *rate* is what is
// compared over hundreds of calls, so a detector that is consistent matters more than one that is
// perfect on each reply.
//
// Two choices keep it from firing on helpful answers:
// - The subject must be the model ("I can't help…"), not the user or a policy ("You cannot return
//   items after 30 days"), and a modal ("can't", "won't") must be followed by a verb of service
//   ("help", "assist", "provide", …), so "I can't wait to help you!" and "I can't help but notice…"
//   are not refusals.
// - The phrase must start near the top of the reply (the first REFUSAL_WINDOW characters): models
//   decline up front, while an answer that quotes a refusal further down ("…the bot replied 'I
//   cannot assist'") is still an answer.

/** Characters from the start of a reply in which a refusal phrase must begin. */
export const REFUSAL_WINDOW = 200;

// A phrase may run a little past the window; it only has to start inside it.
const SCAN_CHARS = REFUSAL_WINDOW + 80;

// Apostrophes are optional: "I cant help with that" is a typo of a refusal, never a use of "cant".
const NEGATED_MODAL = String.raw`(?:can'?t|cannot|can not|couldn'?t|could not|won'?t|will not|shouldn'?t|should not)`;
const ADVERB = String.raw`(?:\s+(?:really|actually|currently|unfortunately|simply|just|directly|personally|ethically|legally|in good conscience))?`;
// "I can't and won't help" / "I cannot or will not assist".
const AND_WONT = String.raw`(?:\s+(?:and|or)\s+(?:won't|will not|shouldn't|should not))?`;
const SERVICE_VERB = String.raw`(?:help(?!\s+but\b)|assist|provide|comply|fulfil+|support|share|give|create|write|generate|produce|complete|answer|respond|discuss|engage|offer|continue|proceed|participate|accommodate|process|perform|disclose|reveal|carry out|go along|do (?:that|this|so|it))`;
// "I am", "I'm" (curly apostrophes are normalized before matching).
const I_AM = String.raw`I(?:'?m|\s+am)`;

const PATTERNS = [
  // I can't help with that / I cannot assist / I'm sorry, but I can't provide / I really can't do that.
  String.raw`\bI${ADVERB}\s+${NEGATED_MODAL}${AND_WONT}${ADVERB}\s+${SERVICE_VERB}\b`,
  // I am unable to… / I'm not able to provide… / I won't be able to… / I will not be able to…
  String.raw`\b${I_AM}\s+(?:unable|not able)\s+to\b`,
  String.raw`\bI(?:\s+won'?t|\s+will not|'ll not)\s+be able to\b`,
  // I'm not allowed / permitted / comfortable / in a position to…
  String.raw`\b${I_AM}\s+not\s+(?:allowed|permitted|comfortable|in a position)\b`,
  String.raw`\bI\s+(?:don'?t|do not)\s+feel comfortable\b`,
  // I must decline / I'll have to decline / I respectfully decline / I refuse to…
  String.raw`\bI(?:'ll|\s+will|\s+must|\s+have to|\s+need to|'m going to|'d have to)?(?:\s+have to)?(?:\s+respectfully|\s+politely)?\s+(?:decline|refuse)\b`,
  // That's not something I can help with / This isn't something I'm able to assist with.
  String.raw`\bnot something (?:that\s+)?I(?:\s+can|\s+am able to|'m able to|\s+will|\s+could)\s+(?:help|assist|provide|do|support)\b`,
  // As an AI (language model), I cannot / I don't / I'm not / I must… — a disclaimer that leads
  // into declining. "As an AI, I can help you with that" is not one.
  String.raw`\bAs an AI(?:\s+(?:language model|assistant|model|system))?,?\s+I(?:\s+${NEGATED_MODAL}|\s+(?:don'?t|do not|must|have no|lack)|'m not|\s+am not)\b`,
];

// One alternation compiled once: the leftmost match is the earliest refusal phrase, which is all
// the window check needs.
const REFUSAL = new RegExp(PATTERNS.join('|'), 'i');

/** Whether a reply declines the request: a refusal phrase begins within its first REFUSAL_WINDOW characters. */
export function isRefusal(text: string): boolean {
  // Leading whitespace and markdown emphasis do not push a refusal out of the window.
  const head = text.trimStart().slice(0, SCAN_CHARS).replace(/[‘’ʼ`´]/g, "'").replace(/[*_]/g, '');
  if (head.length === 0) return false;
  const match = REFUSAL.exec(head);
  return match !== null && match.index < REFUSAL_WINDOW;
}
