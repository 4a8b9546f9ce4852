// Behaviour watch: hands every model response, as the agent gets it, to the pact service's live watch
// (silent model changes, passive drift metrics). It never changes a call; it only looks.
import type { Request } from '../canonical.ts';
import type { LiveWatch } from '../evals/live-watch.ts';
import { CONTINUE, type Stage } from '../stage.ts';

const NAME = 'behaviour-watch';

export function createBehaviourWatch(watch: LiveWatch): Stage {
  return {
    name: NAME,
    onRequest(call, req) {
      // The request's tool results say whether the agent's tools failed; the response hooks need them.
      if (req.kind === 'chat') call.state.set(NAME, req);
      return CONTINUE;
    },
    onResponse(call, res) {
      const req = call.state.get(NAME) as Request | undefined;
      if (req) watch.observe(call, req, res);
      return CONTINUE;
    },
    onStreamEnd(call, res) {
      const req = call.state.get(NAME) as Request | undefined;
      if (req) watch.observe(call, req, res);
    },
  };
}
