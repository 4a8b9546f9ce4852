// `warden deploy remove`: registers the service's task definition without Warden (the sidecar, its
// volume, the tag and every agent-container edit, restored from the recorded originals) and rolls
// the service onto it. A new revision rather than the recorded previous one keeps any change made
// to the injected definition since.
import type { ECSClient } from '@aws-sdk/client-ecs';
import { unifiedDiff } from './diff.ts';
import type { Out } from './inject.ts';
import { rollOut } from './rollout.ts';
import { readService } from './service.ts';
import { isInjected, PREVIOUS_REVISION_TAG, removeWarden, type Json } from './task-definition.ts';

export interface RemoveRequest {
  cluster: string;
  service: string;
  dryRun: boolean;
}

/** Takes the sidecar out of a service; returns the exit code. */
export async function removeService(ecs: ECSClient, req: RemoveRequest, stdout: Out): Promise<number> {
  const state = await readService(ecs, req.cluster, req.service);
  if (!isInjected(state.definition)) {
    stdout.write(`${req.service} runs ${state.taskDefinitionArn}, which has no Warden sidecar; nothing to remove\n`);
    return 0;
  }
  const previous = state.definition.tags?.find((t: Json) => t.key === PREVIOUS_REVISION_TAG)?.value;
  const restored = removeWarden(state.definition);
  if (req.dryRun) {
    stdout.write(unifiedDiff(state.definition, restored, state.taskDefinitionArn, `${restored.family} (new revision)`));
    stdout.write('dry run: nothing was registered\n');
    return 0;
  }
  const arn = await rollOut(ecs, req.cluster, req.service, restored);
  stdout.write(`registered ${arn} without Warden (restored from ${state.taskDefinitionArn}${previous ? `; it was injected into ${previous}` : ''})\n`);
  stdout.write(`updated service ${req.service} in ${req.cluster}\n`);
  return 0;
}
