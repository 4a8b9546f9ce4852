// Scope policy on the model side. On the way up, the tool list is cut to the tools this agent may
// call, so the model never sees the others (enforce mode; monitor and research only record). On the
// way back, every tool call the model makes is checked: declared, in the agent's scopes, arguments
// that parse and satisfy the tool's schema. What a violation does is the policy's rule for it; a
// blocked call is replaced by assistant text saying it was refused and why, or (rules.blockWith:
// error) the whole response becomes a 403. Streams are judged once their tool calls are whole.
import type { Policy } from '../../policies/types.ts';
import type { Response, ToolCall } from '../canonical.ts';
import { ToolBlockedError } from '../errors.ts';
import { CONTINUE, reply, rewrite, type CallContext, type Stage } from '../stage.ts';
import type { ToolCatalog } from '../tools/catalog.ts';
import { decide, noteViolation, refusalText, type Decided } from '../tools/violations.ts';

const NAME = 'tool-guard';

export function createToolGuard(policy: Policy, catalog: ToolCatalog): Stage {
  /** Checks each call, records every violation on the call, and returns the blocked ones by key. */
  function judge<K>(call: CallContext, calls: Iterable<[K, ToolCall]>): Map<K, Decided[]> {
    const blocked = new Map<K, Decided[]>();
    for (const [key, tc] of calls) {
      call.toolCallsChecked = (call.toolCallsChecked ?? 0) + 1;
      const decided = catalog.checkCall(tc.name, tc.arguments, tc.id, undefined, call.agent.scopes).violations.map((v) => decide(policy, v, 'model'));
      for (const d of decided) noteViolation(call, NAME, d);
      const blocking = decided.filter((d) => d.action === 'block');
      if (blocking.length > 0) blocked.set(key, blocking);
    }
    return blocked;
  }

  function asError(blocked: Iterable<Decided[]>): ToolBlockedError {
    return new ToolBlockedError(refusalText([...blocked].flat()));
  }

  return {
    name: NAME,

    onRequest(call, req) {
      if (req.unjudgedToolPaths?.length) {
        call.decisions.push({ stage: NAME, decision: policy.mode === 'enforce' ? 'refused' : 'logged', detail: { unjudged: req.unjudgedToolPaths } });
        if (policy.mode === 'enforce') return reply(new ToolBlockedError(`[warden] this request calls tools in a way Warden cannot check: ${req.unjudgedToolPaths.join('; ')}`));
      }
      if (req.tools.length === 0) return CONTINUE;
      const hidden = req.tools.filter((t) => !catalog.visible(t.name, call.agent.scopes)).map((t) => t.name);
      if (hidden.length === 0) return CONTINUE;
      if (req.forcedTool && hidden.includes(req.forcedTool)) {
        const why = catalog.accessViolation(req.forcedTool, undefined, call.agent.scopes)?.message ?? 'it is not allowed';
        call.decisions.push({ stage: NAME, decision: 'refused', detail: { forcedTool: req.forcedTool } });
        return reply(new ToolBlockedError(`[warden] tool_choice forces ${req.forcedTool}, which this agent may not call: ${why}`));
      }
      call.decisions.push({ stage: NAME, decision: 'tools-filtered', detail: { removed: hidden } });
      return rewrite({ ...req, tools: req.tools.filter((t) => !hidden.includes(t.name)) }, `tools-filtered:${hidden.length}`);
    },

    onResponse(call, res) {
      if (res.toolCalls.length === 0) return CONTINUE;
      const blocked = judge(call, res.toolCalls.map((tc, i) => [i, tc] as [number, ToolCall]));
      if (blocked.size === 0) return CONTINUE;
      if (policy.rules.blockWith === 'error') return reply(asError(blocked.values()));
      const kept = res.toolCalls.filter((_, i) => !blocked.has(i));
      const refusal = refusalText([...blocked.values()].flat());
      const out: Response = {
        ...res,
        text: res.text === '' ? refusal : `${res.text}\n\n${refusal}`,
        toolCalls: kept,
        finishReason: kept.length === 0 && call.adapter?.stopReason ? call.adapter.stopReason : res.finishReason,
      };
      return rewrite(out, `tool-blocked:${blocked.size}`);
    },

    onStreamToolCalls(call, calls, complete) {
      const blocked = judge(call, calls);
      if (!complete) {
        // A stream cut short cannot vouch for any call in it, even one whose arguments happen to parse.
        for (const [index, tc] of calls) {
          if (blocked.has(index)) continue;
          const d = decide(policy, { kind: 'invalid_arguments', tool: tc.name, callId: tc.id, message: 'the stream ended before the tool call was complete' });
          noteViolation(call, NAME, d);
          if (d.action === 'block') blocked.set(index, [d]);
        }
      }
      if (blocked.size === 0) return CONTINUE;
      if (policy.rules.blockWith === 'error') return reply(asError(blocked.values()));
      return rewrite(new Map([...blocked].map(([index, ds]) => [index, refusalText(ds)])), `tool-blocked:${blocked.size}`);
    },
  };
}
