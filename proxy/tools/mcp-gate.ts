// Whether an MCP tools/call reaches the server: the policy's refusals as JSON-RPC errors, and calls
// held for a person's approval (released with the arguments the person approved).
import { holdToolCall, notApproved } from '../escalation/tool-hold.ts';
import type { ToolCatalog } from './catalog.ts';
import type { McpInput } from './mcp-proxy.ts';
import { rpcError, type Id, type Json } from './mcp-wire.ts';
import type { Decided, Violation } from './violations.ts';

/** A tools/call that waits for a person before it is sent. */
export interface HeldCall {
  /** The JSON-RPC message; its arguments are replaced when a person edits them. */
  m: Json;
  name: string;
  tool: string;
  args: unknown;
  escalated: Decided[];
  check(args: unknown): Violation[];
  edited?: boolean;
}

export type Released = { held: HeldCall; args: unknown } | { refusal: Json };

/** Tool names as metric labels: the policy's names, never what a server or model made up. */
export function metricName(catalog: ToolCatalog, tool: string): string {
  return catalog.get(tool) ? tool : 'undeclared';
}

/** The JSON-RPC error for a tools/call the policy refuses; it never reaches the server. */
export function refuse(input: McpInput, id: Id, name: string, tool: string, blocked: readonly Decided[]): Json {
  input.call.toolCall!.outcome = 'blocked';
  input.metrics.toolCalls.inc({ tool: metricName(input.catalog, tool), outcome: 'blocked' });
  return rpcError(id, `[warden] tools/call ${name} refused by policy: ${blocked.map((d) => `${d.kind}: ${d.message}`).join('; ')}`, { type: 'tool_blocked', tool: name, violations: blocked.map((d) => d.kind) });
}

/** Holds the calls (all at once: each is its own escalation) until a person decides each. */
export async function holdCalls(input: McpInput, held: readonly HeldCall[]): Promise<Released[]> {
  const { call, catalog } = input;
  return Promise.all(held.map(async (h): Promise<Released> => {
    const hold = await holdToolCall({
      call, queue: input.escalations, tool: h.tool, args: h.args, escalated: h.escalated, check: h.check,
      argsSchema: catalog.get(h.tool)?.config.args, signal: input.signal,
    });
    if ('escalation' in hold) call.toolCall!.escalation = hold.escalation;
    if (hold.kind === 'blocked') return { refusal: refuse(input, h.m.id, h.name, h.tool, hold.blocked) };
    if (hold.kind === 'approved') {
      if (hold.edited) {
        h.m.params = { ...h.m.params, arguments: hold.args };
        h.edited = true;
      }
      return { held: h, args: hold.args };
    }
    const outcome = hold.kind === 'rejected' ? 'rejected' : 'escalation_timeout';
    call.toolCall!.outcome = outcome;
    input.metrics.toolCalls.inc({ tool: metricName(catalog, h.tool), outcome });
    const { error } = notApproved(h.name, hold);
    return { refusal: rpcError(h.m.id, `[warden] tools/call ${h.name} was not approved: ${error.message}. ${error.instruction}`, { type: 'tool_blocked', tool: h.name, code: error.code, escalation: hold.escalation }) };
  }));
}
