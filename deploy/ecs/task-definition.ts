// The task-definition edits behind `warden deploy inject|remove`, as pure functions over the JSON
// RegisterTaskDefinition takes. Every edit Warden makes to an agent container is recorded, with the
// original values, in a docker label on that container, so remove restores exactly what was there.

/** A task definition (or a container definition) as plain JSON: the SDK's shapes, loosely typed. */
export type Json = Record<string, any>;

export const WARDEN_CONTAINER = 'warden';
export const WARDEN_VOLUME = 'warden-data';
export const WARDEN_DATA_PATH = '/var/lib/warden';
export const TRAFFIC_PORT = 15100;
export const ADMIN_PORT = 15101;
/** The tag on an injected task definition naming the revision it was made from. */
export const PREVIOUS_REVISION_TAG = 'warden:previous-revision';
/** The docker label on an agent container holding its values from before Warden edited it. */
export const ORIGINAL_LABEL = 'warden.original';

// Fields DescribeTaskDefinition returns that RegisterTaskDefinition refuses or sets itself.
const READ_ONLY = ['taskDefinitionArn', 'revision', 'status', 'requiresAttributes', 'compatibilities', 'registeredAt', 'registeredBy', 'deregisteredAt'];

// The sidecar's /readyz probe without curl: the image has node and nothing else.
const READY_PROBE = "fetch('http://127.0.0.1:15101/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))";

/** What the Warden container is made of; the CLI fills it from flags. */
export interface WardenOptions {
  /** The sidecar image, normally pinned by digest (IMAGE@sha256:…). */
  image: string;
  /** A policy's text, passed as WARDEN_POLICY_INLINE; absent: the image's policy (WARDEN_POLICY). */
  policyInline?: string;
  /** A policy path inside the image, passed as WARDEN_POLICY. */
  policyPath?: string;
  collectorUrl?: string;
  /** A Secrets Manager or SSM ARN holding the collector token (WARDEN_COLLECTOR_TOKEN). */
  collectorTokenSecret?: string;
  /** The sidecar's soft memory limit. */
  memoryReservationMiB: number;
  /** Seconds ECS waits after SIGTERM before SIGKILL; the sidecar drains inside it. */
  stopTimeoutS: number;
  /** Containers to route through Warden; absent: every container except FireLens log routers. */
  agentContainers?: string[];
  /** The agent's id and release, outranking the policy's (WARDEN_AGENT_ID, WARDEN_AGENT_VERSION). */
  agentId?: string;
  agentVersion?: string;
}

export const DEFAULT_MEMORY_RESERVATION_MIB = 256;
// The sidecar's shutdown grace is 25 s (WARDEN_SHUTDOWN_GRACE_MS); ECS must wait a little longer.
export const DEFAULT_STOP_TIMEOUT_S = 30;

/** The registrable part of a described task definition, with its tags (DescribeTaskDefinition include TAGS). */
export function registrable(taskDefinition: Json, tags: Json[] | undefined): Json {
  const out: Json = structuredClone(taskDefinition);
  for (const key of READ_ONLY) delete out[key];
  if (tags && tags.length > 0) out.tags = structuredClone(tags);
  return out;
}

/** Whether a registrable definition already carries Warden's edits. */
export function isInjected(def: Json): boolean {
  return (def.containerDefinitions ?? []).some((c: Json) => c.name === WARDEN_CONTAINER && c.dockerLabels?.['warden.managed'] === 'true')
    || (def.containerDefinitions ?? []).some((c: Json) => c.dockerLabels?.[ORIGINAL_LABEL] !== undefined);
}

/** The containers Warden routes: the named ones, or every one but the sidecar and FireLens log routers. */
export function agentContainerNames(def: Json, named?: string[]): string[] {
  const containers: Json[] = def.containerDefinitions ?? [];
  if (named && named.length > 0) return named;
  return containers.filter((c) => c.name !== WARDEN_CONTAINER && !c.firelensConfiguration).map((c) => c.name);
}

/** Undoes Warden's edits: the sidecar, its volume, the tag and every recorded agent-container change. */
export function removeWarden(def: Json): Json {
  const out: Json = structuredClone(def);
  out.containerDefinitions = (out.containerDefinitions ?? [])
    .filter((c: Json) => !(c.name === WARDEN_CONTAINER && c.dockerLabels?.['warden.managed'] === 'true'))
    .map(restoreContainer);
  if (Array.isArray(out.volumes)) out.volumes = out.volumes.filter((v: Json) => v.name !== WARDEN_VOLUME);
  if (Array.isArray(out.tags)) {
    out.tags = out.tags.filter((t: Json) => t.key !== PREVIOUS_REVISION_TAG);
    if (out.tags.length === 0) delete out.tags;
  }
  return out;
}

function restoreContainer(container: Json): Json {
  const recorded = container.dockerLabels?.[ORIGINAL_LABEL];
  if (recorded === undefined) return container;
  const original = JSON.parse(recorded) as Json;
  const out: Json = { ...container };
  for (const key of ['environment', 'dependsOn', 'stopTimeout']) {
    if (original[key] === null || original[key] === undefined) delete out[key];
    else out[key] = original[key];
  }
  const labels = { ...out.dockerLabels };
  delete labels[ORIGINAL_LABEL];
  if (Object.keys(labels).length === 0 && original.hadDockerLabels === false) delete out.dockerLabels;
  else out.dockerLabels = labels;
  return out;
}

/**
 * Adds Warden to a definition that has none of its edits (run removeWarden first to re-inject):
 * the sidecar container and volume, and on each agent container the base-URL overrides, a
 * dependsOn warden HEALTHY and a stopTimeout long enough for the sidecar to drain.
 */
