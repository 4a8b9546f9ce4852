// A conversation as atomic units: an assistant message that calls tools travels with every message
// that carries those calls' results, so a window never keeps a call without its result or a result
// without its call. And the validator that mirrors the providers' own rules, run after every edit.
import type { Message } from '../canonical.ts';

export interface Unit {
  /** Index of the unit's first message in the conversation. */
  start: number;
  messages: Message[];
}

/** Splits messages into units: each tool-calling assistant message with the results that answer it. */
export function unitsOf(messages: readonly Message[]): Unit[] {
  const units: Unit[] = [];
  let open: { unit: Unit; waiting: Set<string>; answered?: boolean } | undefined;
  messages.forEach((m, i) => {
    const results = m.toolResults ?? [];
    // The Responses API gives each parallel call its own item: calls in a row are one turn.
    if (open && !open.answered && m.role === 'assistant' && m.toolCalls?.length && !m.text) {
      open.unit.messages.push(m);
      for (const c of m.toolCalls) if (c.id) open.waiting.add(c.id);
      return;
    }
    if (open && results.length > 0 && results.some((r) => open!.waiting.has(r.toolCallId))) {
      open.answered = true;
      open.unit.messages.push(m);
      for (const r of results) open.waiting.delete(r.toolCallId);
      if (open.waiting.size === 0) open = undefined;
      return;
    }
    open = undefined;
    const unit: Unit = { start: i, messages: [m] };
    units.push(unit);
    const calls = (m.toolCalls ?? []).map((c) => c.id).filter(Boolean);
    if (m.role === 'assistant' && calls.length > 0) open = { unit, waiting: new Set(calls) };
  });
  return units;
}

export interface Orphans {
  /** Tool call ids no later message answers (before the next assistant turn). */
  calls: string[];
  /** Tool result ids that answer no earlier call. */
  results: string[];
}

/**
 * Orphans in both directions, by the providers' rules: every tool call is answered by the messages
 * right after it (before the next assistant message), and every result answers a call made just
 * before. A trailing assistant call with no result yet is fine: the agent is about to run it.
 */
export function orphansOf(messages: readonly Message[]): Orphans {
  const orphans: Orphans = { calls: [], results: [] };
  let pending = new Set<string>();
  let answerable = new Set<string>();
  let answeredSince = 0;
  messages.forEach((m, i) => {
    const ids = (m.toolCalls ?? []).map((c) => c.id).filter(Boolean);
    // Parallel calls as separate items (the Responses API): one turn, answered after the last of them.
    if (m.role === 'assistant' && ids.length > 0 && !m.text && pending.size > 0 && answeredSince === 0) {
      for (const id of ids) {
        pending.add(id);
        answerable.add(id);
      }
      if (i === messages.length - 1) pending = new Set();
      return;
    }
    if (m.role === 'assistant') {
      orphans.calls.push(...pending);
      pending = new Set(ids);
      answerable = new Set(ids);
      answeredSince = 0;
      // The last message may be the call the agent is about to answer.
      if (i === messages.length - 1) pending = new Set();
      return;
    }
    for (const r of m.toolResults ?? []) {
      answeredSince++;
      if (answerable.has(r.toolCallId)) pending.delete(r.toolCallId);
      else orphans.results.push(r.toolCallId);
    }
    if (!m.toolResults?.length && m.role === 'user' && pending.size > 0) {
      orphans.calls.push(...pending);
      pending = new Set();
    }
  });
  orphans.calls.push(...pending);
  return orphans;
}
