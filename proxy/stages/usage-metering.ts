// Usage metering: tokens and cost per call from the upstream's own usage report and the policy's price
// table. For streams it asks the upstream for usage when the client did not, and drops that extra usage
// event before it reaches a client that never asked for it.
import type { Policy, Price } from '../../policies/types.ts';
import { addUsage, type Response, type Usage } from '../canonical.ts';
import { createModelTable } from '../model-table.ts';
import { CONTINUE, rewrite, type CallContext, type Stage } from '../stage.ts';

const STAGE = 'usage-metering';

/** Cost in USD of one call's usage; cached and cache-write tokens at their own prices when given. */
export function costOf(usage: Usage, price: Price): number {
  const fresh = Math.max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteTokens);
  const cached = price.cachedInputPerMTok ?? price.inputPerMTok;
  const write = price.cacheWritePerMTok ?? price.inputPerMTok;
  const micro = fresh * price.inputPerMTok + usage.cachedInputTokens * cached + usage.cacheWriteTokens * write
    + usage.outputTokens * price.outputPerMTok;
  return micro / 1_000_000;
}

export function createUsageMetering(policy: Policy): Stage {
  const models = createModelTable(policy);
  const requestStreamUsage = policy.usage.streamUsage === 'request';

  function meter(call: CallContext, res: Response): void {
    if (!res.usage) return;
    // The context this call sent, as the provider counted it: exact for every provider, which
    // Warden's own count is not (it is skipped when a request is far from its window).
    call.contextTokens = res.usage.inputTokens;
    // Attempts Warden made and discarded (a jury's other members) were paid for too.
    const usage = call.extraUsage ? addUsage(res.usage, call.extraUsage) : res.usage;
    call.usage = usage;
    // Price by what was served, falling back to what was sent and asked (a served name may be unknown).
    const price = (models.lookup(res.model) ?? models.lookup(call.modelSent) ?? models.lookup(call.modelAsked))?.price;
    // Absurd usage (1e308 tokens) must not become an infinite cost that no record can hold.
    const cost = price && costOf(usage, price);
    if (cost !== undefined && Number.isFinite(cost)) call.costUsd = cost;
  }

  return {
    name: STAGE,
    onRequest(call, req) {
      if (!req.stream || req.streamUsage || !req.streamUsageOptional || !requestStreamUsage) return CONTINUE;
      call.state.set(STAGE, true);
      return rewrite({ ...req, streamUsage: true }, 'usage-requested');
    },
    onStreamEvent(call, ev) {
      return ev.type === 'usage' && call.state.get(STAGE) === true ? rewrite(null) : CONTINUE;
    },
    onResponse(call, res) {
      meter(call, res);
      return CONTINUE;
    },
    onStreamEnd: meter,
  };
}
