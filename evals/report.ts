// A run as people read it in a terminal or a CI log: one summary table of the capabilities (value,
// 95% interval, threshold, verdict), then each capability's cases with their first failure. Plain
// text in aligned columns that fit 100 columns; colour only when asked (a TTY).
import type { CapabilityResult, CaseResult, RunResult } from './types.ts';

const WIDTH = 100;
const REASON_MIN = 20; // below this a failure reason says nothing; the row may wrap instead

/** A fraction as a percentage with one decimal, e.g. 0.8667 → "86.7%". */
export function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** An interval as "[lo%, hi%]". */
export function formatInterval([lo, hi]: readonly [number, number]): string {
  return `[${percent(lo)}, ${percent(hi)}]`;
}

/** Which interval a capability's metric reports: Wilson for pass rates, a bootstrap over cases for scores. */
export function intervalName(cap: Pick<CapabilityResult, 'metric'>): string {
  return cap.metric === 'pass_rate' ? 'Wilson 95%' : 'bootstrap 95%';
}

/** Rows as aligned columns (two spaces apart), each line prefixed with `indent`. */
export function table(rows: string[][], indent = ''): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => indent + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

function abbreviate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(1, max - 1))}…`;
}

/** The first failure of a case: the first failed check of the first failed trial, or its transport error. */
function firstFailure(c: CaseResult): string {
  const trial = c.trials.find((t) => !t.pass);
  if (!trial) return '';
  if (trial.observation.error !== undefined) return `trial ${trial.trial}: ${trial.observation.error}`;
  const check = trial.checks.find((k) => !k.pass);
  if (!check) return `trial ${trial.trial}: below the pass score`;
  return `trial ${trial.trial}: ${check.check}${check.reason ? ` — ${check.reason}` : ''}`;
}

function caseRows(cap: CapabilityResult): string[] {
  const indent = '    ';
  const head = ['CASE', 'PASSES', 'SCORE', 'FIRST FAILURE'];
  const cells = cap.cases.map((c) => [c.id, `${c.passes}/${c.trials.length}`, c.meanScore.toFixed(2), '']);
  // The reason takes whatever the other columns leave of the line.
  const used = indent.length + head.slice(0, 3).reduce((n, h, i) => n + Math.max(h.length, ...cells.map((r) => r[i].length)) + 2, 0);
  const room = Math.max(REASON_MIN, WIDTH - used);
  cap.cases.forEach((c, i) => (cells[i][3] = abbreviate(firstFailure(c), room) || '-'));
  return table([head, ...cells], indent);
}

/** A run as a plain-text report: the capabilities' verdicts, then each one's cases. */
export function formatRun(result: RunResult, opts: { color?: boolean } = {}): string {
  const paint = (ok: boolean, text: string) => (opts.color ? `\x1b[${ok ? 32 : 31}m${text}\x1b[0m` : text);
  const served = result.served.model
    ? `${result.served.model}${result.served.systemFingerprint ? ` (${result.served.systemFingerprint})` : ''}`
    : 'unknown';
  const lines = [
    `pact ${result.pact.file}  agent ${result.pact.agent}`,
    `target ${result.target}  served ${served}`,
    '',
  ];
  const head = ['CAPABILITY', 'METRIC', 'VALUE', '95% INTERVAL', 'THRESHOLD', 'TRIALS', 'RESULT'];
  const rows = result.capabilities.map((cap) => [
    cap.name, cap.metric, percent(cap.value), formatInterval(cap.interval), percent(cap.threshold),
    String(cap.cases.reduce((n, c) => n + c.trials.length, 0)), cap.passed ? 'PASS' : 'FAIL',
  ]);
  // Colour is applied after padding, so escape codes never skew the columns.
  table([head, ...rows]).forEach((line, i) => lines.push(i === 0 ? line : line.replace(/(PASS|FAIL)$/, (v) => paint(v === 'PASS', v))));
  for (const cap of result.capabilities) {
    lines.push('', `${cap.name} (${cap.metric}, ${intervalName(cap)} interval ${formatInterval(cap.interval)})`, ...caseRows(cap));
  }
  const failed = result.capabilities.filter((c) => !c.passed).length;
  lines.push('', result.passed
    ? paint(true, `all ${result.capabilities.length} capabilities met their thresholds`)
    : paint(false, `${failed} of ${result.capabilities.length} capabilities missed their thresholds`));
  return `${lines.join('\n')}\n`;
}

const REDRAW_MS = 100; // ~10 redraws a second: smooth enough, and cheap over slow terminals
const BAR_CELLS = 30;

/** A one-line progress bar redrawn in place on a TTY; on anything else (a pipe, a CI log) it prints nothing. */
export function progressBar(stream: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean }): { update(done: number, total: number): void; done(): void } {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (done < total && now - last < REDRAW_MS) return;
      last = now;
      drawn = true;
      const filled = total === 0 ? BAR_CELLS : Math.round((done / total) * BAR_CELLS);
      stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(BAR_CELLS - filled)}] ${done}/${total} trials\x1b[K`);
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
