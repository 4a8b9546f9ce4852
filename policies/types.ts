// The policy as the runtime sees it: validated once, defaults filled in, deeply frozen.
// The YAML shape is defined by policies/policy.schema.json; this file is its TypeScript mirror.

export type Mode = 'enforce' | 'monitor' | 'research';
export type ProviderName = 'openai' | 'anthropic';
/** What an upstream speaks: a model provider's wire format, or MCP (Streamable HTTP). */
export type UpstreamKind = ProviderName | 'mcp';

export interface Timeouts {
  /** TCP + TLS connect. */
  connectMs: number;
  /** Until the upstream's response headers arrive (time to first token for streams). */
  firstTokenMs: number;
  /** Longest silence between two body chunks. */
  idleMs: number;
  /** Whole call, first byte sent to last byte received. */
  totalMs: number;
}

export interface UpstreamConfig {
  name: string;
  baseUrl: string;
  /** Which wire format the upstream speaks; selects the provider adapter (mcp: served at /mcp/{name}). */
  provider: UpstreamKind;
  /** Env var that holds the upstream credential. */
  apiKeyEnv?: string;
  /** File that holds the upstream credential (a mounted secret); watched, and read again on change, SIGHUP and reload. */
  apiKeyFile?: string;
  /** Header the credential goes in, and its scheme ("Bearer" or "" for a bare key). Provider default when absent. */
  auth?: { header: string; scheme: string };
  /** Forward the agent's own credential headers instead of stripping them. */
  passthroughAuth: boolean;
  /** Extra headers sent upstream (e.g. api-version for Azure). */
  headers: Readonly<Record<string, string>>;
  timeouts: Timeouts;
}

export interface Price {
  inputPerMTok: number;
  outputPerMTok: number;
  /** Cached prompt tokens (OpenAI cached_tokens, Anthropic cache reads); defaults to inputPerMTok. */
  cachedInputPerMTok?: number;
  /** Anthropic cache writes; defaults to inputPerMTok. */
  cacheWritePerMTok?: number;
}

export interface ModelConfig {
  name: string;
  /** Snapshot the alias is rewritten to. */
  pin?: string;
  contextTokens?: number;
  price?: Price;
}

/** The token the agent presents to Warden on the traffic listener; one of the two is set. */
export interface AgentAuthConfig {
  /** Env var that holds the token. */
  tokenEnv?: string;
  /** File that holds the token (a mounted secret); watched, and read again on change and reload. */
  tokenFile?: string;
}

export interface AgentConfig {
  id: string;
  version: string;
  scopes: readonly string[];
}

export interface UsageConfig {
  /** `request`: ask the upstream for usage in streams when the client did not (and strip it back out). */
  streamUsage: 'request' | 'client';
}

export interface LimitsConfig {
  /** Request bodies above this get 413. */
  maxBodyBytes: number;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  concurrent?: number;
  usdPerDay?: number;
  /** The same limits for each task (x-warden-task) on its own; calls without a task id are not held to them. */
  perTask?: { requestsPerMinute?: number; tokensPerMinute?: number; usdPerDay?: number };
  /** Calls to tools with risk: irreversible that Warden executes (/tools, MCP tools/call), per hour. */
  irreversibleToolCallsPerHour?: number;
}

/** Which model calls a retry feature applies to; absent: every call. Any condition given may match. */
export interface CallSelector {
  header?: string;
  models?: readonly string[];
  routes?: readonly string[];
  tools?: readonly string[];
}

export interface RetriesConfig {
  timeouts: Timeouts;
  /** Transport attempts per upstream and model, the first included. */
  maxAttempts: number;
  backoff: { baseMs: number; capMs: number; maxRetryAfterMs: number };
  budget: { ratio: number; minRetries: number; windowMs: number };
  /** Tried in order after the call's own upstream; each entry has an upstream, a model, or both. */
  fallbacks: readonly { upstream?: string; model?: string }[];
  onStall: 'return_partial' | 'retry' | 'continue';
  confidence?: { method: 'logprobs' | 'self'; threshold: number; maxRetries: number; when?: CallSelector };
  parallel?: { n: number; select: 'majority' | 'confidence'; escalateBelowAgreement?: number; when?: CallSelector };
}

