// A fake Amazon ECS on 127.0.0.1 speaking the JSON 1.1 protocol the real SDK client uses (POST /,
// x-amz-target AmazonEC2ContainerServiceV20141113.<Operation>). It keeps task definitions, one
// service and its tasks, fills in the defaults real ECS adds to what it returns, and records calls.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, any>;
const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113.';
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

export interface FakeEcsSeed {
  cluster: string;
  service: string;
  /** The service's task definition as RegisterTaskDefinition input (tags included). */
  taskDefinition: Json;
  /** Its revision number (the ARN ends in family:revision). */
  revision?: number;
  /** Tasks DescribeTasks returns, built from the service's current definition when absent. */
  tasks?: (taskDefinitionArn: string) => Json[];
}

export interface FakeEcs {
  url: string;
  calls: Array<{ op: string; input: Json }>;
  /** The inputs of the calls named `op`, in order. */
  inputs(op: string): Json[];
  /** DescribeTaskDefinition's answer for an ARN: the definition and its tags. */
  described(arn: string): { taskDefinition: Json; tags: Json[] };
  service(): Json;
  close(): Promise<void>;
}

class EcsError extends Error {
  type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

/** Starts the fake with one cluster, one service and its task definition. */
export async function startFakeEcs(seed: FakeEcsSeed): Promise<FakeEcs> {
  const calls: FakeEcs['calls'] = [];
  const definitions = new Map<string, { taskDefinition: Json; tags: Json[] }>();
  const revisions = new Map<string, number>();
  const clusterArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${seed.cluster}`;
  const now = () => Math.floor(Date.now() / 1000);

  function register(input: Json): Json {
    const family = input.family;
    const revision = (revisions.get(family) ?? 0) + 1;
    revisions.set(family, revision);
    const arn = `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${family}:${revision}`;
    const { tags = [], ...rest } = structuredClone(input);
    const taskDefinition: Json = {
      ...rest,
      taskDefinitionArn: arn,
      revision,
      status: 'ACTIVE',
      volumes: (rest.volumes ?? []).map((v: Json) => ({ host: {}, ...v })),
      placementConstraints: rest.placementConstraints ?? [],
      containerDefinitions: rest.containerDefinitions.map(ecsDefaults),
      requiresAttributes: [{ name: 'com.amazonaws.ecs.capability.docker-remote-api.1.18' }, { name: 'ecs.capability.task-eni' }],
      compatibilities: ['EC2', 'FARGATE'],
      registeredAt: now(),
      registeredBy: `arn:aws:iam::${ACCOUNT}:role/deployer`,
    };
    definitions.set(arn, { taskDefinition, tags });
    return taskDefinition;
  }

  if (seed.revision) revisions.set(seed.taskDefinition.family, seed.revision - 1);
  const first = register(seed.taskDefinition);
  const service: Json = {
    serviceName: seed.service,
    serviceArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${seed.cluster}/${seed.service}`,
    clusterArn,
    status: 'ACTIVE',
    desiredCount: 2,
    runningCount: 2,
    pendingCount: 0,
    launchType: 'FARGATE',
    taskDefinition: first.taskDefinitionArn,
    deployments: [{ id: 'ecs-svc/1111', status: 'PRIMARY', taskDefinition: first.taskDefinitionArn, desiredCount: 2, runningCount: 2, pendingCount: 0, rolloutState: 'COMPLETED', createdAt: now() }],
  };

