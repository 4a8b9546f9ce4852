// /agents/{name}/* on both ends of a call from one agent to another, each through its own sidecar.
//
// Outbound, on the traffic listener: the agent calls peer {name}. Warden signs a token for this one
// request (who calls, for whom, with which scopes), drops the agent's own credentials, and forwards to
// the peer's inbound listener at {peer.url}/agents/{audience}{rest}.
//
// Inbound, on the inbound listener (--inbound-listen): a peer's sidecar calls this agent. Warden
// verifies the token, opens a delegation carrying the narrowed scopes, forwards to the agent's own
// endpoint (agents.inbound.url){rest} with the delegation's id, and ends the delegation when the agent
// has answered. Whatever the agent does for the caller meanwhile runs with those scopes, as long as it
// sends the id back (the same contract as x-warden-session).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { captureBytes } from '../audit/call-record.ts';
import type { SidecarContext } from '../context.ts';
import { AgentIdentityError, InvalidRequestError, UnknownAgentError, UpstreamTimeoutError, UpstreamUnreachableError } from '../errors.ts';
import { readBody } from '../http/body.ts';
import type { CallTiming } from '../http/call-timing.ts';
import { headerValue, upstreamRequestHeaders } from '../http/headers.ts';
import { relay } from '../http/relay.ts';
import { wardenHeaders } from '../http/respond.ts';
import type { UpstreamResponse } from '../http/upstream-client.ts';
import type { Runtime } from '../runtime.ts';
import type { CallContext } from '../stage.ts';
import { DELEGATION_HEADER, IDENTITY_STAGE, refused } from './acting.ts';
import type { Delegation } from './delegations.ts';
import type { AgentServices } from './services.ts';
import { admitIdentity, checkIdentityToken, MAX_CHAIN_HOPS, signIdentity, type Hop } from './token.ts';

export const IDENTITY_HEADER = 'x-warden-identity';

// The agent's credentials are for its own sidecar; another agent never sees them.
const CREDENTIALS = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie'];

export interface AgentCallInput {
  ctx: SidecarContext;
  runtime: Runtime;
  req: IncomingMessage;
  res: ServerResponse;
  call: CallContext;
  /** {name} in /agents/{name}: the peer called (outbound), or this agent (inbound). */
  name: string;
  /** The path after /agents/{name}, query included. */
  rest: string;
  timing: CallTiming;
  signal: AbortSignal;
  release(): Promise<void>;
  /** The request came in on the inbound listener, from a peer's sidecar. */
  inbound: boolean;
  /** The delegation the calling agent acts under (outbound): the chain goes on from it. */
  delegation?: Delegation;
}

/** Answers one /agents request; throws WardenErrors for the caller to render. */
export async function handleAgentCall(input: AgentCallInput): Promise<void> {
  const services = input.ctx.services.agents;
  if (!services) throw new UnknownAgentError(input.name, 'this sidecar runs without agent identity');
  return input.inbound ? inbound(input, services) : outbound(input, services);
}

async function outbound(input: AgentCallInput, services: AgentServices): Promise<void> {
  const { call, req } = input;
  const policy = input.runtime.policy;
  const peer = policy.agents?.peers[input.name];
  if (!peer) throw new UnknownAgentError(input.name);
  const method = req.method ?? 'GET';
  const body = await readBody(req, policy.limits.maxBodyBytes);
  call.bodies.request = captureBytes(policy, body);
  // This agent joins the chain with the scopes it acts with now: its own, or a delegation's.
  const self = call.agent;
  const chain: Hop[] = [...(input.delegation?.chain ?? []), { agent: self.id, scopes: [...self.scopes] }];
  if (chain.length > MAX_CHAIN_HOPS) throw new InvalidRequestError(`the delegation chain would have ${chain.length} hops; at most ${MAX_CHAIN_HOPS} are accepted`);
  const jti = randomBytes(16).toString('base64url');
  const token = signIdentity(services.key, { iss: self.id, aud: peer.audience, scopes: self.scopes, chain }, { method, path: input.rest, body }, { ttlMs: policy.agents!.tokenTtlMs, jti });
  call.decisions.push({
    stage: IDENTITY_STAGE, decision: 'signed',
    detail: { peer: peer.name, aud: peer.audience, jti, chain: chain.map((h) => h.agent), scopes: self.scopes, delegation: input.delegation?.id },
  });
  const headers = upstreamRequestHeaders(req.headers, { strip: CREDENTIALS, set: { [IDENTITY_HEADER]: token }, identity: false });
  await send(input, services, `agents/${peer.name}`, target(peer.url, `/agents/${encodeURIComponent(peer.audience)}${input.rest}`), method, headers, body, peer.timeoutMs);
}

