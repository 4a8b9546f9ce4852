// `warden deploy status`: the service's deployments and tasks, and each task's Warden sidecar health.
import { DescribeTasksCommand, ListTasksCommand, type ECSClient } from '@aws-sdk/client-ecs';
import type { Out } from './inject.ts';
import { aws, readService } from './service.ts';
import { isInjected, PREVIOUS_REVISION_TAG, WARDEN_CONTAINER, type Json } from './task-definition.ts';

export interface StatusRequest {
  cluster: string;
  service: string;
}

/** Prints where the service stands; returns the exit code: 1 when a task's sidecar is UNHEALTHY. */
export async function serviceStatus(ecs: ECSClient, req: StatusRequest, stdout: Out): Promise<number> {
  const { service, taskDefinitionArn, definition } = await readService(ecs, req.cluster, req.service);
  const lines: string[] = [];
  lines.push(`service ${req.service} in ${req.cluster}: ${service.status ?? '?'}, ${service.desiredCount ?? 0} desired, ${service.runningCount ?? 0} running, ${service.pendingCount ?? 0} pending`);
  const previous = definition.tags?.find((t: Json) => t.key === PREVIOUS_REVISION_TAG)?.value;
  lines.push(`task definition ${taskDefinitionArn}: ${isInjected(definition) ? `Warden injected${previous ? ` (from ${previous})` : ''}` : 'no Warden sidecar'}`);
  lines.push('', 'deployments:');
  lines.push(...table(['STATUS', 'ROLLOUT', 'TASK DEFINITION', 'RUNNING', 'PENDING', 'DESIRED'], (service.deployments ?? []).map((d: Json) => [
    d.status, d.rolloutState ?? '-', revision(d.taskDefinition), d.runningCount ?? 0, d.pendingCount ?? 0, d.desiredCount ?? 0,
  ])));
  const listed = await aws(`ListTasks ${req.service}`, () => ecs.send(new ListTasksCommand({ cluster: req.cluster, serviceName: req.service })));
  const arns = listed.taskArns ?? [];
  // DescribeTasks takes at most 100 tasks per call.
  const tasks: Json[] = [];
  for (let i = 0; i < arns.length; i += 100) {
    const batch = arns.slice(i, i + 100);
    const described = await aws('DescribeTasks', () => ecs.send(new DescribeTasksCommand({ cluster: req.cluster, tasks: batch })));
    tasks.push(...(described.tasks ?? []) as Json[]);
  }
  lines.push('', 'tasks:');
  if (tasks.length === 0) lines.push('  (none)');
  else {
    lines.push(...table(['TASK', 'TASK DEFINITION', 'STATUS', 'HEALTH', 'WARDEN'], tasks.map((t) => {
      const warden = (t.containers ?? []).find((c: Json) => c.name === WARDEN_CONTAINER);
      return [
        String(t.taskArn ?? '').split('/').at(-1), revision(t.taskDefinitionArn), t.lastStatus ?? '?', t.healthStatus ?? 'UNKNOWN',
        warden ? `${warden.healthStatus ?? 'UNKNOWN'} (${warden.lastStatus ?? '?'})` : 'absent',
      ];
    })));
  }
  // A sidecar ECS reports UNHEALTHY fails the check (scripts can wait on it); UNKNOWN is a task still
  // starting, which a rollout passes through.
  const unhealthy = tasks.filter((t) => (t.containers ?? []).some((c: Json) => c.name === WARDEN_CONTAINER && c.healthStatus === 'UNHEALTHY'));
  if (unhealthy.length > 0) lines.push('', `${unhealthy.length} task(s) have an UNHEALTHY Warden sidecar: see its logs, and its /status on the admin port`);
  stdout.write(`${lines.join('\n')}\n`);
  return unhealthy.length > 0 ? 1 : 0;
}

function revision(arn: unknown): string {
  return String(arn ?? '-').split('/').at(-1) ?? '-';
}

function table(head: string[], rows: unknown[][]): string[] {
  const cells = rows.map((r) => r.map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  return [head, ...cells].map((c) => `  ${c.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()}`);
}
