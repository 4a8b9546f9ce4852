// `warden eval status`: has the agent's behaviour drifted from its certified baseline? Locally it runs
// the sequential drift decision (evaluateDrift) of --target against a --baseline file, look after look
// until each capability is decided or the pact's looks run out. With --admin it prints what a running
// sidecar knows: its pact, baseline, last evaluation, open drift, pins and trust score. Exit codes:
// 1 confirmed drift on any capability (or a sidecar reporting open drift); 0 otherwise, inconclusive
// included (it is not evidence of drift); 2 usage, a bad pact or baseline, or a target no trial could use.
import { readFileSync } from 'node:fs';
import { unpairedCapabilities } from '../../evals/drift.ts';
import { driftVerdict, formatDriftRows, type DriftRow } from '../../evals/drift-report.ts';
import { evaluateDrift } from '../../evals/evaluate.ts';
import { pactPromptSha256 } from '../../evals/pact.ts';
import { formatInterval, percent } from '../../evals/report.ts';
import type { Baseline, DriftReport, Pact } from '../../evals/types.ts';
import type { RunOptions } from '../../evals/runner.ts';
import { summarizeDrift, summarizeRun } from '../evals/summaries.ts';
import { ConfigError, UsageError } from '../errors.ts';
import { adminClient } from './admin-client.ts';
import { ADMIN_FLAGS } from './eval-action-command.ts';
import { parseEvalFlags, TARGET_FLAGS, targetRunOptions, unusableTarget, withProgress, type Out } from './eval-command.ts';

type Json = Record<string, any>;

// A function, not a const: eval-command.ts (TARGET_FLAGS) imports this file, so its consts are not
// yet bound while this module's body runs.
function flagSpec() {
  return { ...TARGET_FLAGS, admin: ADMIN_FLAGS.admin, baseline: { type: 'string' } } as const;
}

/** Reads a baseline file `warden eval baseline` wrote, and checks it can judge this pact. */
function readBaseline(file: string, pact: Pact, stderr: Out): Baseline {
  let b: Baseline;
  try {
    b = JSON.parse(readFileSync(file, 'utf8')) as Baseline;
  } catch (err) {
    throw new ConfigError(`cannot read the baseline ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof b?.id !== 'string' || !Array.isArray(b.run?.capabilities)) throw new ConfigError(`${file} is not a baseline written by \`warden eval baseline\``);
  if (b.agent !== pact.agent) throw new ConfigError(`${file} is a baseline of agent "${b.agent}", but the pact is for "${pact.agent}"`);
  // Cases pair by id, so an edited pact can still be judged; the person reading should know it was edited.
  if (b.promptSha256 !== pactPromptSha256(pact)) {
    stderr.write(`warden: warning: the pact's prompts changed since baseline ${b.id} was certified: cases pair by id, so re-certify if their meaning changed\n`);
  } else if (b.pact?.sha256 !== pact.sha256) {
    stderr.write(`warden: warning: ${pact.file} changed since baseline ${b.id} was certified (its prompts did not)\n`);
  }
  const unpaired = unpairedCapabilities(pact, b);
  if (unpaired.length > 0) stderr.write(`warden: warning: the baseline has no trials for ${unpaired.join(', ')}: not judged; re-certify to include them\n`);
  return b;
}

/** evaluateDrift with a progress bar on a TTY stderr, cancelled by Ctrl-C. */
function evaluateWithProgress(pact: Pact, baseline: Baseline, options: RunOptions, stderr: Out): Promise<DriftReport | 'interrupted'> {
  // The decision sets trials, offsets and capabilities look by look; the rest is the target's.
  const { target, headers, apiKey, concurrency, model, judge } = options;
  return withProgress(stderr, (signal, onProgress) => evaluateDrift(pact, baseline, { target, headers, apiKey, concurrency, model, judge, signal, onProgress }));
}

function servedText(s: { model?: string; systemFingerprint?: string } | undefined): string {
  if (!s?.model) return 'unknown';
  return `${s.model}${s.systemFingerprint ? ` (fingerprint ${s.systemFingerprint})` : ''}`;
}

/** `warden eval status`: the drift decision of a target against a baseline file, or a sidecar's view (--admin). */
export async function evalStatusCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const f = parseEvalFlags('status', args, flagSpec());
  if (f.admin !== undefined) {
    const local = (['pact', 'target', 'baseline', 'header', 'api-key', 'concurrency', 'capability', 'model'] as const).find((k) => f[k] !== undefined);
    if (local) throw new UsageError(`eval status --admin shows what the sidecar knows; --${local} is for a local decision`);
    return sidecarStatus(f.admin, f.json === true, stdout);
  }
  if (f.capability) throw new UsageError('eval status decides every capability the baseline holds: drop --capability');
  if (!f.baseline) throw new UsageError('eval status needs --baseline FILE (written by `warden eval baseline`), or --admin URL to ask a running sidecar');
  const { pact, options } = await targetRunOptions('status', f);
  const baseline = readBaseline(f.baseline, pact, stderr);
  const report = await evaluateWithProgress(pact, baseline, options, stderr);
  if (report === 'interrupted') {
    stderr.write('warden: interrupted; no decision\n');
    return 130;
  }
  const unusable = unusableTarget(report.candidate);
  if (unusable) {
    stderr.write(`warden: ${unusable}\nwarden: no decision\n`);
    return 2;
  }
  const verdict = driftVerdict(report.capabilities);
  if (f.json) {
    stdout.write(`${JSON.stringify({ at: report.at, ...summarizeDrift(report), candidate: summarizeRun(report.candidate), verdict: verdict.line }, null, 2)}\n`);
  } else {
    stdout.write([
      `pact ${pact.file}  agent ${pact.agent}  target ${report.candidate.target}`,
      `baseline ${baseline.id} (certified ${baseline.certifiedAt} on ${servedText({ model: baseline.model.served, systemFingerprint: baseline.model.systemFingerprint })})  now served ${servedText(report.served)}`,
      `each capability's interval is drawn at the level its test was held to (family-wise α ${pact.alpha} over ${pact.looks} looks)`,
      '',
      ...formatDriftRows(report.capabilities, { color: stdout.isTTY === true }),
      '',
      verdict.line,
    ].join('\n') + '\n');
  }
  return verdict.state === 'drift' ? 1 : 0;
}

