// Every error Warden itself produces: a stable code, an HTTP status, a `warden_` type for the wire,
// and the cause kept for logs. Adapters render these in the provider's own error shape.

export interface WardenErrorOptions {
  cause?: unknown;
  /** Seconds for a Retry-After header (429 and 503). */
  retryAfterSeconds?: number;
}

export class WardenError extends Error {
  readonly code: string;
  readonly status: number;
  readonly type: string;
  readonly retryAfterSeconds?: number;

  constructor(code: string, status: number, type: string, message: string, options: WardenErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.status = status;
    this.type = type;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** 400: the request body is not valid JSON (or not valid UTF-8). */
export class InvalidJsonError extends WardenError {
  constructor(message: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_INVALID_JSON', 400, 'warden_invalid_request', message, options);
  }
}

/** 400: the request is JSON but not a shape the endpoint accepts. */
export class InvalidRequestError extends WardenError {
  constructor(message: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_INVALID_REQUEST', 400, 'warden_invalid_request', message, options);
  }
}

/** 400: a request Node's HTTP parser refused (bad request line or header, smuggling framing); it never reached a route. */
export class MalformedHttpError extends WardenError {
  constructor(detail: string) {
    super('WARDEN_ERR_MALFORMED_HTTP', 400, 'warden_invalid_request', `malformed HTTP request (${detail})`);
  }
}

/** 431: the request's headers are over Node's header size cap (--max-http-header-size). */
export class HeadersTooLargeError extends WardenError {
  constructor() {
    super('WARDEN_ERR_HEADERS_TOO_LARGE', 431, 'warden_request_too_large', 'request headers are too large');
  }
}

/** 408: the client took too long to send its headers or its body (slow-loris); the connection is closed. */
export class ClientTimeoutError extends WardenError {
  constructor(part: 'headers' | 'body', timeoutMs: number) {
    super('WARDEN_ERR_CLIENT_TIMEOUT', 408, 'warden_request_timeout',
      `the request's ${part} did not arrive within ${timeoutMs} ms (--client-${part === 'headers' ? 'header' : 'body'}-timeout-ms)`);
  }
}

/** 413: the request body is over the configured cap. */
export class BodyTooLargeError extends WardenError {
  constructor(limitBytes: number) {
    super('WARDEN_ERR_BODY_TOO_LARGE', 413, 'warden_request_too_large',
      `request body exceeds the limit of ${limitBytes} bytes (limits.maxBodyBytes)`);
  }
}

/** 401: the policy asks agents for a token (auth.tokenEnv or auth.tokenFile), and the request had none or a wrong one. */
export class AgentUnauthorizedError extends WardenError {
  constructor(reason: string) {
    super('WARDEN_ERR_UNAUTHORIZED', 401, 'warden_unauthorized', reason === 'missing'
      ? 'warden asks the agent for its token: send it as the SDK\'s API key (authorization: Bearer, x-api-key) or in x-warden-token'
      : 'the token the agent sent to warden is not valid (the SDK\'s API key setting is the agent\'s token to warden)');
  }
}

/** 404: no route matches the path. */
export class RouteNotFoundError extends WardenError {
  constructor(method: string, path: string) {
    super('WARDEN_ERR_ROUTE_NOT_FOUND', 404, 'warden_not_found',
      `no route for ${method} ${path}: use /v1/*, /anthropic/*, /upstreams/{name}/*, /tools/{tool}/*, /mcp/{server} or /agents/{name}/*`);
  }
}

/** 404: the route names an upstream the policy does not declare. */
export class UnknownUpstreamError extends WardenError {
  constructor(name: string, why = 'it is not declared in the policy\'s upstreams section') {
    super('WARDEN_ERR_UNKNOWN_UPSTREAM', 404, 'warden_not_found', `upstream "${name}": ${why}`);
  }
}

/** 404: /tools/{tool} names a tool the policy does not declare as an HTTP tool. */
export class UnknownToolError extends WardenError {
  constructor(name: string, why = 'the policy does not declare it') {
    super('WARDEN_ERR_UNKNOWN_TOOL', 404, 'warden_not_found', `no HTTP tool "${name}": ${why}`);
  }
}

/** 404: /agents/{name} names an agent this sidecar cannot route to (not a declared peer; inbound: not this agent). */
export class UnknownAgentError extends WardenError {
  constructor(name: string, why = 'the policy\'s agents.peers does not declare it') {
    super('WARDEN_ERR_UNKNOWN_AGENT', 404, 'warden_not_found', `no agent "${name}": ${why}`);
  }
}

/** Why a call from another agent, or one made on its behalf, was refused (the metric's reason label). */
export type IdentityFailure = 'unsigned' | 'malformed' | 'forged' | 'expired' | 'replayed' | 'untrusted' | 'audience' | 'delegation' | 'busy';

/**
 * 401: an agent-to-agent identity token (x-warden-identity) or a delegation id (x-warden-delegation)
 * Warden refuses; the code names the reason (WARDEN_ERR_IDENTITY_FORGED, …). busy is a 503: too many
 * live tokens or delegations to keep track of, which says nothing about the caller.
 */
export class AgentIdentityError extends WardenError {
  readonly reason: IdentityFailure;
  constructor(reason: IdentityFailure, message: string, options?: WardenErrorOptions) {
    const busy = reason === 'busy';
    super(`WARDEN_ERR_IDENTITY_${reason.toUpperCase()}`, busy ? 503 : 401, busy ? 'warden_unavailable' : 'warden_unauthorized', message,
      busy ? { retryAfterSeconds: 1, ...options } : options);
    this.reason = reason;
  }
}

/** 502: the upstream could not be reached or broke the connection. */
export class UpstreamUnreachableError extends WardenError {
  constructor(upstream: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_UPSTREAM_UNREACHABLE', 502, 'warden_upstream_error',
      `upstream "${upstream}" is unreachable: ${describeCause(options?.cause)}`, options);
  }
}

/** 502: the upstream answered in a content coding Warden cannot decode, so no stage could read the answer. */
export class UpstreamEncodingError extends WardenError {
  constructor(upstream: string, coding: string) {
    super('WARDEN_ERR_UPSTREAM_ENCODING', 502, 'warden_upstream_error',
      `upstream "${upstream}" answered in a content coding Warden cannot read (${coding}), though asked for none: not passed on unchecked`);
  }
}

/** 504: the upstream did not answer within the configured timeout. */
export class UpstreamTimeoutError extends WardenError {
  constructor(upstream: string, phase: string, timeoutMs: number, options?: WardenErrorOptions) {
    super('WARDEN_ERR_UPSTREAM_TIMEOUT', 504, 'warden_upstream_timeout',
      `upstream "${upstream}" did not answer within ${timeoutMs} ms (${phase})`, options);
  }
}

/**
 * An agent that stopped reading a response: a write waited longer than the upstream's idleMs for it to
 * take more bytes. Never sent (the response has begun): the connection is closed, and the call is
 * recorded as one the agent left (status 499) with this code as its stream error.
 */
export class ClientStalledError extends WardenError {
  constructor(waitedMs: number) {
    super('WARDEN_ERR_CLIENT_STALLED', 408, 'warden_client_stalled', `the agent read nothing of the response for ${waitedMs} ms`);
  }
}

/** 503: the sidecar is shutting down and takes no new calls. */
export class ShuttingDownError extends WardenError {
  constructor() {
    super('WARDEN_ERR_SHUTTING_DOWN', 503, 'warden_unavailable', 'warden is shutting down', { retryAfterSeconds: 1 });
  }
}

/** 503: the audit log cannot commit, and a call is never released unrecorded (strict durability). */
export class AuditUnavailableError extends WardenError {
  constructor(detail: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_AUDIT_UNAVAILABLE', 503, 'warden_unavailable', `the audit log is unavailable, so the call was not released: ${detail}`,
      { retryAfterSeconds: 5, ...options });
  }
}

