// `warden deploy inject`: the service's task definition with the sidecar added, validated, then
// registered and rolled out. Re-injecting undoes the earlier edits first, so it never duplicates;
// when the result equals what the service already runs, nothing is registered.
import type { ECSClient } from '@aws-sdk/client-ecs';
import { sameDefinition, unifiedDiff } from './diff.ts';
import { rollOut } from './rollout.ts';
import { readService } from './service.ts';
import { injectWarden, removeWarden, sidecarImage, type WardenOptions } from './task-definition.ts';
import { injectedProblems, originalProblems } from './validate.ts';

export type Out = Pick<NodeJS.WriteStream, 'write'>;

export interface InjectRequest {
  cluster: string;
  service: string;
  /** Without an image, the sidecar already injected keeps its own (a re-inject that changes settings). */
  warden: Omit<WardenOptions, 'image'> & { image?: string };
  dryRun: boolean;
}

/** Injects the sidecar into a service; returns the exit code (1: the task definition was refused, 2: no image). */
export async function injectService(ecs: ECSClient, req: InjectRequest, stdout: Out, stderr: Out): Promise<number> {
  const state = await readService(ecs, req.cluster, req.service);
  const image = req.warden.image ?? sidecarImage(state.definition);
  if (!image) {
    stderr.write(`warden: ${state.taskDefinitionArn} has no Warden sidecar yet, so there is no image to keep; pass --image IMAGE@sha256:DIGEST\n`);
    return 2;
  }
  const warden = { ...req.warden, image };
  const problems = originalProblems(removeWarden(state.definition), warden.agentContainers);
  const desired = injectWarden(state.definition, warden, state.taskDefinitionArn);
  if (problems.length === 0) problems.push(...injectedProblems(desired));
  if (problems.length > 0) {
    for (const p of problems) stderr.write(`warden: ${state.taskDefinitionArn}: ${p}\n`);
    stderr.write('warden: the task definition was refused; nothing was registered\n');
    return 1;
  }
  if (sameDefinition(desired, state.definition)) {
    stdout.write(`${req.service} already runs ${state.taskDefinitionArn} with this Warden sidecar; nothing to register\n`);
    return 0;
  }
  if (req.dryRun) {
    stdout.write(unifiedDiff(state.definition, desired, state.taskDefinitionArn, `${desired.family} (new revision)`));
    stdout.write('dry run: nothing was registered\n');
    return 0;
  }
  const arn = await rollOut(ecs, req.cluster, req.service, desired);
  stdout.write(`registered ${arn} (Warden sidecar ${image}; was ${state.taskDefinitionArn})\n`);
  stdout.write(`updated service ${req.service} in ${req.cluster}; follow the rollout with: warden deploy status --cluster ${req.cluster} --service ${req.service}\n`);
  return 0;
}