async function inbound(input: AgentCallInput, services: AgentServices): Promise<void> {
  const { call, req } = input;
  const policy = input.runtime.policy;
  const self = policy.agent;
  if (input.name !== self.id) throw new UnknownAgentError(input.name, `this sidecar takes calls for agent ${self.id} only`);
  const endpoint = policy.agents?.inbound;
  if (!endpoint) throw new UnknownAgentError(self.id, 'the policy has no agents.inbound, so this agent takes no calls from other agents');
  const method = req.method ?? 'GET';
  // The token first, from the head alone: a caller that cannot prove who it is gets its 401 before
  // the sidecar reads (and buffers) a byte of its body. The connection closes with that answer,
  // rather than the unread body being drained from it.
  const checked = identified(input, true, () => checkIdentityToken({
    token: headerValue(req.headers, IDENTITY_HEADER), self, trust: input.runtime.trust, request: { method, path: input.rest },
  }));
  const body = await readBody(req, policy.limits.maxBodyBytes);
  call.bodies.request = captureBytes(policy, body);
  // Then the body against the token's hash, and last the replay cache, so a bad token takes no slot.
  const verified = identified(input, false, () => admitIdentity(checked, body, services.replay));
  const c = verified.claims;
  const delegation = services.delegations.start({ caller: c.iss, chain: c.chain, scopes: verified.scopes, jti: c.jti });
  if (!delegation) throw refused(input.ctx.metrics, new AgentIdentityError('busy', 'too many calls from other agents in flight'));
  call.decisions.push({
    stage: IDENTITY_STAGE, decision: 'verified',
    detail: { caller: c.iss, chain: c.chain.map((h) => h.agent), scopes: verified.scopes, jti: c.jti, key_id: verified.keyId, delegation: delegation.id },
  });
  const headers = upstreamRequestHeaders(req.headers, {
    strip: CREDENTIALS, identity: false,
    // What the agent needs to act for the caller (the id) and to tell its model what it may do.
    set: { [DELEGATION_HEADER]: delegation.id, 'x-warden-caller': c.iss, 'x-warden-chain': c.chain.map((h) => h.agent).join(','), 'x-warden-scopes': verified.scopes.join(',') },
  });
  try {
    await send(input, services, `agent ${self.id}`, target(endpoint.url, input.rest), method, headers, body, endpoint.timeoutMs);
  } finally {
    services.delegations.end(delegation.id);
  }
}

/** The step's result, or its AgentIdentityError recorded on the call, counted, and thrown. */
function identified<T>(input: AgentCallInput, bodyUnread: boolean, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (!(err instanceof AgentIdentityError)) throw err;
    input.call.decisions.push({ stage: IDENTITY_STAGE, decision: 'refused', detail: { reason: err.reason, message: err.message } });
    if (bodyUnread) input.res.setHeader('connection', 'close');
    throw refused(input.ctx.metrics, err);
  }
}

/** base URL (its path kept) + path. */
function target(base: string, path: string): URL {
  const url = new URL(base);
  return new URL(`${url.origin}${url.pathname.replace(/\/+$/, '')}${path}`);
}

/** Forwards the request within `timeoutMs` (the whole answer included) and relays the answer. */
async function send(
  input: AgentCallInput, services: AgentServices, what: string, url: URL, method: string,
  headers: Record<string, string | string[]>, body: Buffer, timeoutMs: number,
): Promise<void> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([timeout, input.signal]);
  const hasBody = method !== 'GET' && method !== 'HEAD';
  if (hasBody) headers['content-length'] = String(body.length);
  input.timing.upstreamStart = performance.now();
  let up: UpstreamResponse;
  try {
    const r = await services.dispatcher.request({ origin: url.origin, path: url.pathname + url.search, method: method as 'POST', headers, body: hasBody ? body : undefined, signal });
    up = { status: r.statusCode, headers: r.headers, body: r.body };
  } catch (err) {
    if (timeout.aborted) throw new UpstreamTimeoutError(what, 'total', timeoutMs, { cause: err });
    if (input.signal.aborted) throw err;
    throw new UpstreamUnreachableError(what, { cause: err });
  }
  input.timing.status = up.status;
  await relay(input.res, up, wardenHeaders(input.call.id, input.call.actions), input.timing, input.release, timeoutMs);
}

