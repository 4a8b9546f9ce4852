// Model pinning: an alias the agent asks for (gpt-4o) goes upstream as the snapshot the policy pins
// (gpt-4o-2024-11-20), so a provider's silent alias update cannot change behaviour. The model and
// system_fingerprint the upstream reports are recorded, and a served model that is not the pin is noted.
// An operator's rollback (evals) pins above the policy.
import type { Policy } from '../../policies/types.ts';
import type { Response } from '../canonical.ts';
import { createModelTable } from '../model-table.ts';
import { CONTINUE, rewrite, type CallContext, type Stage } from '../stage.ts';

/** An operator's pins above the policy's (a rollback after drift): the snapshot for a model asked, if any. */
export type PinOverrides = (model: string) => string | undefined;

export function createModelPinning(policy: Policy, overrides?: PinOverrides): Stage {
  const models = createModelTable(policy);

  function recordServed(call: CallContext, res: Response): void {
    call.modelServed = res.model;
    call.systemFingerprint = res.systemFingerprint;
    const pinned = call.modelSent !== call.modelAsked;
    // Providers answer a pinned snapshot with that exact name; anything else means the pin did not hold.
    if (pinned && res.model && res.model !== call.modelSent) {
      call.decisions.push({ stage: 'model-pinning', decision: 'served-model-differs', detail: { pinned: call.modelSent, served: res.model } });
    }
  }

  return {
    name: 'model-pinning',
    onRequest(call, req) {
      call.modelAsked = req.model;
      // Read per call, so a rollback takes effect from the next call on, without a reload.
      const override = overrides?.(req.model);
      const pin = override ?? models.exact(req.model)?.pin;
      if (!pin || pin === req.model) {
        call.modelSent = req.model;
        return CONTINUE;
      }
      call.modelSent = pin;
      call.decisions.push({ stage: 'model-pinning', decision: 'pinned', detail: { asked: req.model, by: override ? 'rollback' : 'policy', pinned: pin } });
      return rewrite({ ...req, model: pin }, 'model-pinned');
    },
    onResponse(call, res) {
      recordServed(call, res);
      return CONTINUE;
    },
    onStreamEnd: recordServed,
  };
}
