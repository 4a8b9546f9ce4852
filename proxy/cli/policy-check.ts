// `warden policy check FILE...`: lints policies without starting anything. Problems go to stderr as
// `file:line:col: message` (the format editors and CI annotators read); exit 0 clean, 1 problems.
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
    const result = await checkPolicyFile(file);
    for (const line of result.problems) stderr.write(`${line}\n`);
    for (const line of result.notes) stderr.write(`${line}\n`);
    if (result.problems.length > 0) failed++;
    else stdout.write(`${file}: ok (agent ${result.policy!.agent.id} ${result.policy!.agent.version}, sha256 ${result.policy!.source.sha256.slice(0, 12)})\n`);
  }
  return failed > 0 ? 1 : 0;
}
