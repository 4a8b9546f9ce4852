// `warden eval baseline`: certify what the agent does now as the behaviour later runs are judged by.
// Locally it runs every case trials × looks times (a drift decision pairs each of its looks with
// these trials), stores the result as the agent's active baseline in <data-dir>/evals.db, and writes
// it as JSON for a repo, where the policy's `evals.baseline` reads it. With --admin it asks a running
// sidecar to certify through its own listener (pins and protections applied) and prints the answer.
// Exit codes: 0 certified, 1 the sidecar refused, 2 usage, a bad pact or a target no trial could use.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { baselineFromRun } from '../../evals/certify.ts';
import { EvalStore } from '../../evals/store.ts';
import { formatInterval, percent, table } from '../../evals/report.ts';
import type { Baseline, Metric } from '../../evals/types.ts';
import { summarizeRun } from '../evals/summaries.ts';
import { ConfigError, UsageError } from '../errors.ts';
import { adminClient } from './admin-client.ts';
import { ADMIN_FLAGS, operatorName, refusalIsExit1 } from './eval-action-command.ts';
import { parseEvalFlags, runWithProgress, TARGET_FLAGS, targetRunOptions, unusableTarget, type Out } from './eval-command.ts';

// A function, not a const: eval-command.ts (TARGET_FLAGS) imports this file, so its consts are not
// yet bound while this module's body runs.
function flagSpec() {
  return { ...TARGET_FLAGS, ...ADMIN_FLAGS, out: { type: 'string' }, 'data-dir': { type: 'string' } } as const;
}

/** One capability of a certified baseline as printed, from a local Baseline or a sidecar's answer. */
interface Row {
  name: string;
  metric: Metric;
  value: number;
  interval: [number, number];
  trials: number;
  mde?: number;
  tolerance?: number;
}

/** Where the baseline goes by default: next to the pact, `support.pact.yaml` → `support.pact.baseline.json`. */
export function defaultBaselineFile(pactFile: string): string {
  return join(dirname(pactFile), `${basename(pactFile).replace(/\.ya?ml$/i, '')}.baseline.json`);
}

function capabilityTable(rows: Row[]): string[] {
  const withTolerance = rows.some((r) => r.tolerance !== undefined);
  const head = ['CAPABILITY', 'METRIC', 'VALUE', '95% INTERVAL', 'TRIALS', 'MDE', ...(withTolerance ? ['TOLERANCE'] : [])];
  const cells = rows.map((r) => [
    r.name, r.metric, percent(r.value), formatInterval(r.interval), String(r.trials),
    r.mde === undefined ? '-' : percent(r.mde), ...(withTolerance ? [r.tolerance === undefined ? '-' : percent(r.tolerance)] : []),
  ]);
  return table([head, ...cells]);
}

function served(s: { model?: string; systemFingerprint?: string } | undefined): string {
  if (!s?.model) return 'unknown';
  return `${s.model}${s.systemFingerprint ? ` (fingerprint ${s.systemFingerprint})` : ''}`;
}

