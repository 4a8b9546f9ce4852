// A drift decision as people read it in a terminal or a CI log: one row per capability (state,
// baseline → candidate, Δ with the interval drawn at the level its test was held to, p and that
// level, pairs and looks), the cases that regressed, and a one-line verdict. It takes the decision's
// figures only, so a local `warden eval status` (a DriftReport) and a sidecar's GET /evals (its
// summary) print the same way.
import { formatInterval, percent, table } from './report.ts';
import type { CapabilityDrift, DriftState } from './types.ts';

/** The figures of one capability's decision that a report prints; tolerance is absent in a sidecar's summary. */
export type DriftRow = Pick<CapabilityDrift, 'name' | 'state' | 'delta' | 'interval' | 'p' | 'alphaUsed' | 'baselineValue' | 'candidateValue' | 'n' | 'looks'> & {
  tolerance?: number;
  regressions?: CapabilityDrift['regressions'];
};

/** DRIFT in capitals, so the one state that needs a person stands out in a column of states. */
export function stateLabel(state: DriftState): string {
  return state === 'drift' ? 'DRIFT' : state;
}

/** A change as a signed percentage, e.g. -0.4 → "-40.0%", 0.013 → "+1.3%". */
export function signedPercent(x: number): string {
  return `${x > 0 ? '+' : ''}${percent(x)}`;
}

/** A p-value or level: fixed while it reads well, scientific once it is tiny. */
export function formatP(p: number): string {
  if (p === 0) return '0';
  return p >= 0.001 ? p.toFixed(4) : p.toExponential(1);
}

/** The capabilities' table, then each regressed case ("orders-3: 3/3 → 1/3 passes"). */
export function formatDriftRows(rows: readonly DriftRow[], opts: { color?: boolean; indent?: string } = {}): string[] {
  const indent = opts.indent ?? '';
  const head = ['CAPABILITY', 'STATE', 'BASELINE → CANDIDATE', 'Δ', 'INTERVAL OF Δ', 'P', 'LEVEL', 'PAIRS', 'LOOKS'];
  const cells = rows.map((r) => [
    r.name, stateLabel(r.state), `${percent(r.baselineValue)} → ${percent(r.candidateValue)}`, signedPercent(r.delta),
    formatInterval(r.interval), formatP(r.p), formatP(r.alphaUsed), String(r.n), String(r.looks),
  ]);
  const lines = table([head, ...cells], indent);
  // Colour after padding, so escape codes never skew the columns.
  if (opts.color) for (let i = 1; i < lines.length; i++) lines[i] = lines[i].replace(/\bDRIFT\b/, '\x1b[31mDRIFT\x1b[0m');
  const regressed = rows.filter((r) => r.regressions && r.regressions.length > 0);
  if (regressed.length > 0) {
    lines.push('', `${indent}cases that regressed (lost at least two passes of their paired trials):`);
    for (const r of regressed) {
      for (const c of r.regressions!) {
        lines.push(`${indent}  ${r.name} / ${c.id}: ${c.baseline.passes}/${c.baseline.trials} → ${c.candidate.passes}/${c.candidate.trials} passes`);
      }
    }
  }
  return lines;
}

/** The worst state over the rows (drift > inconclusive > no_drift), and one line that says what it means. */
export function driftVerdict(rows: readonly DriftRow[]): { state: DriftState; line: string } {
  const drifted = rows.filter((r) => r.state === 'drift');
  if (drifted.length > 0) {
    const moved = drifted.map((r) => `${r.name} ${percent(r.baselineValue)} → ${percent(r.candidateValue)}, Δ ${signedPercent(r.delta)} ${formatInterval(r.interval)}`);
    return { state: 'drift', line: `DRIFT confirmed on ${moved.join('; ')}: accept the new behaviour (re-certify), roll the model back, or fix the agent` };
  }
  const open = rows.filter((r) => r.state === 'inconclusive');
  if (open.length > 0) {
    const looks = Math.max(...open.map((r) => r.looks));
    return {
      state: 'inconclusive',
      line: `inconclusive on ${open.map((r) => r.name).join(', ')} after ${looks} look${looks === 1 ? '' : 's'}: the data can tell neither drift nor its absence; add cases or trials to the pact (and re-certify) to decide`,
    };
  }
  if (rows.length === 0) return { state: 'no_drift', line: 'nothing to decide: the baseline holds none of the pact\'s capabilities' };
  return { state: 'no_drift', line: `no drift: all ${rows.length} capabilities are within their tolerance of the baseline` };
}
