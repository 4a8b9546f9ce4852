// `warden eval <sub>`: behavioural pacts from the command line. This file holds the dispatcher, the
// flags every subcommand that talks to a target shares (--target, --header, --api-key, …) and `run`;
// other subcommands (baseline, status, …) live in their own files, export an EvalSubcommand, and are
// registered in SUBCOMMANDS below. Exit codes: 0 every capability met its threshold, 1 one missed it,
// 2 usage errors, bad pacts (file:line:col problems on stderr), or a target no trial could use.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadPactFile } from '../../evals/pact.ts';
import { formatInterval, formatRun, intervalName, percent, progressBar } from '../../evals/report.ts';
import { runPact, type RunOptions } from '../../evals/runner.ts';
import type { Pact, RunResult } from '../../evals/types.ts';
import { PolicyError, UsageError } from '../errors.ts';
import { evalAcceptCommand, evalRemediateCommand, evalRollbackCommand } from './eval-action-command.ts';
import { evalBaselineCommand } from './eval-baseline-command.ts';
import { evalStatusCommand } from './eval-status-command.ts';

/** An output stream; isTTY decides colour and the progress bar. */
export type Out = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean };

/** One `warden eval` subcommand: its arguments after the subcommand's name, and the streams. */
export type EvalSubcommand = (args: string[], stdout: Out, stderr: Out) => Promise<number>;

const SUBCOMMANDS: Record<string, EvalSubcommand> = {
  run: evalRunCommand,
  baseline: evalBaselineCommand,
  status: evalStatusCommand,
  accept: evalAcceptCommand,
  rollback: evalRollbackCommand,
  remediate: evalRemediateCommand,
};

/** Runs `warden eval <sub>` and returns the exit code. */
export async function evalCommand(argv: string[], stdout: Out, stderr: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const command = SUBCOMMANDS[sub ?? ''];
  if (!command) throw new UsageError(`unknown eval subcommand "${sub ?? ''}" (expected: ${Object.keys(SUBCOMMANDS).join(', ')})`);
  try {
    return await command(rest, stdout, stderr);
  } catch (err) {
    // main.ts words a PolicyError for policies; a pact's problems deserve their own last line.
    if (!(err instanceof PolicyError)) throw err;
    stderr.write(`${err.problems.join('\n')}\nwarden: the pact is invalid; nothing was run\n`);
    return 2;
  }
}

/** The flags of every subcommand that sends a pact's cases to a target. */
export const TARGET_FLAGS = {
  pact: { type: 'string' },
  target: { type: 'string' },
  header: { type: 'string', multiple: true },
  'api-key': { type: 'string' },
  concurrency: { type: 'string' },
  capability: { type: 'string', multiple: true },
  model: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** Parses a subcommand's flags (positionals refused), turning parseArgs errors into usage errors. */
export function parseEvalFlags<O extends NonNullable<ParseArgsConfig['options']>>(sub: string, args: string[], options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`eval ${sub}: ${(err as Error).message}`);
  }
  if (parsed.positionals.length > 0) throw new UsageError(`eval ${sub} takes flags only (got "${parsed.positionals[0]}"; the pact goes in --pact FILE)`);
  return parsed.values;
}

/** A positive whole number flag, at most `max`. */
export function positiveInt(name: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text) || Number(text) > max) throw new UsageError(`--${name} must be a whole number from 1 to ${max} (got "${text}")`);
  return Number(text);
}

