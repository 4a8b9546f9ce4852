// Where a context window cuts a conversation: which units are pinned (system prompt, first task,
// preserve-rule matches under their cap, the newest messages), and the cut itself (droppable units
// dropped from the front, old tool results cleared), moved only as far as a goal needs.
import type { ContextConfig } from '../../policies/types.ts';
import type { Message } from '../canonical.ts';
import type { Unit } from './units.ts';

export interface SessionCut {
  /** Droppable units dropped from the front. */
  dropped: number;
  /** Tool results in messages before this index are cleared. */
  clearedBefore: number;
}

export interface Plan {
  messages: Message[];
  tokens: number;
  dropped: Message[];
  cleared: number;
}

/** Units always kept: leading system messages, the first user task, rule matches (under their cap), the newest messages. */
export function pinnedUnits(units: readonly Unit[], messages: readonly Message[], cfg: ContextConfig, byRule: (m: Message) => boolean, tokensOf: (ms: Message[]) => number): Set<Unit> {
  const keep = new Set<Unit>();
  const firstUser = messages.findIndex((m) => m.role === 'user' && !m.toolResults?.length);
  let ruleTokens = 0;
  // Newest pinned messages win the cap: an instruction restated later is the one that stands.
  const byRuleUnits = units.filter((u) => u.messages.some(byRule)).reverse();
  for (const u of byRuleUnits) {
    const t = tokensOf(u.messages);
    if (ruleTokens + t > cfg.pinnedMaxTokens) continue;
    ruleTokens += t;
    keep.add(u);
  }
  const opening = messages.findIndex((m) => m.role !== 'system' && m.role !== 'developer');
  for (const u of units) {
    const end = u.start + u.messages.length;
    // The system prompt: every system or developer message before the conversation proper.
    if (opening === -1 || u.start < opening) keep.add(u);
    if (firstUser >= u.start && firstUser < end) keep.add(u);
    if (end > messages.length - cfg.window.minRecentMessages) keep.add(u);
  }
  return keep;
}

/** The conversation with the cut applied: the first `dropped` droppable units gone, old tool results cleared. */
export function apply(messages: readonly Message[], units: readonly Unit[], droppable: readonly Unit[], cut: SessionCut, count: (ms: readonly Message[]) => number): Plan {
  const gone = new Set(droppable.slice(0, cut.dropped));
  const out: Message[] = [];
  const dropped: Message[] = [];
  let cleared = 0;
  for (const u of units) {
    if (gone.has(u)) {
      dropped.push(...u.messages);
      continue;
    }
    for (const [j, m] of u.messages.entries()) {
      if (u.start + j < cut.clearedBefore && m.toolResults?.length && !isCleared(m)) {
        out.push(clearedCopy(m));
        dropped.push(m);
        cleared++;
      } else out.push(m);
    }
  }
  return { messages: out, tokens: count(out), dropped, cleared };
}

/** Moves the cut until the conversation fits `goal`: old tool results first, then whole units from the front. */
export function reduce(messages: readonly Message[], units: readonly Unit[], droppable: readonly Unit[], from: SessionCut, cfg: ContextConfig, goal: number, count: (ms: readonly Message[]) => number): SessionCut {
  const resultIndexes = messages.flatMap((m, i) => (m.toolResults?.length ? [i] : []));
  const keepLast = cfg.toolResults.keepLast;
  const keepFrom = keepLast === 0 ? messages.length : resultIndexes.length > keepLast ? resultIndexes[resultIndexes.length - keepLast] : 0;
  const cut: SessionCut = { dropped: from.dropped, clearedBefore: Math.max(from.clearedBefore, keepFrom) };
  if (apply(messages, units, droppable, cut, count).tokens <= goal) return cut;
  // Drop a unit at a time: binary search would skip the hysteresis point by a turn at most, but a
  // linear walk over units is a few hundred cached counts at worst.
  while (cut.dropped < droppable.length) {
    cut.dropped++;
    if (apply(messages, units, droppable, cut, count).tokens <= goal) return cut;
  }
  // Still over: the kept tool results go too (their content stays in memory).
  cut.clearedBefore = messages.length;
  return cut;
}

const CLEARED = '[warden: an earlier tool result was cleared to fit the context window; it is kept in the session memory]';

function isCleared(m: Message): boolean {
  return m.toolResults?.every((r) => r.content === CLEARED) ?? false;
}

function clearedCopy(m: Message): Message {
  const toolResults = m.toolResults!.map((r) => ({ ...r, content: CLEARED }));
  return { role: m.role, text: m.role === 'tool' ? CLEARED : m.text, toolResults, toolCalls: m.toolCalls };
}
