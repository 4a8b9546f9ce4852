// Registering a task definition and moving the service onto it: the one place Warden writes to ECS.
import { RegisterTaskDefinitionCommand, UpdateServiceCommand, type ECSClient, type RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import { aws } from './service.ts';
import type { Json } from './task-definition.ts';

/** Registers `definition` as a new revision and points the service at it; returns the new ARN. */
export async function rollOut(ecs: ECSClient, cluster: string, service: string, definition: Json): Promise<string> {
  const registered = await aws(`RegisterTaskDefinition ${definition.family}`, () => ecs.send(new RegisterTaskDefinitionCommand(definition as RegisterTaskDefinitionCommandInput)));
  const arn = registered.taskDefinition?.taskDefinitionArn;
  if (!arn) throw new Error('RegisterTaskDefinition returned no taskDefinitionArn');
  await aws(`UpdateService ${service} in ${cluster}`, () => ecs.send(new UpdateServiceCommand({ cluster, service, taskDefinition: arn })));
  return arn;
}