/** 403: a tool call the policy forbids (scope, undeclared tool, invalid arguments, fabricated result). */
export class ToolBlockedError extends WardenError {
  constructor(message: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_TOOL_BLOCKED', 403, 'warden_tool_blocked', message, options);
  }
}

/** 403: a model response holds a class of data the policy's sanitize section blocks (the classes are named, never the data). */
export class SensitiveOutputError extends WardenError {
  constructor(classes: readonly string[], options?: WardenErrorOptions) {
    super('WARDEN_ERR_SENSITIVE_OUTPUT', 403, 'warden_sensitive_output', `[warden] the response was withheld: it contains ${classes.join(', ')}, which this policy blocks`, options);
  }
}

/** 403: a model request's prompt or tool result holds a class of data the policy's sanitize section blocks. */
export class SensitiveInputError extends WardenError {
  constructor(classes: readonly string[], options?: WardenErrorOptions) {
    super('WARDEN_ERR_SENSITIVE_INPUT', 403, 'warden_sensitive_input', `[warden] the request was not sent: it contains ${classes.join(', ')}, which this policy blocks from reaching the provider`, options);
  }
}

// A call a person did not approve is answered 403, timeouts included: SDKs retry 408, 429 and 5xx by
// themselves, and each retry would hold the agent for another full timeout and page a person again.