/** Writes through a temporary file, so a checked-in baseline is never left half written. */
function writeBaselineFile(file: string, baseline: Baseline): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(baseline, null, 2)}\n`);
    renameSync(tmp, file);
  } catch (err) {
    throw new ConfigError(`cannot write the baseline to ${file}: ${(err as Error).message} (set --out FILE)`, { cause: err });
  }
}

function storeBaseline(dataDir: string, baseline: Baseline, detail: Record<string, unknown>): string {
  const path = join(dataDir, 'evals.db');
  let store: EvalStore | undefined;
  try {
    mkdirSync(dataDir, { recursive: true });
    store = new EvalStore(path);
    store.saveBaseline(baseline);
    store.addHistory(baseline.agent, 'baseline_certified', detail);
  } catch (err) {
    throw new ConfigError(`cannot store the baseline in ${path}: ${(err as Error).message} (set --data-dir or WARDEN_DATA_DIR)`, { cause: err });
  } finally {
    store?.close();
  }
  return path;
}

/** `warden eval baseline`: certifies a baseline locally (file and evals.db) or in a sidecar (--admin). */
export async function evalBaselineCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const f = parseEvalFlags('baseline', args, flagSpec());
  if (f.admin !== undefined) {
    const local = (['pact', 'target', 'out', 'data-dir', 'header', 'api-key', 'concurrency', 'capability', 'model'] as const).find((k) => f[k] !== undefined);
    if (local) throw new UsageError(`eval baseline --admin certifies the sidecar's own pact against its own listener; --${local} is for a local certification`);
    return viaSidecar(f, stdout, stderr);
  }
  if (f.token !== undefined) throw new UsageError('--token goes with --admin URL (a local certification needs no admin token)');
  // A baseline missing a capability could never judge it; a partial one would pass for a whole one.
  if (f.capability) throw new UsageError('eval baseline certifies every capability of the pact: drop --capability');
  const by = operatorName(f.by);
  const { pact, options } = await targetRunOptions('baseline', f);
  // certifyBaseline's run (every look's trials up front), here through runWithProgress for the
  // progress bar and Ctrl-C; baselineFromRun then measures it exactly as certifyBaseline does.
  const run = await runWithProgress(pact, { ...options, trials: (cap) => cap.trials * pact.looks }, stderr);
  if (run === 'interrupted') {
    stderr.write('warden: interrupted; no baseline was stored\n');
    return 130;
  }
  const unusable = unusableTarget(run);
  if (unusable) {
    stderr.write(`warden: ${unusable}\nwarden: no baseline was stored\n`);
    return 2;
  }
  const { baseline, warnings } = baselineFromRun(pact, run);
  const out = resolve(f.out ?? defaultBaselineFile(pact.file));
  const dataDir = resolve(f['data-dir'] ?? process.env.WARDEN_DATA_DIR ?? '.warden');
  writeBaselineFile(out, baseline);
  const db = storeBaseline(dataDir, baseline, {
    by, note: f.note, source: 'cli', target: run.target, file: out, baseline: baseline.id, model: baseline.model, mde: baseline.mde, warnings,
  });
  for (const w of warnings) stderr.write(`warden: warning: ${w}\n`);
  for (const c of run.capabilities.filter((x) => !x.passed)) {
    stderr.write(`warden: warning: ${c.name} is below its threshold in this baseline (${percent(c.value)} < ${percent(c.threshold)}); drift is judged against it all the same\n`);
  }
  if (f.json) {
    stdout.write(`${JSON.stringify({ baseline: baseline.id, agent: baseline.agent, file: out, store: db, model: baseline.model, mde: baseline.mde, warnings, ...summarizeRun(run) }, null, 2)}\n`);
    return 0;
  }
  const rows: Row[] = run.capabilities.map((c) => ({
    name: c.name, metric: c.metric, value: c.value, interval: c.interval,
    trials: c.cases.reduce((n, k) => n + k.trials.length, 0), mde: baseline.mde[c.name],
    tolerance: pact.capabilities.find((p) => p.name === c.name)?.tolerance,
  }));
  stdout.write([
    `baseline ${baseline.id} for agent ${baseline.agent}, certified ${baseline.certifiedAt}`,
    `pact ${pact.file} (${pact.looks} looks of trials per case)  target ${run.target}  served ${served(run.served)}`,
    '',
    ...capabilityTable(rows),
    '',
    'MDE: the smallest change in a capability a drift decision against this baseline can detect (80% power)',
    `wrote ${out} (point the policy's evals.baseline at it)`,
    `stored as the active baseline of ${baseline.agent} in ${db}`,
  ].join('\n') + '\n');
  return 0;
}

async function viaSidecar(f: { admin?: string; token?: string; by?: string; note?: string; json?: boolean }, stdout: Out, stderr: Out): Promise<number> {
  const client = adminClient(f.admin, f.token);
  const body = { by: operatorName(f.by), ...(f.note !== undefined && { note: f.note }) };
  return refusalIsExit1(stderr, async () => {
    const r = await client.post('/evals/baseline', body, true);
    for (const w of r.warnings ?? []) stderr.write(`warden: warning: ${w}\n`);
    if (f.json) {
      stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return 0;
    }
    const rows: Row[] = (r.capabilities ?? []).map((c: { name: string; metric: Metric; value: number; interval: [number, number]; cases: { trials: number }[] }) => ({
      name: c.name, metric: c.metric, value: c.value, interval: c.interval,
      trials: c.cases.reduce((n, k) => n + k.trials, 0), mde: r.mde?.[c.name],
    }));
    const model = r.model ?? {};
    stdout.write([
      `baseline ${r.baseline} certified by the sidecar at ${client.origin}`,
      `model ${model.asked ?? '?'}${model.pin ? ` pinned to ${model.pin}` : ''}  served ${served({ model: model.served, systemFingerprint: model.systemFingerprint })}`,
      '',
      ...capabilityTable(rows),
      '',
      'MDE: the smallest change in a capability a drift decision against this baseline can detect (80% power)',
      'it is now the sidecar\'s active baseline',
    ].join('\n') + '\n');
    return 0;
  });
}
