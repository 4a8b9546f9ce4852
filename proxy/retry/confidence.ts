// How sure a model was of an answer. From logprobs: the mean probability of the answer's tokens (a
// hedging answer spreads probability over alternatives, so its tokens score low). Self-reported: the
// model is asked to end with a score, which Warden reads and strips; cruder, but any model can do it.
import type { Message, Request } from '../canonical.ts';

/** The mean token probability of an answer's token logprobs; undefined when there are none. */
export function meanProbability(logprobs: readonly number[]): number | undefined {
  if (logprobs.length === 0) return undefined;
  let sum = 0;
  for (const lp of logprobs) sum += Math.exp(lp);
  return sum / logprobs.length;
}

export const SELF_REPORT_INSTRUCTION =
  'After your answer, on a line of its own, write your confidence that the answer is correct and complete as '
  + '"[confidence: X]" with X between 0 and 1. Write nothing after it.';

/** The request with the self-report instruction as its last system message. */
export function withSelfReport(req: Request): Request {
  const note: Message = { role: 'system', text: SELF_REPORT_INSTRUCTION };
  return { ...req, messages: [...req.messages, note] };
}

// The marker at the very end of the answer; tolerant of how models vary it (no brackets,
// "Confidence", a percentage). It is matched only against the answer's last characters: a pattern
// with optional whitespace, run over a whole answer of model output, backtracks polynomially on long
// runs of spaces (seconds for a few thousand), and the marker is short.
const MARKER = /\[?\s*confidence\s*[:=]\s*(\d+(?:\.\d+)?)\s*(%?)\s*\]?$/i;
const MARKER_WINDOW = 128;

/** The self-reported score at the end of `text` and where the marker (with the blank space before it) starts; undefined score when absent or out of range. */
export function selfReport(text: string): { score?: number; at: number } {
  const trimmed = text.trimEnd();
  const from = Math.max(0, trimmed.length - MARKER_WINDOW);
  const m = MARKER.exec(trimmed.slice(from));
  if (!m) return { at: text.length };
  let at = from + m.index;
  while (at > 0 && /\s/.test(text[at - 1])) at--;
  const value = Number(m[1]) / (m[2] ? 100 : 1);
  return { score: value >= 0 && value <= 1 ? value : undefined, at };
}