/** 403: a person rejected the held call. */
export class EscalationRejectedError extends WardenError {
  constructor(id: string, note?: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_ESCALATION_REJECTED', 403, 'warden_escalation_rejected',
      `a person rejected the call (escalation ${id})${note ? `: ${note}` : ''}`, options);
  }
}

/** 403: no person decided within escalation.timeoutMs, and the policy's onTimeout is fail. */
export class EscalationTimeoutError extends WardenError {
  constructor(reason: string, id?: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_ESCALATION_TIMEOUT', 403, 'warden_escalation_timeout', id
      ? `no person decided on the call within escalation.timeoutMs (escalation ${id}; it needed review because ${reason})`
      : `the call needs a person's review (${reason}), but the escalation queue is not available`, options);
  }
}

/** 404: the admin API or CLI names an escalation the queue does not hold. */
export class EscalationNotFoundError extends WardenError {
  constructor(id: string) {
    super('WARDEN_ERR_ESCALATION_NOT_FOUND', 404, 'warden_not_found', `no escalation "${id}"`);
  }
}

/** 409: the escalation was already approved, rejected or timed out. */
export class EscalationDecidedError extends WardenError {
  constructor(id: string, state: string) {
    super('WARDEN_ERR_ESCALATION_DECIDED', 409, 'warden_conflict', `escalation ${id} is already ${state.replace('_', ' ')}; a decision is final`);
  }
}

/** 400: an approval that cannot be applied (edited arguments that fail the tool's schema, a choice out of range). */
export class InvalidApprovalError extends WardenError {
  constructor(message: string) {
    super('WARDEN_ERR_INVALID_APPROVAL', 400, 'warden_invalid_request', message);
  }
}

/**
 * 409: another call held on the same escalation (the same call sent twice) took its one approval.
 * The tool hold catches it and opens a new escalation for this call; it reaches a client only if a
 * caller of the queue does not (then a conflict, not a 500: the call may be sent again).
 */
export class EscalationConsumedError extends WardenError {
  constructor(id: string) {
    super('WARDEN_ERR_ESCALATION_CONSUMED', 409, 'warden_conflict', `escalation ${id}'s approval went to another call; send the call again to ask for its own`);
  }
}

/** 409: an operator's drift action that the sidecar's state does not allow (no pact, no baseline, no remediation URL). */
export class EvalActionError extends WardenError {
  constructor(message: string) {
    super('WARDEN_ERR_EVAL_ACTION', 409, 'warden_conflict', message);
  }
}

