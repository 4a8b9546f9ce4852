// The few whole records the agent page reads (drift, evaluations, escalations), turned into its rows.
// Records are evidence, not trusted input: a field of the wrong shape is skipped, never an error.
import type { DriftEvent, EscalationRow } from './dashboard-types.ts';
import { compareText } from './rollups.ts';

function round(x: unknown): string {
  return typeof x === 'number' ? String(Math.round(x * 1000) / 1000) : String(x);
}

/** One line for a drift record: the capabilities that drifted, or the live metrics that moved. */
export function driftSummary(r: Record<string, any>): { kind: DriftEvent['kind']; summary: string } {
  const passive = r.passive;
  if (passive && typeof passive === 'object') {
    const flagged: any[] = Array.isArray(passive.flagged) ? passive.flagged : [];
    const moved = flagged.map((m) => (typeof m?.reason === 'string' ? m.reason : `${m?.metric}: ${round(m?.baseline)} → ${round(m?.current)}`));
    return { kind: 'passive', summary: `Live traffic, window ${passive.window}: ${moved.join('; ') || 'metrics moved'}` };
  }
  const capabilities: any[] = Array.isArray(r.drift?.capabilities) ? r.drift.capabilities : [];
  const drifted = capabilities.filter((c) => c?.state === 'drift')
    .map((c) => `${c.name} ${round(c.baseline)} → ${round(c.candidate)} (Δ ${round(c.delta)})`);
  return { kind: 'pact', summary: `Pact drift: ${drifted.join('; ') || 'confirmed'}` };
}

export type BodyRow = { logId: string; seq: number; ts: string; body: string };

export function parsed(rows: BodyRow[]): (BodyRow & { r: Record<string, any> })[] {
  return rows.flatMap((row) => {
    try {
      const r = JSON.parse(row.body);
      return r && typeof r === 'object' ? [{ ...row, r }] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Escalations from their records, newest first: one row per escalation, when and where it was
 * opened and how it ended ("pending" while only opened in the range).
 */
export function escalationRows(rows: BodyRow[]): EscalationRow[] {
  const byId = new Map<string, EscalationRow>();
  // Oldest first, so the opening record sets when and where, and the final one how it ended.
  for (const { r, logId, seq, ts } of parsed(rows).reverse()) {
    const e = r.escalation;
    if (typeof e?.id !== 'string') continue;
    let row = byId.get(e.id);
    if (!row) {
      row = { ts, id: e.id, kind: String(e.kind ?? ''), outcome: 'pending', logId, seq };
      if (typeof e.tool === 'string') row.tool = e.tool;
      if (typeof r.task === 'string') row.task = r.task;
      byId.set(e.id, row);
    }
    if (r.action === 'opened' || typeof r.action !== 'string') continue;
    row.outcome = r.action;
    if (typeof r.decision?.by === 'string') row.by = r.decision.by;
    if (typeof e.waited_ms === 'number') row.waitedMs = e.waited_ms;
  }
  return [...byId.values()].sort((a, b) => compareText(b.ts, a.ts));
}
