// Irreversible tool calls per hour (tools.<name>.risk: irreversible, limits.irreversibleToolCallsPerHour).
// They are counted where Warden executes the call (an HTTP tool at /tools, an MCP tools/call), because
// that is where the effect happens. A model's tool call is only a proposal: the agent may never run it,
// may run it twice, or may run it after a person approved it an hour later, so counting proposals would
// spend the allowance on calls that never happened and still not see the ones that did. A tool Warden
// does not execute cannot be limited at all, which is why the policy check refuses an irreversible
// tool without an http or mcp target once the limit is set.
import type { ToolConfig } from '../../policies/types.ts';
import type { CallContext } from '../stage.ts';
import type { Degradation } from '../tools/degrade.ts';
import { metricName } from '../tools/mcp-gate.ts';
import type { McpInput } from '../tools/mcp-proxy.ts';
import { rpcError, type Id, type Json } from '../tools/mcp-wire.ts';
import { judgeHit } from './judge.ts';
import type { LimitHit, Limiter } from './limiter.ts';

const STAGE = 'limits';

/**
 * For calls Warden is about to execute: takes the irreversible ones from the agent's hourly allowance,
 * all or none, and returns the hit when the policy refuses them (monitor mode records and lets them go).
 */
export function limitIrreversible(call: CallContext, limiter: Limiter | undefined, tools: readonly (ToolConfig | undefined)[]): LimitHit | undefined {
  const perHour = call.policy.limits.irreversibleToolCallsPerHour;
  const risky = tools.filter((t): t is ToolConfig => t?.risk === 'irreversible');
  if (!limiter || perHour === undefined || risky.length === 0) return undefined;
  const hit = limiter.takeIrreversible(call.agent.id, risky.length, perHour);
  if (!hit || !judgeHit(call, STAGE, hit, [...new Set(risky.map((t) => t.name))].join(','))) return undefined;
  limiter.refused(hit);
  return hit;
}

/** The degradation protocol's result for an HTTP tool call the limit refused: retryable, after Retry-After. */
export function rateLimitedResult(tool: ToolConfig, hit: LimitHit): Degradation {
  return {
    error: {
      type: 'tool_blocked', tool: tool.name, retryable: true, message: hit.message,
      instruction: `The limit on irreversible actions is reached. Do not retry now or work around it; tell the user it can be done in about ${humanWait(hit.retryAfterSeconds)}.`,
      code: 'WARDEN_ERR_RATE_LIMITED', retryAfterSeconds: hit.retryAfterSeconds,
    },
  };
}

/**
 * MCP: the tools/call messages about to go to the server, checked against the limit as one batch;
 * the JSON-RPC errors for them when it refuses (empty: they all go).
 */
export function mcpRateLimited(input: McpInput, pending: ReadonlyMap<Id, { name: string; tool: string }>): Json[] {
  const calls = [...pending.entries()].map(([id, p]) => ({ id, ...p, config: input.catalog.get(p.tool)?.config }));
  const hit = limitIrreversible(input.call, input.limits, calls.map((c) => c.config));
  if (!hit) return [];
  return calls.filter((c) => c.config?.risk === 'irreversible').map((c) => {
    input.call.toolCall!.outcome = 'rate_limited';
    input.metrics.toolCalls.inc({ tool: metricName(input.catalog, c.tool), outcome: 'rate_limited' });
    return rpcError(c.id, `[warden] tools/call ${c.name} refused: ${hit.message}`, {
      type: 'rate_limited', tool: c.name, code: 'WARDEN_ERR_RATE_LIMITED', limit: hit.limit, retryAfterSeconds: hit.retryAfterSeconds,
    });
  });
}

function humanWait(s: number): string {
  if (s < 90) return `${s} seconds`;
  return s < 5_400 ? `${Math.round(s / 60)} minutes` : `${Math.round(s / 3_600)} hours`;
}
