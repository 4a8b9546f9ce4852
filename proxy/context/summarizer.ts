// Tier 2 of context windowing: a structured summary of the span a window slide dropped, written by a
// model called through the same upstream (its credential, its pool), in that provider's own wire
// format. When the model cannot answer in time, an extractive summary stands in: the dropped lines
// that carry constraints or exact values, verbatim.
import type { Message } from '../canonical.ts';
import type { UpstreamClient } from '../http/upstream-client.ts';
import type { Json } from '../providers/types.ts';
import { findEndpoint } from '../providers/index.ts';

export interface SummaryRequest {
  client: UpstreamClient;
  model: string;
  /** The summary so far (of earlier slides), which the new one extends. */
  previous?: string;
  dropped: readonly Message[];
  maxTokens: number;
  timeoutMs: number;
}

const INSTRUCTIONS = `[warden summarizer] You compress the earlier part of a conversation between a user and an AI agent, which no longer fits the agent's context window. Write a structured summary with these headings: Goal; Constraints (verbatim: every instruction, rule or preference the user stated, quoted exactly); Decisions; Current state; Open items; Exact values (ids, numbers, names, dates, amounts, quoted exactly). Extend the previous summary if one is given. Never invent anything; omit a heading with nothing under it.`;

// Lines an extractive summary keeps: instructions and anything with digits or ids in it.
const SALIENT = /\b(always|never|must|do not|don't|please|important|require|need)\b|\d|[A-Z]{2,}-\w+/i;

/** A transcript of the dropped span for the summarizer, oldest first. */
function transcript(dropped: readonly Message[]): string {
  return dropped.map((m) => {
    const calls = (m.toolCalls ?? []).map((c) => ` [calls ${c.name}(${c.arguments})]`).join('');
    return `${m.role}: ${m.text}${calls}`;
  }).join('\n');
}

/** The model's summary; throws when the upstream does not give one in time. */
export async function summarize(r: SummaryRequest): Promise<string> {
  const provider = r.client.provider;
  const own = provider.ownCall;
  const endpoint = own && findEndpoint(provider, 'POST', own.path);
  if (!own || !endpoint) throw new Error(`upstream ${r.client.config.name} has no endpoint to summarize with`);
  const input = `${r.previous ? `Previous summary:\n${r.previous}\n\n` : ''}Conversation to summarize:\n${transcript(r.dropped)}`;
  const raw = Buffer.from(JSON.stringify(own.body(r.model, INSTRUCTIONS, input, r.maxTokens)));
  const res = await r.client.send({
    method: 'POST', path: r.client.path(own.path), body: raw, signal: AbortSignal.timeout(r.timeoutMs),
    headers: { ...r.client.setHeaders, ...own.headers, 'content-type': 'application/json', 'content-length': String(raw.length) },
  });
  const text = await res.body.setEncoding('utf8').toArray().then((parts) => parts.join(''));
  if (res.status !== 200) throw new Error(`the summarizer answered HTTP ${res.status}`);
  const summary = endpoint.adapter.parseResponse(JSON.parse(text) as Json).text.trim();
  if (!summary) throw new Error('the summarizer answered with no text');
  return summary;
}

/** The fallback: the dropped lines that carry instructions or exact values, verbatim, within a cap. */
export function extractiveSummary(dropped: readonly Message[], previous: string | undefined, maxChars: number): string {
  const lines = dropped.filter((m) => m.role === 'user' || m.role === 'assistant')
    .flatMap((m) => m.text.split(/(?<=[.!?])\s+|\n/).filter((s) => SALIENT.test(s)).map((s) => `- ${m.role}: ${s.trim()}`));
  const out: string[] = previous ? [previous] : [];
  let size = out.join('\n').length;
  for (const line of lines) {
    if (size + line.length + 1 > maxChars) break;
    out.push(line);
    size += line.length + 1;
  }
  return out.join('\n');
}
