// `warden policy check FILE...`: lints policies and pacts without starting anything. Problems go to
// stderr as `file:line:col: message` (the format editors and CI annotators read); exit 0 clean, 1 problems.
import { readFile } from 'node:fs/promises';
import { checkPactFile, isPactDocument } from '../../evals/pact.ts';
import type { Pact } from '../../evals/types.ts';
import { checkPolicyFile } from '../../policies/load.ts';
import { UsageError } from '../errors.ts';

type Out = Pick<NodeJS.WriteStream, 'write'>;

/** Checks every file, prints every problem and note, and returns the exit code. */
export async function policyCheckCommand(files: string[], stdout: Out, stderr: Out): Promise<number> {
  if (files.length === 0) throw new UsageError('policy check needs at least one FILE');
  const unknownFlag = files.find((f) => f.startsWith('-'));
  if (unknownFlag) throw new UsageError(`policy check: unknown option "${unknownFlag}"`);
  let failed = 0;
  for (const file of files) {
    // A pact is told apart by its kind; an unreadable file falls to the policy loader, which says why.
    const text = await readFile(file).catch(() => undefined);
    if (text !== undefined && isPactDocument(text)) {
      const pact = await checkPactFile(file);
      for (const line of pact.problems) stderr.write(`${line}\n`);
      if (!pact.pact) failed++;
      else stdout.write(`${file}: ok (${pactSummary(pact.pact)})\n`);
      continue;
    }
    const result = await checkPolicyFile(file);
    for (const line of result.problems) stderr.write(`${line}\n`);
    for (const line of result.notes) stderr.write(`${line}\n`);
    if (result.problems.length > 0) failed++;
    else stdout.write(`${file}: ok (agent ${result.policy!.agent.id} ${result.policy!.agent.version}, sha256 ${result.policy!.source.sha256.slice(0, 12)})\n`);
  }
  return failed > 0 ? 1 : 0;
}

function pactSummary(pact: Pact): string {
  const cases = pact.capabilities.reduce((n, c) => n + c.cases.length, 0);
  return `pact for agent ${pact.agent}, ${pact.capabilities.length} capabilities, ${cases} cases, sha256 ${pact.sha256.slice(0, 12)}`;
}
