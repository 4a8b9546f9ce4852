// A Policy value for unit tests of stages, without going through YAML.
import { DEFAULT_RULES } from '../../policies/normalize.ts';
import { retriesConfig } from '../../policies/retries.ts';
import type { Policy } from '../../policies/types.ts';
import type { Request } from '../../proxy/canonical.ts';
import type { CallContext } from '../../proxy/stage.ts';

const TIMEOUTS = { connectMs: 5_000, firstTokenMs: 30_000, idleMs: 20_000, totalMs: 300_000 };

/** A minimal valid policy with the given models and overrides. */
export function testPolicy(overrides: Partial<Policy> = {}): Policy {
  return {
    apiVersion: 'warden/v1', kind: 'Policy', mode: 'enforce',
    agent: { id: 'test-agent', version: '1.0.0', scopes: [] },
    upstreams: { openai: { name: 'openai', baseUrl: 'http://127.0.0.1:1/v1', provider: 'openai', passthroughAuth: false, headers: {}, timeouts: TIMEOUTS } },
    models: {
      'gpt-4o': { name: 'gpt-4o', pin: 'gpt-4o-2024-11-20', price: { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 } },
      'gpt-4o-mini': { name: 'gpt-4o-mini', price: { inputPerMTok: 0.15, outputPerMTok: 0.6 } },
    },
    usage: { streamUsage: 'request' },
    limits: { maxBodyBytes: 10 * 1024 * 1024 },
    retries: retriesConfig(undefined, TIMEOUTS),
    tools: {}, rules: DEFAULT_RULES,
    escalation: { timeoutMs: 600_000, onTimeout: 'fail', webhookHeaders: {}, webhookRetry: { attempts: 8, baseMs: 1_000, capMs: 300_000 } },
    audit: { enabled: false, durability: 'strict', bodies: 'full', maxBodyBytes: 1024 * 1024, checkpoint: { everyRecords: 1_000, everyMs: 10_000 }, encrypt: [], mask: [], onFull: 'block', retainShippedMs: 7 * 86_400_000 },
    source: { file: 'test.yaml', sha256: '0'.repeat(64) },
    ...overrides,
  };
}

/** A fresh call context for a policy. */
export function testCall(policy: Policy): CallContext {
  return {
    id: 'req-1', startedAt: 0, policy, agent: policy.agent, upstream: policy.upstreams.openai, route: 'openai',
    endpoint: 'openai.chat', headers: {}, actions: [], decisions: [], violations: [], bodies: {}, state: new Map(),
  };
}

/** A canonical chat request. */
export function testRequest(overrides: Partial<Request> = {}): Request {
  return {
    kind: 'chat', model: 'gpt-4o', messages: [{ role: 'user', text: 'hi' }], tools: [], stream: false,
    streamUsage: false, streamUsageOptional: true, ...overrides,
  };
}