function parseHeaders(lines: readonly string[] = []): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim();
    if (colon < 1 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new UsageError(`--header must be "Name: value" (got "${line}")`);
    headers[name.toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** The API key sent to the target: --api-key, else WARDEN_EVAL_API_KEY, else the pact's API's usual variable. */
export function evalApiKey(flag: string | undefined, api: Pact['api'], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) {
    if (!flag.trim()) throw new UsageError('--api-key is empty');
    return flag.trim();
  }
  const fromEnv = env.WARDEN_EVAL_API_KEY ?? (api === 'anthropic' ? env.ANTHROPIC_API_KEY : env.OPENAI_API_KEY);
  // None is fine: a Warden sidecar as the target adds the upstream's key itself.
  return fromEnv?.trim() || undefined;
}

type TargetFlagValues = { [K in keyof typeof TARGET_FLAGS]?: (typeof TARGET_FLAGS)[K] extends { multiple: true } ? string[] : (typeof TARGET_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** Loads --pact and turns the shared flags into run options (everything but trials and progress). */
export async function targetRunOptions(sub: string, f: TargetFlagValues): Promise<{ pact: Pact; options: RunOptions }> {
  if (!f.pact) throw new UsageError(`eval ${sub} needs --pact FILE`);
  if (!f.target) throw new UsageError(`eval ${sub} needs --target URL (an OpenAI base URL such as http://127.0.0.1:15100/v1, or an Anthropic one such as http://127.0.0.1:15100/anthropic)`);
  let url: URL;
  try {
    url = new URL(f.target);
  } catch {
    throw new UsageError(`--target must be an http(s) URL (got "${f.target}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--target must be an http(s) URL (got "${f.target}")`);
  const concurrency = positiveInt('concurrency', f.concurrency, 64);
  const headers = parseHeaders(f.header);
  const pact = await loadPactFile(f.pact);
  const names = pact.capabilities.map((c) => c.name);
  const unknown = (f.capability ?? []).filter((c) => !names.includes(c));
  if (unknown.length > 0) throw new UsageError(`--capability ${unknown[0]}: the pact has no such capability (it has ${names.join(', ')})`);
  if (f.model !== undefined && !f.model.trim()) throw new UsageError('--model is empty');
  return {
    pact,
    options: {
      target: f.target,
      headers,
      apiKey: evalApiKey(f['api-key'], pact.api),
      ...(concurrency !== undefined && { concurrency }),
      ...(f.capability && { capabilities: f.capability }),
      ...(f.model !== undefined && { model: f.model.trim() }),
    },
  };
}

/**
 * Why no trial could be judged, when none could: the target was never reached, or refused every
 * call for want of credentials. A setup problem (exit 2), not the agent's behaviour (exit 1).
 */
export function unusableTarget(result: RunResult): string | undefined {
  const trials = result.capabilities.flatMap((c) => c.cases.flatMap((k) => k.trials));
  if (trials.length === 0) return undefined;
  if (trials.every((t) => t.observation.status === 0)) return `no trial reached the target ${result.target}: ${trials[0].observation.error}`;
  if (trials.every((t) => t.observation.status === 401 || t.observation.status === 403)) {
    return `the target refused every call (${trials[0].observation.error}); set --api-key or WARDEN_EVAL_API_KEY, or point --target at a Warden sidecar`;
  }
  return undefined;
}

type Progressed<T> = (signal: AbortSignal, onProgress: (done: number, total: number) => void) => Promise<T>;

/** Runs trials with a progress bar on a TTY stderr; Ctrl-C cancels them and yields 'interrupted'. */
export async function withProgress<T>(stderr: Out, work: Progressed<T>): Promise<T | 'interrupted'> {
  const bar = progressBar(stderr);
  const controller = new AbortController();
  const interrupted = new Error('interrupted');
  const onSigint = () => controller.abort(interrupted);
  process.once('SIGINT', onSigint);
  try {
    return await work(controller.signal, (done, total) => bar.update(done, total));
  } catch (err) {
    if (err === interrupted) return 'interrupted';
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    bar.done();
  }
}

/** Runs a pact with a progress bar on a TTY stderr, cancelled by Ctrl-C. */
export function runWithProgress(pact: Pact, options: RunOptions, stderr: Out): Promise<RunResult | 'interrupted'> {
  return withProgress(stderr, (signal, onProgress) => runPact(pact, { ...options, signal, onProgress }));
}

/** `warden eval run`: runs the pact once and reports each capability against its threshold. */
export async function evalRunCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const f = parseEvalFlags('run', args, { ...TARGET_FLAGS, trials: { type: 'string' } });
  const trials = positiveInt('trials', f.trials, 1000);
  const { pact, options } = await targetRunOptions('run', f);
  const result = await runWithProgress(pact, { ...options, ...(trials !== undefined && { trials }) }, stderr);
  if (result === 'interrupted') {
    stderr.write('warden: interrupted; no result\n');
    return 130;
  }
  if (f.json) stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else stdout.write(formatRun(result, { color: stdout.isTTY === true }));
  const unusable = unusableTarget(result);
  if (unusable) {
    stderr.write(`warden: ${unusable}\n`);
    return 2;
  }
  const missed = result.capabilities.filter((c) => !c.passed);
  const lines = missed.map((c) => `warden: ${c.name} missed its threshold: ${c.metric} ${percent(c.value)} < ${percent(c.threshold)} (${intervalName(c)} interval ${formatInterval(c.interval)})`);
  // With --json, stdout holds the JSON alone.
  if (lines.length > 0) (f.json ? stderr : stdout).write(`${lines.join('\n')}\n`);
  return missed.length === 0 ? 0 : 1;
}