/**
 * 403: an escalation decision on the admin API, and the sidecar has no admin token to check it with.
 * Decisions fail closed: the agent shares the task's localhost, so an open admin port would let it
 * approve its own held call.
 */
export class AdminTokenRequiredError extends WardenError {
  constructor(problem?: string) {
    super('WARDEN_ERR_ADMIN_TOKEN_REQUIRED', 403, 'warden_forbidden',
      `deciding an escalation or acting on drift over the admin API needs a reviewer token, and this sidecar has none${problem ? ` (${problem})` : ''}: `
      + 'set WARDEN_ADMIN_TOKEN or WARDEN_ADMIN_TOKEN_FILE on the sidecar\'s container (never the agent\'s), '
      + 'or decide on the data volume with `warden escalations approve|reject ID --data-dir DIR`');
  }
}

/** 401: an escalation decision or drift action on the admin API without the admin token (authorization: Bearer), or with a wrong one. */
export class AdminUnauthorizedError extends WardenError {
  constructor(reason: 'missing' | 'invalid') {
    super('WARDEN_ERR_ADMIN_UNAUTHORIZED', 401, 'warden_unauthorized', reason === 'missing'
      ? 'deciding an escalation or acting on drift needs the admin token: send authorization: Bearer <token> (`warden escalations` and `warden eval` send --token or WARDEN_ADMIN_TOKEN)'
      : 'the admin token sent is not valid');
  }
}

/** 429: a rate or concurrency limit (limits.*) refused the call; Retry-After is when the limit lets it through. */
export class RateLimitedError extends WardenError {
  constructor(message: string, retryAfterSeconds: number, options?: WardenErrorOptions) {
    super('WARDEN_ERR_RATE_LIMITED', 429, 'warden_rate_limited', message, { ...options, retryAfterSeconds });
  }
}

/** 429: the day's USD budget (limits.usdPerDay, limits.perTask.usdPerDay) is spent; Retry-After is the time to UTC midnight. */
export class BudgetExceededError extends WardenError {
  constructor(message: string, retryAfterSeconds: number, options?: WardenErrorOptions) {
    super('WARDEN_ERR_BUDGET_EXCEEDED', 429, 'warden_budget_exceeded', message, { ...options, retryAfterSeconds });
  }
}

/** 503: the audit log has no room (quota reached or volume full); the call was not made. */
export class AuditFullError extends WardenError {
  constructor(detail: string, options?: WardenErrorOptions) {
    super('WARDEN_ERR_AUDIT_FULL', 503, 'warden_unavailable', `the audit log is full, so the call was not made (nothing went upstream): ${detail}`,
      { retryAfterSeconds: 30, ...options });
  }
}

/** 500: a fault inside Warden; the message never carries a stack trace to the client. */
export class InternalError extends WardenError {
  constructor(options?: WardenErrorOptions) {
    super('WARDEN_ERR_INTERNAL', 500, 'warden_internal_error', 'internal error in warden (see the sidecar log)', options);
  }
}

/** A policy or pact that failed validation; each problem already carries file:line:col. */
export class PolicyError extends Error {
  readonly code = 'WARDEN_ERR_POLICY';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'PolicyError';
    this.problems = problems;
  }
}

/** The environment cannot support the configuration (an unwritable data directory, a bad key): exit code 2. */
export class ConfigError extends Error {
  readonly code = 'WARDEN_ERR_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** Command-line usage errors (exit code 2). */
export class UsageError extends Error {
  readonly code = 'WARDEN_ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function describeCause(cause: unknown): string {
  if (cause && typeof cause === 'object') {
    const c = cause as { code?: string; message?: string };
    return c.code ? `${c.code}${c.message ? ` (${c.message})` : ''}` : (c.message ?? String(cause));
  }
  return String(cause ?? 'unknown error');
}