export interface ContextConfig {
  enabled: boolean;
  trigger: number;
  target: number;
  reserveOutputTokens: number;
  marginTokens: number;
  preserve: readonly { role?: string; pattern?: string; marker?: string }[];
  pinnedMaxTokens: number;
  toolResults: { keepLast: number };
  window: { minRecentMessages: number };
  memory: { enabled: boolean; topK: number; maxTokens: number };
  summarize: { enabled: boolean; model?: string; ratio: number; maxTokens: number; timeoutMs: number };
}

export type RuleAction = 'log' | 'block' | 'escalate';

/** Kinds of violation a rule can govern. */
export type RuleKind =
  | 'scope_violation' | 'unknown_tool' | 'invalid_arguments' | 'invalid_result' | 'fabricated_tool_result'
  | 'suspicious_tool_result' | 'sensitive_output' | 'limit_exceeded' | 'model_drift';

/** Every kind of violation: the rules' kinds, and approval_required, which always escalates. */
export type ViolationKind = RuleKind | 'approval_required';

export type RulesConfig = Readonly<Record<RuleKind, RuleAction>> & {
  /** How a blocked tool call in a model response reaches the agent. */
  readonly blockWith: 'message' | 'error';
};

export interface ToolConfig {
  name: string;
  description?: string;
  scope?: string;
  /** JSON Schemas (compiled by the runtime's tool catalogue). */
  args?: Readonly<Record<string, unknown>>;
  result?: Readonly<Record<string, unknown>>;
  http?: { url: string; method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; timeoutMs: number; headers: Readonly<Record<string, string>> };
  /** The MCP upstream that serves the tool, and the server's name for it. */
  mcp?: { server: string; tool: string };
  external: boolean;
  idempotent: boolean;
  retries: number;
  onFailure: { action: 'degrade' | 'error' | 'fallback'; fallback?: string; instruction?: string; noteToModel: boolean };
  approval: 'none' | 'human';
  suspicionThreshold: number;
  /** irreversible: its calls count against limits.irreversibleToolCallsPerHour. */
  risk: 'normal' | 'irreversible';
}

/** A peer this agent calls at /agents/{name}/*: its sidecar's inbound listener, and its agent id. */
export interface PeerConfig {
  name: string;
  url: string;
  /** The peer's agent.id, which tokens for it name as aud; default: its name here. */
  audience: string;
  /** Whole call, the peer's whole answer included. */
  timeoutMs: number;
}

/** A caller this agent accepts calls from: its sidecar's identity public keys (several while it rotates). */
export interface TrustConfig {
  agent: string;
  /** Inline keys: base64 SPKI DER (what `warden identity` prints), a bare base64 Ed25519 key, or PEM. */
  publicKeys: readonly string[];
  /** A file of keys (PEM blocks, or one base64 key a line); read at start and on every reload. */
  publicKeyFile?: string;
  /** The most this caller may lend for a call; absent: what its token carries (always cut to this agent's own). */
  scopes?: readonly string[];
}

/** Calls between agents, each through its own sidecar (README: Agent-to-agent boundaries). */
export interface AgentsConfig {
  peers: Readonly<Record<string, PeerConfig>>;
  trust: Readonly<Record<string, TrustConfig>>;
  /** This agent's own endpoint, where verified calls from peers go; absent: it takes none. */
  inbound?: { url: string; timeoutMs: number };
  /** Lifetime of the identity tokens this sidecar signs. */
  tokenTtlMs: number;
}

