// `warden deploy inject|remove|status --cluster C --service S`: puts the Warden sidecar into an ECS
// service's task definition, takes it out, or shows how the rollout stands. AWS access is the SDK's
// usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/…, AWS_REGION, AWS_ENDPOINT_URL_ECS). Exit codes: 0 ok,
// 1 the task definition was refused (every problem listed, nothing registered), 2 usage, or an AWS
// call that failed (credentials, region, unknown cluster or service).
import { readFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { parseArgs } from 'node:util';
import type { ECSClient } from '@aws-sdk/client-ecs';
import { injectService, type Out } from '../../deploy/ecs/inject.ts';
import { removeService } from '../../deploy/ecs/remove.ts';
import { ecsClient } from '../../deploy/ecs/service.ts';
import { serviceStatus } from '../../deploy/ecs/status.ts';
import { DEFAULT_MEMORY_RESERVATION_MIB, DEFAULT_STOP_TIMEOUT_S } from '../../deploy/ecs/task-definition.ts';
import { UsageError } from '../errors.ts';

const SUBCOMMANDS = ['inject', 'remove', 'status'];
// A task definition is at most 64 KiB in all; an inline policy must leave room for the rest.
const MAX_INLINE_POLICY_BYTES = 32 * 1024;
const DIGEST = /@sha256:[0-9a-f]{64}$/;

function flags(args: string[]) {
  try {
    return parseArgs({
      args, strict: true, allowPositionals: false,
      options: {
        cluster: { type: 'string' }, service: { type: 'string' }, image: { type: 'string' }, 'allow-unpinned': { type: 'boolean' },
        policy: { type: 'string' }, 'policy-path': { type: 'string' }, 'collector-url': { type: 'string' },
        'collector-token-secret': { type: 'string' }, 'agent-container': { type: 'string', multiple: true },
        'sidecar-memory': { type: 'string' }, 'stop-timeout': { type: 'string' }, 'dry-run': { type: 'boolean' },
        'agent-id': { type: 'string' }, 'agent-version': { type: 'string' },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Runs `warden deploy <sub>`; `ecs` is for tests (default: a client from the SDK's usual chain). */
export async function deployCommand(argv: string[], stdout: Out, stderr: Out, ecs: ECSClient = ecsClient()): Promise<number> {
  const [sub, ...rest] = argv;
  if (!SUBCOMMANDS.includes(sub ?? '')) throw new UsageError(`unknown deploy subcommand "${sub ?? ''}" (expected: ${SUBCOMMANDS.join(', ')})`);
  const f = flags(rest);
  if (!f.cluster) throw new UsageError(`deploy ${sub} needs --cluster C`);
  if (!f.service) throw new UsageError(`deploy ${sub} needs --service S`);
  const target = { cluster: f.cluster, service: f.service };
  const injectOnly = ['image', 'allow-unpinned', 'policy', 'policy-path', 'collector-url', 'collector-token-secret', 'agent-container', 'sidecar-memory', 'stop-timeout', 'agent-id', 'agent-version'] as const;
  if (sub !== 'inject') {
    const extra = injectOnly.find((k) => f[k] !== undefined);
    if (extra) throw new UsageError(`--${extra} is for deploy inject only`);
  }
  if (sub === 'status') {
    if (f['dry-run']) throw new UsageError('--dry-run is for deploy inject and remove');
    return serviceStatus(ecs, target, stdout);
  }
  if (sub === 'remove') return removeService(ecs, { ...target, dryRun: !!f['dry-run'] }, stdout);
  if (f.image && !DIGEST.test(f.image) && !f['allow-unpinned']) {
    throw new UsageError(`--image ${f.image} is not pinned by digest (IMAGE@sha256:…); a tag can move under a running service. Pin it, or pass --allow-unpinned`);
  }
  if (f.policy && f['policy-path']) throw new UsageError('give --policy FILE (sent inline) or --policy-path PATH (in the image), not both');
  return injectService(ecs, {
    ...target,
    dryRun: !!f['dry-run'],
    warden: {
      image: f.image,
      policyInline: f.policy ? readPolicy(f.policy) : undefined,
      policyPath: f['policy-path'],
      collectorUrl: f['collector-url'] ? collectorUrl(f['collector-url']) : undefined,
      collectorTokenSecret: f['collector-token-secret'],
      memoryReservationMiB: whole(f['sidecar-memory'], DEFAULT_MEMORY_RESERVATION_MIB, '--sidecar-memory', 'MiB', 6, 1_000_000),
      stopTimeoutS: whole(f['stop-timeout'], DEFAULT_STOP_TIMEOUT_S, '--stop-timeout', 'seconds', 2, 120),
      agentContainers: f['agent-container'],
      agentId: f['agent-id'] === undefined ? undefined : agentField(f['agent-id'], '--agent-id'),
      agentVersion: f['agent-version'] === undefined ? undefined : agentField(f['agent-version'], '--agent-version'),
    },
  }, stdout, stderr);
}

function readPolicy(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UsageError(`--policy ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!isUtf8(bytes)) throw new UsageError(`--policy ${file}: not valid UTF-8`);
  if (bytes.length > MAX_INLINE_POLICY_BYTES) throw new UsageError(`--policy ${file}: ${bytes.length} bytes is too big to pass inline (limit ${MAX_INLINE_POLICY_BYTES}); bake it into the image and use --policy-path`);
  return bytes.toString('utf8');
}

// The policy schema's rule for agent.id (and a sane one for a version), checked here so a typo fails
// before a rollout rather than in a sidecar that will not start.
const AGENT_FIELD = { '--agent-id': /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, '--agent-version': /^[\x21-\x7e]{1,128}$/ };

function agentField(text: string, flag: keyof typeof AGENT_FIELD): string {
  if (AGENT_FIELD[flag].test(text)) return text;
  throw new UsageError(`${flag} must be ${flag === '--agent-id' ? 'letters, digits, . _ - (starting with a letter or digit)' : 'printable ASCII without spaces'}, at most 128 characters (got "${text}")`);
}

function collectorUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return text;
  } catch {}
  throw new UsageError(`--collector-url must be an http(s) URL (got "${text}")`);
}

function whole(text: string | undefined, fallback: number, flag: string, unit: string, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max) throw new UsageError(`${flag} must be a whole number of ${unit} from ${min} to ${max} (got "${text}")`);
  return n;
}
