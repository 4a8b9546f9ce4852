// Limits on model calls: requests and tokens per minute, calls in flight and USD per UTC day, per
// agent and per task. A call over a limit gets a 429 in the provider's own shape with a Retry-After
// that says when the limit lets it through, and nothing goes upstream. Tokens are reserved before the
// call (its input counted as the provider counts it, plus the output it may produce) and settled
// against the usage the upstream reports when the call ends (Limiter.settle, from the traffic
// listener), so an over-estimate is refunded and an under-estimate charged to the next calls.
// What a hit does follows rules.limit_exceeded and the mode: monitor and research modes record the
// hit and let the call through.
import type { Policy } from '../../policies/types.ts';
import type { Request } from '../canonical.ts';
import type { TokenCounter, TokenizerFamily } from '../context/tokens.ts';
import { errorFor, judgeHit } from '../limits/judge.ts';
import { countsTokens, HOLD, type Limiter } from '../limits/limiter.ts';
import { CONTINUE, reply, type CallContext, type Outcome, type Stage } from '../stage.ts';

const STAGE = 'limits';
// The output a chat call is assumed to produce when it sets no max tokens: a long answer, not the
// model's maximum (which would hold most of a small allowance for every call); the settlement
// charges what it really produced.
export const DEFAULT_OUTPUT_RESERVATION = 1_024;

export interface LimitsDeps {
  limiter: Limiter;
  tokens: TokenCounter;
}

/** The tokens a call may use: its input as the provider counts it, plus its max output. */
export function reservationOf(tokens: TokenCounter, call: CallContext, req: Request): number {
  const family: TokenizerFamily = call.adapter?.tokenizer ?? 'openai';
  const input = req.messages.length > 0 || req.tools.length > 0 ? tokens.countRequest(req.model, family, req) : 0;
  return input + (req.kind === 'chat' ? (req.maxOutputTokens ?? DEFAULT_OUTPUT_RESERVATION) : 0);
}

export function createLimits(policy: Policy, deps: LimitsDeps): Stage {
  const limits = policy.limits;
  const estimate = countsTokens(limits);
  return {
    name: STAGE,
    onRequest(call, req): Outcome<Request> {
      const tokens = estimate ? reservationOf(deps.tokens, call, req) : 0;
      const admitted = deps.limiter.admit({ agent: call.agent.id, task: call.task, limits, tokens });
      if ('hold' in admitted) {
        call.state.set(HOLD, admitted.hold);
        return CONTINUE;
      }
      const { hit } = admitted;
      if (!judgeHit(call, STAGE, hit)) return CONTINUE;
      deps.limiter.refused(hit);
      return reply(errorFor(hit));
    },
  };
}