export interface EscalationConfig {
  /** How long a held call waits for a person, from when it was first held. */
  timeoutMs: number;
  /** fail: the call fails; unreviewed: a model answer goes out marked unreviewed (tool calls fail either way). */
  onTimeout: 'fail' | 'unreviewed';
  /** Where new escalations are POSTed; absent: no notification. */
  webhook?: string;
  webhookHeaders: Readonly<Record<string, string>>;
  webhookRetry: { attempts: number; baseMs: number; capMs: number };
}

/** What a sanitizer match becomes: masked, hashed (keyed HMAC-SHA-256), or refused. */
export type SanitizeAction = 'mask' | 'hash' | 'block';

export interface SanitizeConfig {
  /** Built-in detectors to run, in the policy's words (email, credit_card, …). */
  detectors: readonly string[];
  custom: readonly { name: string; pattern: string; maxLength?: number; ignoreCase: boolean; mask?: string }[];
  action: SanitizeAction;
  /** Per class, overriding `action`. */
  actions: Readonly<Record<string, SanitizeAction>>;
  /** Per recipient (x-warden-recipient): classes that pass unchanged, and actions of its own. */
  recipients: Readonly<Record<string, { allow: readonly string[]; actions: Readonly<Record<string, SanitizeAction>> }>>;
  responses: boolean;
  toolResults: boolean;
  prompts: boolean;
  /** Env var with the hash key; unset: a random key per process. */
  hashKeyEnv?: string;
}

export interface AuditConfig {
  enabled: boolean;
  /** strict: a response waits for its record's commit (synchronous=FULL); relaxed: it does not. */
  durability: 'strict' | 'relaxed';
  bodies: 'full' | 'none';
  maxBodyBytes: number;
  checkpoint: { everyRecords: number; everyMs: number };
  /** Dotted record paths encrypted with AES-256-GCM before hashing. */
  encrypt: readonly string[];
  mask: readonly { path: string; as: 'redact' | 'hmac' }[];
  /** Disk the log may use; absent: only the volume's free space limits it. */
  quotaBytes?: number;
  /** What new calls get when the log has no room: a 503 (block), or through unrecorded (failOpen). */
  onFull: 'block' | 'failOpen';
  /** How long records the collector acknowledged stay before they are pruned. */
  retainShippedMs: number;
}

export interface EvalsConfig {
  /** The pact file, resolved against the policy file's directory. */
  pact: string;
  /** A baseline file exported by `warden eval baseline`, resolved likewise. */
  baseline?: string;
  /** Between scheduled evaluations; 0: none. */
  everyMs: number;
  onModelChange: boolean;
  /** Base URL evaluations call; absent: the sidecar's own traffic listener. */
  target?: string;
  webhook?: string;
  webhookHeaders: Readonly<Record<string, string>>;
  remediate?: string;
  passive: { enabled: boolean; windowCalls: number; baselineCalls: number; alpha: number; minRateDelta: number; minRelativeShift: number };
}

export interface Policy {
  apiVersion: 'warden/v1';
  kind: 'Policy';
  agent: AgentConfig;
  mode: Mode;
  /** Absent: agents need no token to reach Warden. */
  auth?: AgentAuthConfig;
  upstreams: Readonly<Record<string, UpstreamConfig>>;
  models: Readonly<Record<string, ModelConfig>>;
  usage: UsageConfig;
  limits: LimitsConfig;
  retries: RetriesConfig;
  /** Sections later capabilities fill in; validated by the schema, read by their stages. */
  tools: Readonly<Record<string, ToolConfig>>;
  rules: RulesConfig;
  /** Absent: no sanitization. */
  sanitize?: SanitizeConfig;
  /** Absent: no windowing. */
  context?: ContextConfig;
  escalation: EscalationConfig;
  audit: AuditConfig;
  /** Absent: no behavioural pact. */
  evals?: EvalsConfig;
  /** Absent: this agent neither calls other agents nor takes their calls. */
  agents?: AgentsConfig;
  /** Where the policy came from: file path and SHA-256 of its bytes. */
  /** `variables`: the environment variables the file interpolates (the admin page hides their values). */
  source: { file: string; sha256: string; variables?: readonly string[] };
}