/** A sidecar's drift summary (GET /evals) as rows of the shared report. */
function summaryRows(summary: Json | undefined): DriftRow[] {
  return (summary?.capabilities ?? []).map((c: Json) => ({
    name: c.name, state: c.state, delta: c.delta, interval: c.interval, p: c.p, alphaUsed: c.alpha,
    baselineValue: c.baseline, candidateValue: c.candidate, n: c.n, looks: c.looks, regressions: c.regressions,
  }));
}

async function sidecarStatus(base: string, json: boolean, stdout: Out): Promise<number> {
  const client = adminClient(base, undefined);
  const v = await client.get('/evals');
  const open = v.openDrift !== undefined && v.openDrift !== null;
  if (json) {
    stdout.write(`${JSON.stringify(v, null, 2)}\n`);
    return open ? 1 : 0;
  }
  if (!v.enabled) {
    stdout.write(`the sidecar at ${client.origin} runs no pact (its policy has no evals section)\n`);
    return 0;
  }
  const lines = [`sidecar ${client.origin}`, `pact ${v.pact.file}  agent ${v.pact.agent}  model ${v.pact.model}  capabilities ${v.pact.capabilities.join(', ')}`];
  const b = v.baseline;
  if (!b) lines.push('baseline: none certified, so drift cannot be judged (warden eval baseline --admin URL)');
  else {
    lines.push(`baseline ${b.id} certified ${b.certifiedAt} on ${servedText({ model: b.model?.served, systemFingerprint: b.model?.systemFingerprint })}${b.model?.pin ? `, pin ${b.model.pin}` : ''}`);
    const caps = (b.capabilities ?? []) as Json[];
    const width = Math.max(0, ...caps.map((c) => c.name.length));
    for (const c of caps) {
      lines.push(`  ${c.name.padEnd(width)}  ${percent(c.value).padStart(6)} ${formatInterval(c.interval)}  MDE ${b.mde?.[c.name] === undefined ? '-' : percent(b.mde[c.name])}`);
    }
  }
  const last = v.last;
  if (!last) lines.push('last evaluation: none yet');
  else if (last.error) lines.push(`last evaluation ${last.at} (${last.reason}) failed: ${last.error}`);
  else lines.push(`last evaluation ${last.at} (${last.reason}): ${last.state ?? 'no baseline'}, served ${servedText(last.served)}${last.passed ? '' : ', below a threshold'}`);
  if (v.lastReport) lines.push('', ...formatDriftRows(summaryRows(v.lastReport), { color: stdout.isTTY === true, indent: '  ' }), '');
  if (open) {
    const moved = summaryRows(v.openDrift).filter((c) => c.state === 'drift').map((c) => `${c.name} ${percent(c.baselineValue)} → ${percent(c.candidateValue)}`);
    lines.push(`open drift: ${moved.join(', ')} (served ${servedText(v.openDrift.served)}): warden eval accept, rollback or remediate`);
  } else lines.push('open drift: none');
  const pins = (v.pins ?? []) as Json[];
  lines.push(pins.length === 0 ? 'pins: none' : `pins: ${pins.map((p) => `${p.alias} → ${p.snapshot} (${p.reason}, ${p.setAt})`).join('; ')}`);
  if (v.trust) {
    const parts = Object.entries(v.trust.components ?? {}).map(([k, x]) => `${k} ${(x as number).toFixed(2)}`);
    lines.push(`trust score ${v.trust.score.toFixed(2)}${parts.length ? ` (${parts.join(', ')})` : ''}`);
  }
  stdout.write(`${lines.join('\n')}\n`);
  return open ? 1 : 0;
}