export function addWarden(def: Json, opts: WardenOptions, previousRevisionArn: string | undefined): Json {
  const out: Json = structuredClone(def);
  const agents = new Set(agentContainerNames(out, opts.agentContainers));
  const containers: Json[] = out.containerDefinitions ?? [];
  const first = containers.find((c) => agents.has(c.name));
  out.containerDefinitions = containers.map((c) => (agents.has(c.name) ? routeThroughWarden(c, opts) : c));
  out.containerDefinitions.push(wardenContainer(opts, first));
  out.volumes = [...(out.volumes ?? []), { name: WARDEN_VOLUME }];
  if (previousRevisionArn) out.tags = [...(out.tags ?? []), { key: PREVIOUS_REVISION_TAG, value: previousRevisionArn }];
  return out;
}

function routeThroughWarden(container: Json, opts: WardenOptions): Json {
  const original = {
    environment: container.environment ?? null,
    dependsOn: container.dependsOn ?? null,
    stopTimeout: container.stopTimeout ?? null,
    hadDockerLabels: container.dockerLabels !== undefined,
  };
  const overrides: Record<string, string> = {
    OPENAI_BASE_URL: `http://127.0.0.1:${TRAFFIC_PORT}/v1`,
    ANTHROPIC_BASE_URL: `http://127.0.0.1:${TRAFFIC_PORT}/anthropic`,
  };
  const environment = (container.environment ?? []).filter((e: Json) => !(e.name in overrides));
  for (const [name, value] of Object.entries(overrides)) environment.push({ name, value });
  const dependsOn = (container.dependsOn ?? []).filter((d: Json) => d.containerName !== WARDEN_CONTAINER);
  dependsOn.push({ containerName: WARDEN_CONTAINER, condition: 'HEALTHY' });
  return {
    ...container,
    environment,
    dependsOn,
    // The agent stops first (it depends on the sidecar); its in-flight calls need the sidecar's time.
    stopTimeout: Math.max(container.stopTimeout ?? 0, opts.stopTimeoutS),
    dockerLabels: { ...container.dockerLabels, [ORIGINAL_LABEL]: JSON.stringify(original) },
  };
}

/** The sidecar's container definition, beside `agent` (the first routed container). */
export function wardenContainer(opts: WardenOptions, agent: Json | undefined): Json {
  const environment: Json[] = [
    { name: 'WARDEN_DATA_DIR', value: WARDEN_DATA_PATH },
    { name: 'WARDEN_SHUTDOWN_GRACE_MS', value: String(Math.max(1, opts.stopTimeoutS - 5) * 1000) },
  ];
  // The container whose image and digest the task metadata endpoint reports as the agent's identity.
  if (agent?.name) environment.push({ name: 'WARDEN_AGENT_CONTAINER', value: agent.name });
  if (opts.agentId) environment.push({ name: 'WARDEN_AGENT_ID', value: opts.agentId });
  if (opts.agentVersion) environment.push({ name: 'WARDEN_AGENT_VERSION', value: opts.agentVersion });
  if (opts.collectorUrl) environment.push({ name: 'WARDEN_COLLECTOR_URL', value: opts.collectorUrl });
  if (opts.policyPath) environment.push({ name: 'WARDEN_POLICY', value: opts.policyPath });
  if (opts.policyInline !== undefined) environment.push({ name: 'WARDEN_POLICY_INLINE', value: opts.policyInline });
  const container: Json = {
    name: WARDEN_CONTAINER,
    image: opts.image,
    essential: true,
    memoryReservation: opts.memoryReservationMiB,
    portMappings: [{ containerPort: ADMIN_PORT, protocol: 'tcp', name: 'warden-admin' }],
    environment,
    mountPoints: [{ sourceVolume: WARDEN_VOLUME, containerPath: WARDEN_DATA_PATH, readOnly: false }],
    healthCheck: { command: ['CMD', 'node', '-e', READY_PROBE], interval: 10, timeout: 3, retries: 3, startPeriod: 10 },
    stopTimeout: opts.stopTimeoutS,
    dockerLabels: { 'warden.managed': 'true' },
  };
  if (opts.collectorTokenSecret) container.secrets = [{ name: 'WARDEN_COLLECTOR_TOKEN', valueFrom: opts.collectorTokenSecret }];
  const logs = sidecarLogs(agent?.logConfiguration);
  if (logs) container.logConfiguration = logs;
  return container;
}

// The agent's log settings, with the sidecar's own awslogs stream prefix.
function sidecarLogs(agentLogs: Json | undefined): Json | undefined {
  if (!agentLogs) return undefined;
  const logs = structuredClone(agentLogs);
  if (logs.logDriver === 'awslogs') logs.options = { ...logs.options, 'awslogs-stream-prefix': WARDEN_CONTAINER };
  return logs;
}

/** The image of the sidecar Warden put in this definition earlier, if any. */
export function sidecarImage(def: Json): string | undefined {
  return (def.containerDefinitions ?? []).find((c: Json) => c.name === WARDEN_CONTAINER && c.dockerLabels?.['warden.managed'] === 'true')?.image;
}

/** Inject from any starting point: undo earlier edits, then add them afresh, keeping the first pre-Warden revision's ARN. */
export function injectWarden(def: Json, opts: WardenOptions, currentArn: string | undefined): Json {
  const previous = def.tags?.find((t: Json) => t.key === PREVIOUS_REVISION_TAG)?.value ?? currentArn;
  return addWarden(removeWarden(def), opts, previous);
}
