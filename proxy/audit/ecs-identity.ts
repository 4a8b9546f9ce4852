// Who the agent is, as ECS knows it: when the sidecar runs in an ECS task (ECS_CONTAINER_METADATA_URI_V4
// is set), the task ARN, task-definition family and revision, and the agent container's image and
// image digest, read once at start from the task metadata endpoint and put in every record.
export interface EcsIdentity {
  task_arn: string;
  cluster?: string;
  family?: string;
  revision?: string;
  /** The agent container's name, image and digest (ImageID). */
  container?: string;
  image?: string;
  image_digest?: string;
}

interface ContainerMeta {
  Name?: string;
  Image?: string;
  ImageID?: string;
  Type?: string;
}

async function getJson(url: string, timeoutMs: number): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/**
 * The task's identity, or undefined outside ECS. The agent container is WARDEN_AGENT_CONTAINER, or
 * else the task's first ordinary container that is not this sidecar.
 */
export async function ecsIdentity(env: NodeJS.ProcessEnv = process.env, timeoutMs = 2_000): Promise<EcsIdentity | undefined> {
  const base = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!base) return undefined;
  const [self, task] = await Promise.all([getJson(base, timeoutMs) as Promise<ContainerMeta>, getJson(`${base}/task`, timeoutMs)]);
  const containers: ContainerMeta[] = Array.isArray(task.Containers) ? task.Containers : [];
  const agent = env.WARDEN_AGENT_CONTAINER
    ? containers.find((c) => c.Name === env.WARDEN_AGENT_CONTAINER)
    // NORMAL excludes the pause container and other ECS-internal ones.
    : containers.find((c) => c.Name !== self.Name && (c.Type ?? 'NORMAL') === 'NORMAL');
  return {
    task_arn: String(task.TaskARN),
    cluster: task.Cluster,
    family: task.Family,
    revision: task.Revision === undefined ? undefined : String(task.Revision),
    container: agent?.Name,
    image: agent?.Image,
    image_digest: agent?.ImageID || undefined,
  };
}
