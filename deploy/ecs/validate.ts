// The checks a task definition must pass before Warden registers anything: every problem at once,
// each naming the container or field and what to do about it.
import { ADMIN_PORT, agentContainerNames, TRAFFIC_PORT, WARDEN_CONTAINER, WARDEN_VOLUME, type Json } from './task-definition.ts';

// Fargate's valid task sizes: CPU units → the memory values (MiB) that go with them.
const FARGATE_SIZES: Record<number, number[]> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};
// Fargate's ceiling on a container's stopTimeout, in seconds.
const FARGATE_MAX_STOP_TIMEOUT_S = 120;

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** Problems with the definition as it is, before Warden's edits (the original, with any earlier edits removed). */
export function originalProblems(def: Json, agentNames: string[] | undefined): string[] {
  const problems: string[] = [];
  const mode = def.networkMode ?? 'bridge';
  if (mode !== 'awsvpc') {
    problems.push(`networkMode is "${mode}": Warden needs "awsvpc", where the agent and the sidecar share the task's localhost (bridge and host modes do not give the agent 127.0.0.1:${TRAFFIC_PORT})`);
  }
  const containers: Json[] = def.containerDefinitions ?? [];
  const names = new Set(containers.map((c) => c.name));
  const stray = containers.find((c) => c.name === WARDEN_CONTAINER);
  if (stray) problems.push(`a container is already named "${WARDEN_CONTAINER}" but Warden did not add it (no warden.managed label); rename it first`);
  if ((def.volumes ?? []).some((v: Json) => v.name === WARDEN_VOLUME)) problems.push(`a volume is already named "${WARDEN_VOLUME}"; rename it first`);
  for (const name of agentNames ?? []) if (!names.has(name)) problems.push(`--agent-container ${name}: the task definition has no such container (it has ${[...names].join(', ')})`);
  if (agentContainerNames(def, agentNames).length === 0) problems.push('no agent container to route through Warden (every container is a FireLens log router); name one with --agent-container');
  for (const c of containers) {
    for (const p of c.portMappings ?? []) {
      for (const port of [p.containerPort, p.hostPort]) {
        if (port === TRAFFIC_PORT || port === ADMIN_PORT) {
          problems.push(`container "${c.name}" maps port ${port}, which the sidecar listens on (${TRAFFIC_PORT} traffic, ${ADMIN_PORT} admin); in awsvpc mode all containers share these ports`);
        }
      }
    }
  }
  return problems;
}

/** Problems with the definition after Warden's edits: sizes, roles and limits the additions may break. */
export function injectedProblems(def: Json): string[] {
  const problems: string[] = [];
  const containers: Json[] = def.containerDefinitions ?? [];
  const fargate = (def.requiresCompatibilities ?? []).includes('FARGATE');
  const usesSecrets = containers.some((c) => (c.secrets ?? []).length > 0 || c.repositoryCredentials);
  if (usesSecrets && !def.executionRoleArn) {
    problems.push('a container uses secrets (or private registry credentials) but the task definition has no executionRoleArn, which ECS needs to fetch them');
  }
  if (fargate) {
    problems.push(...fargateSizeProblems(def));
    for (const c of containers) {
      if ((c.stopTimeout ?? 0) > FARGATE_MAX_STOP_TIMEOUT_S) problems.push(`container "${c.name}": stopTimeout ${c.stopTimeout} s is above Fargate's ${FARGATE_MAX_STOP_TIMEOUT_S} s`);
    }
  }
  return problems;
}

function fargateSizeProblems(def: Json): string[] {
  const cpu = Number(def.cpu);
  const memory = Number(def.memory);
  if (def.cpu === undefined || def.memory === undefined || !Number.isFinite(cpu) || !Number.isFinite(memory)) {
    return ['a FARGATE task definition needs task-level cpu and memory'];
  }
  const allowed = FARGATE_SIZES[cpu];
  if (!allowed) return [`cpu ${def.cpu} is not a Fargate size (one of ${Object.keys(FARGATE_SIZES).join(', ')})`];
  const problems: string[] = [];
  if (!allowed.includes(memory)) problems.push(`cpu ${cpu} with memory ${memory} MiB is not a Fargate combination (with cpu ${cpu}: ${allowed[0]}–${allowed.at(-1)} MiB in the listed steps)`);
  const containers: Json[] = def.containerDefinitions ?? [];
  // A container's reservation is its memoryReservation, else its hard memory limit.
  const reserved = containers.reduce((sum, c) => sum + (c.memoryReservation ?? c.memory ?? 0), 0);
  if (reserved > memory) {
    const fits = Object.entries(FARGATE_SIZES).flatMap(([c, ms]) => ms.map((m) => [Number(c), m] as const)).find(([c, m]) => c >= cpu && m >= reserved);
    const hint = fits ? `; the smallest size that fits is cpu ${fits[0]} / memory ${fits[1]}` : '';
    problems.push(`the containers reserve ${reserved} MiB with the sidecar, more than the task's ${memory} MiB${hint}`);
  }
  const cpuUsed = containers.reduce((sum, c) => sum + (c.cpu ?? 0), 0);
  if (cpuUsed > cpu) problems.push(`the containers reserve ${cpuUsed} CPU units, more than the task's ${cpu}`);
  return problems;
}
