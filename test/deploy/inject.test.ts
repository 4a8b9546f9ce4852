// `warden deploy inject|remove|status` against a fake ECS speaking the JSON 1.1 protocol to the real
// @aws-sdk/client-ecs client. UPDATE_GOLDEN=1 rewrites test/deploy/golden/inject-register.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ECSClient } from '@aws-sdk/client-ecs';
import { deployCommand } from '../../proxy/cli/deploy-command.ts';
import { startFakeEcs, type FakeEcs, type FakeEcsSeed } from './fake-ecs.ts';

type Json = Record<string, any>;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GOLDEN = join(root, 'test', 'deploy', 'golden', 'inject-register.json');
const IMAGE = `123456789012.dkr.ecr.us-east-1.amazonaws.com/warden@sha256:${'ab12'.repeat(16)}`;
const ORIGINAL_ARN = 'arn:aws:ecs:us-east-1:123456789012:task-definition/support-agent:7';
const READ_ONLY = ['taskDefinitionArn', 'revision', 'status', 'requiresAttributes', 'compatibilities', 'registeredAt', 'registeredBy', 'deregisteredAt'];

function agentDefinition(): Json {
  const awslogs = (prefix: string) => ({ logDriver: 'awslogs', options: { 'awslogs-group': '/ecs/support-agent', 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': prefix } });
  return {
    family: 'support-agent',
    taskRoleArn: 'arn:aws:iam::123456789012:role/support-agent-task',
    executionRoleArn: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole',
    networkMode: 'awsvpc',
    requiresCompatibilities: ['FARGATE'],
    cpu: '1024',
    memory: '2048',
    runtimePlatform: { cpuArchitecture: 'X86_64', operatingSystemFamily: 'LINUX' },
    containerDefinitions: [
      {
        name: 'agent',
        image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/support-agent:1.4.2',
        essential: true,
        memoryReservation: 1024,
        portMappings: [{ containerPort: 8080, protocol: 'tcp', name: 'http' }],
        environment: [{ name: 'LOG_LEVEL', value: 'info' }, { name: 'OPENAI_BASE_URL', value: 'https://api.openai.com/v1' }],
        secrets: [{ name: 'OPENAI_API_KEY', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-key-AbCdEf' }],
        dependsOn: [{ containerName: 'log-router', condition: 'START' }],
        logConfiguration: awslogs('agent'),
        healthCheck: { command: ['CMD-SHELL', 'wget -qO- http://127.0.0.1:8080/health || exit 1'], interval: 15, timeout: 5, retries: 3, startPeriod: 20 },
      },
      {
        name: 'log-router',
        image: 'public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0',
        essential: false,
        memoryReservation: 64,
        firelensConfiguration: { type: 'fluentbit', options: { 'enable-ecs-log-metadata': 'true' } },
        logConfiguration: awslogs('firelens'),
      },
    ],
    tags: [{ key: 'team', value: 'agents' }, { key: 'env', value: 'prod' }],
  };
}

function seed(edit: (def: Json) => void = () => {}): FakeEcsSeed {
  const taskDefinition = agentDefinition();
  edit(taskDefinition);
  return {
    cluster: 'prod', service: 'support-agent', taskDefinition, revision: 7,
    tasks: (arn) => [1, 2].map((n) => ({
      taskArn: `arn:aws:ecs:us-east-1:123456789012:task/prod/0f3c9a1b2c3d4e5f600${n}`,
      taskDefinitionArn: arn, lastStatus: 'RUNNING', desiredStatus: 'RUNNING', healthStatus: n === 1 ? 'HEALTHY' : 'UNHEALTHY',
      containers: [
        { name: 'agent', lastStatus: 'RUNNING', healthStatus: 'HEALTHY' },
        { name: 'warden', lastStatus: 'RUNNING', healthStatus: n === 1 ? 'HEALTHY' : 'UNHEALTHY' },
      ],
    })),
  };
}

function client(fake: FakeEcs): ECSClient {
  return new ECSClient({ endpoint: fake.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDFAKEFAKEFAKE', secretAccessKey: 'fake-secret' }, maxAttempts: 1 });
}

/** Runs `warden deploy …` in-process against the fake; returns the exit code and what it printed. */
async function deploy(fake: FakeEcs, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await deployCommand(args, { write: (s: string) => { stdout += s; return true; } }, { write: (s: string) => { stderr += s; return true; } }, client(fake));
  return { code, stdout, stderr };
}

const INJECT = ['inject', '--cluster', 'prod', '--service', 'support-agent', '--image', IMAGE, '--collector-url', 'https://collector.internal:8443', '--agent-id', 'support-bot', '--agent-version', '1.4.2'];

function writes(fake: FakeEcs): string[] {
  return fake.calls.map((c) => c.op).filter((op) => op === 'RegisterTaskDefinition' || op === 'UpdateService');
}

function withoutReadOnly(def: Json): Json {
  const out = structuredClone(def);
  for (const k of READ_ONLY) delete out[k];
  return out;
}

test('inject registers exactly the golden task definition and moves the service onto it', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  const r = await deploy(fake, INJECT);
  assert.equal(r.code, 0, r.stderr);
  const [registered] = fake.inputs('RegisterTaskDefinition');
  if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, `${JSON.stringify(registered, null, 2)}\n`);
  assert.deepEqual(registered, JSON.parse(readFileSync(GOLDEN, 'utf8')));
  assert.deepEqual(fake.inputs('UpdateService'), [{ cluster: 'prod', service: 'support-agent', taskDefinition: 'arn:aws:ecs:us-east-1:123456789012:task-definition/support-agent:8' }]);
  assert.equal(fake.service().taskDefinition, 'arn:aws:ecs:us-east-1:123456789012:task-definition/support-agent:8');
  // The describe asked for tags, and the golden keeps them plus the previous revision.
  assert.deepEqual(fake.inputs('DescribeTaskDefinition')[0], { taskDefinition: ORIGINAL_ARN, include: ['TAGS'] });
  assert.ok(registered.tags.some((tag: Json) => tag.key === 'warden:previous-revision' && tag.value === ORIGINAL_ARN));
  assert.match(r.stdout, /registered .*support-agent:8/);
});

test('a second inject registers nothing; an inject with new options replaces the sidecar without duplicating it', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  assert.equal((await deploy(fake, INJECT)).code, 0);
  const again = await deploy(fake, INJECT);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to register/);
  assert.deepEqual(writes(fake), ['RegisterTaskDefinition', 'UpdateService']);

  const newer = IMAGE.replace(/ab12/g, 'cd34');
  assert.equal((await deploy(fake, INJECT.map((a) => (a === IMAGE ? newer : a)))).code, 0);
  const [first, second] = fake.inputs('RegisterTaskDefinition');
  const names = second.containerDefinitions.map((c: Json) => c.name);
  assert.deepEqual(names, ['agent', 'log-router', 'warden']);
  assert.equal(second.containerDefinitions[2].image, newer);
  assert.deepEqual(second.volumes, first.volumes);
  assert.deepEqual(second.tags, first.tags, 'the previous-revision tag still names the pre-Warden revision');
  const agent = second.containerDefinitions[0];
  assert.equal(agent.environment.filter((e: Json) => e.name === 'OPENAI_BASE_URL').length, 1);
  assert.equal(agent.dependsOn.filter((d: Json) => d.containerName === 'warden').length, 1);
  // Apart from the image, the re-inject registers what the first one did.
  second.containerDefinitions[2].image = IMAGE;
  assert.deepEqual(second, first);

  // Without --image, a re-inject keeps the sidecar's image and changes only what was asked.
  const bumped = await deploy(fake, ['inject', '--cluster', 'prod', '--service', 'support-agent', '--collector-url', 'https://collector.internal:8443', '--agent-id', 'support-bot', '--agent-version', '1.5.0']);
  assert.equal(bumped.code, 0, bumped.stderr);
  const third = fake.inputs('RegisterTaskDefinition')[2];
  assert.equal(third.containerDefinitions[2].image, newer);
  const env = Object.fromEntries(third.containerDefinitions[2].environment.map((e: Json) => [e.name, e.value]));
  assert.deepEqual([env.WARDEN_AGENT_ID, env.WARDEN_AGENT_VERSION, env.WARDEN_AGENT_CONTAINER], ['support-bot', '1.5.0', 'agent']);
});

test('a first inject without --image, or with a bad --agent-id, is refused before any AWS write', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  const r = await deploy(fake, ['inject', '--cluster', 'prod', '--service', 'support-agent']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /has no Warden sidecar yet, so there is no image to keep; pass --image/);
  await assert.rejects(deploy(fake, [...INJECT.slice(0, -4), '--agent-id', 'support bot']), /--agent-id must be letters, digits/);
  assert.deepEqual(writes(fake), []);
});

test('remove restores the original containers, volumes, tags and every other registrable field', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  const original = fake.described(ORIGINAL_ARN);
  assert.equal((await deploy(fake, INJECT)).code, 0);
  const r = await deploy(fake, ['remove', '--cluster', 'prod', '--service', 'support-agent']);
  assert.equal(r.code, 0, r.stderr);
  const restored = fake.inputs('RegisterTaskDefinition')[1];
  assert.deepEqual(restored.containerDefinitions, original.taskDefinition.containerDefinitions);
  assert.deepEqual(restored.volumes, original.taskDefinition.volumes);
  assert.deepEqual(restored, { ...withoutReadOnly(original.taskDefinition), tags: original.tags });
  assert.deepEqual(fake.inputs('UpdateService')[1], { cluster: 'prod', service: 'support-agent', taskDefinition: 'arn:aws:ecs:us-east-1:123456789012:task-definition/support-agent:9' });
  // Removing again finds nothing to remove.
  const again = await deploy(fake, ['remove', '--cluster', 'prod', '--service', 'support-agent']);
  assert.match(again.stdout, /nothing to remove/);
  assert.equal(fake.inputs('RegisterTaskDefinition').length, 2);
});

const REFUSALS: Array<[string, (def: Json) => void, RegExp]> = [
  ['a bridge-mode task definition', (def) => { def.networkMode = 'bridge'; def.requiresCompatibilities = ['EC2']; }, /networkMode is "bridge": Warden needs "awsvpc"/],
  ['an agent port that clashes with the sidecar', (def) => { def.containerDefinitions[0].portMappings.push({ containerPort: 15101, protocol: 'tcp' }); }, /container "agent" maps port 15101/],
  ['a Fargate size the sidecar no longer fits', (def) => { def.cpu = '256'; def.memory = '1024'; def.containerDefinitions[0].memoryReservation = 768; }, /reserve 1088 MiB with the sidecar, more than the task's 1024 MiB; the smallest size that fits is cpu 256 \/ memory 2048/],
  ['an invalid Fargate cpu/memory pair', (def) => { def.cpu = '256'; def.memory = '4096'; }, /cpu 256 with memory 4096 MiB is not a Fargate combination/],
  ['secrets without an execution role', (def) => { delete def.executionRoleArn; }, /uses secrets .* no executionRoleArn/],
];

for (const [what, edit, message] of REFUSALS) {
  test(`inject refuses ${what} and registers nothing`, async (t) => {
    const fake = await startFakeEcs(seed(edit));
    t.after(() => fake.close());
    const r = await deploy(fake, INJECT);
    assert.equal(r.code, 1);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /nothing was registered/);
    assert.deepEqual(writes(fake), []);
  });
}

test('--dry-run prints a unified diff of the task definition and registers nothing', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  const r = await deploy(fake, [...INJECT, '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^--- ${ORIGINAL_ARN}\n\\+\\+\\+ support-agent \\(new revision\\)\n@@ -\\d+,\\d+ \\+\\d+,\\d+ @@`));
  assert.match(r.stdout, /^\+ {6}"name": "warden",$/m);
  assert.match(r.stdout, /^- {10}"value": "https:\/\/api.openai.com\/v1"$/m);
  assert.match(r.stdout, /^\+ {10}"value": "http:\/\/127.0.0.1:15100\/v1"$/m);
  assert.match(r.stdout, /dry run: nothing was registered/);
  assert.deepEqual(writes(fake), []);
});

test('status prints the deployments, the tasks and each task\'s sidecar health', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  await deploy(fake, INJECT);
  const r = await deploy(fake, ['status', '--cluster', 'prod', '--service', 'support-agent']);
  // One of the two tasks has an UNHEALTHY sidecar: the check fails, so a script can wait on it.
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /1 task\(s\) have an UNHEALTHY Warden sidecar/);
  assert.match(r.stdout, /task definition .*support-agent:8: Warden injected \(from .*support-agent:7\)/);
  assert.match(r.stdout, /PRIMARY +IN_PROGRESS +support-agent:8/);
  assert.match(r.stdout, /ACTIVE +COMPLETED +support-agent:7/);
  assert.match(r.stdout, /0f3c9a1b2c3d4e5f6001 +support-agent:8 +RUNNING +HEALTHY +HEALTHY \(RUNNING\)/);
  assert.match(r.stdout, /0f3c9a1b2c3d4e5f6002 +support-agent:8 +RUNNING +UNHEALTHY +UNHEALTHY \(RUNNING\)/);
  assert.deepEqual(fake.inputs('DescribeTasks')[0].tasks.length, 2);
});

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'warden.js'), ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the real CLI injects through AWS_ENDPOINT_URL_ECS, refuses an unpinned image, and reports status', async (t) => {
  const fake = await startFakeEcs(seed());
  t.after(() => fake.close());
  const env = { AWS_ENDPOINT_URL_ECS: fake.url, AWS_ACCESS_KEY_ID: 'AKIDFAKEFAKEFAKE', AWS_SECRET_ACCESS_KEY: 'fake-secret', AWS_REGION: 'us-east-1' };
  const unpinned = await cli(['deploy', 'inject', '--cluster', 'prod', '--service', 'support-agent', '--image', 'warden:latest'], env);
  assert.equal(unpinned.code, 2);
  assert.match(unpinned.stderr, /not pinned by digest/);
  assert.deepEqual(fake.calls, []);

  const r = await cli(['deploy', ...INJECT], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fake.inputs('RegisterTaskDefinition')[0], JSON.parse(readFileSync(GOLDEN, 'utf8')));
  assert.equal(fake.inputs('UpdateService')[0].taskDefinition, 'arn:aws:ecs:us-east-1:123456789012:task-definition/support-agent:8');

  const status = await cli(['deploy', 'status', '--cluster', 'prod', '--service', 'support-agent'], env);
  assert.equal(status.code, 1, status.stderr);
  assert.match(status.stdout, /WARDEN/);
  const missing = await cli(['deploy', 'status', '--cluster', 'prod', '--service', 'nope'], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /service "nope" not found in cluster "prod"/);
});

test('the sidecar reads a policy passed inline in WARDEN_POLICY_INLINE, and leaves no copy of it behind', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'warden-inline-'));
  const r = await cli(['proxy'], { WARDEN_POLICY_INLINE: 'version: 1\nnot_a_section: true\n', WARDEN_POLICY: '/nonexistent/policy.yaml', TMPDIR: tmp });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /inline-policy\.yaml:\d+:\d+: /);
  assert.doesNotMatch(r.stderr, /nonexistent/);
  // Nothing but Node's own compile cache (bin/warden.js keeps it in the temporary directory).
  assert.deepEqual(readdirSync(tmp).filter((name) => name !== 'node-compile-cache'), []);
});
