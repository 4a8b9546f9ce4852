// The jury over parallel answers. Majority: answers are grouped by what they mean rather than how they
// are spelled (tool calls by name and canonical arguments, JSON by its canonical form, text with case,
// spacing and trailing punctuation normalized); the biggest group wins. Confidence: the most confident
// answer wins. Either way the agreement (the winner's group over the answers) decides escalation.
import type { Response } from '../canonical.ts';
import { canonicalize } from '../audit/canonical-json.ts';

export interface Candidate {
  response: Response;
  confidence?: number;
}

export interface Verdict {
  /** Index of the chosen candidate. */
  winner: number;
  /** The winner's group size over the number of candidates. */
  agreement: number;
  /** Each group's candidates (indices), biggest first; the winner's group is first. */
  groups: number[][];
}

/** The key two answers share when they mean the same. */
export function answerKey(res: Response): string {
  if (res.toolCalls.length > 0) {
    const calls = res.toolCalls.map((c) => `${c.name}(${jsonKey(c.arguments) ?? c.arguments})`).sort();
    return `tools:${calls.join(';')}`;
  }
  return jsonKey(res.text) ?? `text:${normalizeText(res.text)}`;
}

function jsonKey(text: string): string | undefined {
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return undefined;
  try {
    return `json:${canonicalize(JSON.parse(t))}`;
  } catch {
    return undefined;
  }
}

function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim().replace(/[.!。]+$/u, '');
}

/** Picks an answer; ties go to the more confident group, then to the earlier answer. */
export function judge(candidates: readonly Candidate[], select: 'majority' | 'confidence'): Verdict {
  const byKey = new Map<string, number[]>();
  candidates.forEach((c, i) => {
    const key = answerKey(c.response);
    byKey.set(key, [...(byKey.get(key) ?? []), i]);
  });
  const best = (g: number[]) => Math.max(...g.map((i) => candidates[i].confidence ?? 0));
  const groups = [...byKey.values()].sort((a, b) => b.length - a.length || best(b) - best(a) || a[0] - b[0]);
  let winner = groups[0][0];
  if (select === 'confidence') {
    winner = candidates.reduce((w, c, i) => ((c.confidence ?? -1) > (candidates[w].confidence ?? -1) ? i : w), 0);
    groups.sort((a, b) => Number(b.includes(winner)) - Number(a.includes(winner)));
  } else {
    // Within the winning group, its most confident member speaks for it.
    winner = groups[0].reduce((w, i) => ((candidates[i].confidence ?? -1) > (candidates[w].confidence ?? -1) ? i : w), groups[0][0]);
  }
  return { winner, agreement: groups[0].length / candidates.length, groups };
}

/** Agreement as the policy compares it: at two decimals, so 0.67 reads as two of three. */
export function belowAgreement(agreement: number, threshold: number | undefined): boolean {
  return threshold !== undefined && Math.round(agreement * 100) / 100 < threshold;
}