  const ops: Record<string, (input: Json) => Json> = {
    DescribeServices(input) {
      checkCluster(input.cluster);
      const found = (input.services ?? []).filter((s: string) => s === service.serviceName || s === service.serviceArn);
      const failures = (input.services ?? []).filter((s: string) => !found.includes(s)).map((s: string) => ({ arn: `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${seed.cluster}/${s}`, reason: 'MISSING' }));
      return { services: found.map(() => structuredClone(service)), failures };
    },
    DescribeTaskDefinition(input) {
      const arn = resolveDefinition(input.taskDefinition);
      const entry = definitions.get(arn)!;
      return { taskDefinition: structuredClone(entry.taskDefinition), ...(input.include?.includes('TAGS') ? { tags: structuredClone(entry.tags) } : {}) };
    },
    RegisterTaskDefinition(input) {
      if (!input.family || !Array.isArray(input.containerDefinitions)) throw new EcsError('ClientException', 'family and containerDefinitions are required');
      for (const key of ['taskDefinitionArn', 'revision', 'status', 'requiresAttributes', 'compatibilities', 'registeredAt', 'registeredBy']) {
        if (key in input) throw new EcsError('ClientException', `Unknown parameter ${key}`);
      }
      const names = input.containerDefinitions.map((c: Json) => c.name);
      if (new Set(names).size !== names.length) throw new EcsError('ClientException', 'Container names must be unique');
      const registered = register(input);
      return { taskDefinition: structuredClone(registered), tags: structuredClone(input.tags ?? []) };
    },
    UpdateService(input) {
      checkCluster(input.cluster);
      if (input.service !== service.serviceName) throw new EcsError('ServiceNotFoundException', 'Service not found.');
      const arn = resolveDefinition(input.taskDefinition);
      for (const d of service.deployments) if (d.status === 'PRIMARY') d.status = 'ACTIVE';
      service.deployments.unshift({ id: `ecs-svc/${2222 + service.deployments.length}`, status: 'PRIMARY', taskDefinition: arn, desiredCount: 2, runningCount: 0, pendingCount: 2, rolloutState: 'IN_PROGRESS', createdAt: now() });
      service.taskDefinition = arn;
      return { service: structuredClone(service) };
    },
    ListTasks(input) {
      checkCluster(input.cluster);
      return { taskArns: tasks().map((t) => t.taskArn) };
    },
    DescribeTasks(input) {
      checkCluster(input.cluster);
      return { tasks: tasks().filter((t) => input.tasks.includes(t.taskArn)), failures: [] };
    },
  };

  function tasks(): Json[] {
    return seed.tasks ? seed.tasks(service.taskDefinition) : [];
  }

  function checkCluster(cluster: string | undefined) {
    if (cluster !== seed.cluster && cluster !== clusterArn) throw new EcsError('ClusterNotFoundException', 'Cluster not found.');
  }

  function resolveDefinition(ref: string): string {
    if (definitions.has(ref)) return ref;
    const full = `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${ref}`;
    if (definitions.has(full)) return full;
    throw new EcsError('ClientException', 'Unable to describe task definition.');
  }

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const reply = (status: number, body: Json) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake-request' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX) || !String(req.headers['content-type']).startsWith('application/x-amz-json-1.1')) {
      return reply(400, { __type: 'UnknownOperationException', message: `not an ECS JSON 1.1 call: ${req.method} ${target}` });
    }
    if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) return reply(403, { __type: 'MissingAuthenticationTokenException', message: 'unsigned request' });
    const op = target.slice(TARGET_PREFIX.length);
    const handler = ops[op];
    if (!handler) return reply(400, { __type: 'UnknownOperationException', message: `fake ECS does not implement ${op}` });
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    calls.push({ op, input });
    try {
      reply(200, handler(input));
    } catch (err) {
      if (err instanceof EcsError) reply(400, { __type: err.type, message: err.message });
      else reply(500, { __type: 'ServerException', message: (err as Error).message });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    inputs: (op) => calls.filter((c) => c.op === op).map((c) => c.input),
    described: (arn) => structuredClone(definitions.get(arn)!),
    service: () => structuredClone(service),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// What real ECS fills into each container definition it returns.
function ecsDefaults(container: Json): Json {
  return {
    cpu: 0,
    environment: [],
    mountPoints: [],
    volumesFrom: [],
    systemControls: [],
    ...container,
    portMappings: (container.portMappings ?? []).map((p: Json) => ({ hostPort: p.containerPort, protocol: 'tcp', ...p })),
  };
}
