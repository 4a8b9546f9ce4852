// Reading an ECS service and its task definition through the SDK, with AWS failures turned into
// ConfigErrors that name the cluster, service or credential problem (exit 2).
import { DescribeServicesCommand, DescribeTaskDefinitionCommand, ECSClient, type ECSClientConfig } from '@aws-sdk/client-ecs';
import { ConfigError } from '../../proxy/errors.ts';
import { registrable, type Json } from './task-definition.ts';

/** Where a service stands: its description, its task definition's ARN and registrable JSON. */
export interface ServiceState {
  service: Json;
  taskDefinitionArn: string;
  definition: Json;
}

/** An ECS client from the SDK's usual chain (credentials, AWS_REGION, AWS_ENDPOINT_URL_ECS), plus overrides. */
export function ecsClient(config: ECSClientConfig = {}): ECSClient {
  return new ECSClient({ maxAttempts: 3, ...config });
}

/** Runs one SDK call; a failure becomes a ConfigError saying what was being done. */
export async function aws<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const e = err as Error & { name?: string };
    throw new ConfigError(`${what} failed: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message} (check the AWS credentials, AWS_REGION and AWS_ENDPOINT_URL_ECS)`, { cause: err });
  }
}

/** Describes the service and its current task definition (with tags). */
export async function readService(ecs: ECSClient, cluster: string, serviceName: string): Promise<ServiceState> {
  const described = await aws(`DescribeServices ${serviceName} in ${cluster}`, () => ecs.send(new DescribeServicesCommand({ cluster, services: [serviceName] })));
  const service = described.services?.find((s) => s.serviceName === serviceName || s.serviceArn === serviceName);
  if (!service) {
    const reason = described.failures?.[0]?.reason ?? 'MISSING';
    throw new ConfigError(`service "${serviceName}" not found in cluster "${cluster}" (${reason})`);
  }
  if (!service.taskDefinition) throw new ConfigError(`service "${serviceName}" has no task definition (it may use task sets; Warden injects into a service's task definition)`);
  const arn = service.taskDefinition;
  const td = await aws(`DescribeTaskDefinition ${arn}`, () => ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: arn, include: ['TAGS'] })));
  if (!td.taskDefinition) throw new ConfigError(`task definition ${arn} was not returned`);
  return { service: service as Json, taskDefinitionArn: arn, definition: registrable(td.taskDefinition as Json, td.tags as Json[] | undefined) };
}
