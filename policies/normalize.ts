// A schema-valid policy document → the frozen Policy the runtime reads, with every default written
// here once, with its unit. Also the checks a schema cannot express (cross-references).
import { dirname, resolve } from 'node:path';
import { agentsConfig, agentsProblems } from './agents.ts';
import { retriesConfig, retryProblems } from './retries.ts';
import { sanitizeConfig, sanitizeProblems } from './sanitize.ts';
import type { AuditConfig, ContextConfig, EscalationConfig, EvalsConfig, ModelConfig, Policy, RulesConfig, Timeouts, ToolConfig, UpstreamConfig, UpstreamKind } from './types.ts';
import { schemaProblem } from './tool-schema.ts';
import type { Path } from './yaml-source.ts';

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({
  connectMs: 5_000,
  firstTokenMs: 30_000,
  idleMs: 20_000,
  totalMs: 300_000,
});
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024; // 10 MiB
export const DEFAULT_AUDIT_MAX_BODY_BYTES = 1024 * 1024; // 1 MiB
export const RESEARCH_AUDIT_MAX_BODY_BYTES = 16 * 1024 * 1024; // 16 MiB
export const DEFAULT_CHECKPOINT = Object.freeze({ everyRecords: 1_000, everyMs: 10_000 });
export const DEFAULT_RETAIN_SHIPPED = '7d';

const UNITS: Record<string, number> = { B: 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1024 ** 2, GB: 1e9, GiB: 1024 ** 3 };

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** 15m → 900000; a number is already milliseconds. */
export function parseDuration(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(v)!;
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

/** 64KiB → 65536; a number is already bytes. */
export function parseBytes(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)$/.exec(v)!;
  return Math.floor(Number(m[1]) * UNITS[m[2]]);
}

export interface SemanticProblem {
  path: Path;
  message: string;
}

type Raw = Record<string, any>;

function timeouts(base: Timeouts, over: Partial<Timeouts> | undefined): Timeouts {
  return { ...base, ...over };
}

function upstream(name: string, raw: Raw, defaults: Timeouts): UpstreamConfig {
  const provider: UpstreamKind = raw.provider ?? (name === 'anthropic' ? 'anthropic' : 'openai');
  return {
    name,
    baseUrl: raw.baseUrl,
    provider,
    apiKeyEnv: raw.apiKeyEnv,
    apiKeyFile: raw.apiKeyFile,
    auth: raw.auth && { header: String(raw.auth.header).toLowerCase(), scheme: raw.auth.scheme ?? '' },
    passthroughAuth: raw.passthroughAuth ?? false,
    headers: Object.fromEntries(Object.entries(raw.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    timeouts: timeouts(defaults, raw.timeouts),
  };
}

function audit(raw: Raw | undefined, mode: Policy['mode']): AuditConfig {
  const a = raw ?? {};
  return {
    enabled: a.enabled ?? true,
    // Enforce mode promises that no call goes unrecorded; the other modes trade that for latency.
    durability: a.durability ?? (mode === 'enforce' ? 'strict' : 'relaxed'),
    bodies: a.bodies ?? 'full',
    // Research mode logs in full: whole bodies up to 16 MiB, unless the policy caps them itself.
    maxBodyBytes: parseBytes(a.maxBodyBytes ?? (mode === 'research' ? RESEARCH_AUDIT_MAX_BODY_BYTES : DEFAULT_AUDIT_MAX_BODY_BYTES)),
    checkpoint: { ...DEFAULT_CHECKPOINT, ...a.checkpoint },
    encrypt: a.encrypt ?? [],
    mask: (a.mask ?? []).map((m: string | { path: string; as?: 'redact' | 'hmac' }) => (typeof m === 'string' ? { path: m, as: 'redact' } : { path: m.path, as: m.as ?? 'redact' })),
    quotaBytes: a.quotaBytes === undefined ? undefined : parseBytes(a.quotaBytes),
    onFull: a.onFull ?? 'block',
    retainShippedMs: parseDuration(a.retainShipped ?? DEFAULT_RETAIN_SHIPPED),
  };
}

function context(c: Raw): ContextConfig {
  return {
    enabled: c.enabled ?? true,
    trigger: c.trigger ?? 0.8,
    target: c.target ?? 0.5,
    reserveOutputTokens: c.reserveOutputTokens ?? 4096,
    marginTokens: c.marginTokens ?? 256,
    preserve: c.preserve ?? [],
    pinnedMaxTokens: c.pinnedMaxTokens ?? 2000,
    toolResults: { keepLast: c.toolResults?.keepLast ?? 3 },
    window: { minRecentMessages: c.window?.minRecentMessages ?? 4 },
    memory: { enabled: c.memory?.enabled ?? true, topK: c.memory?.topK ?? 5, maxTokens: c.memory?.maxTokens ?? 1000 },
    summarize: {
      enabled: c.summarize?.enabled ?? true, model: c.summarize?.model, ratio: c.summarize?.ratio ?? 0.2,
      maxTokens: c.summarize?.maxTokens ?? 800, timeoutMs: c.summarize?.timeoutMs ?? 20_000,
    },
  };
}

export const DEFAULT_TOOL_TIMEOUT_MS = 10_000;
export const DEFAULT_TOOL_RETRIES = 2;
export const DEFAULT_SUSPICION_THRESHOLD = 0.5;

function tool(name: string, t: Raw): ToolConfig {
  return {
    name,
    description: t.description,
    scope: t.scope,
    args: t.args,
    result: t.result,
    http: t.http && {
      url: t.http.url, method: t.http.method ?? 'POST', timeoutMs: t.http.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
      headers: Object.fromEntries(Object.entries(t.http.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    },
    mcp: t.mcp && { server: t.mcp.server, tool: t.mcp.tool ?? name },
    external: t.external ?? false,
    idempotent: t.idempotent ?? false,
    retries: t.retries ?? DEFAULT_TOOL_RETRIES,
    onFailure: { action: t.onFailure?.action ?? 'degrade', fallback: t.onFailure?.fallback, instruction: t.onFailure?.instruction, noteToModel: t.onFailure?.noteToModel ?? true },
    approval: t.approval ?? 'none',
    suspicionThreshold: t.suspicionThreshold ?? DEFAULT_SUSPICION_THRESHOLD,
    risk: t.risk ?? 'normal',
  };
}

export const DEFAULT_ESCALATION_TIMEOUT_MS = 600_000; // 10 min

function escalation(e: Raw | undefined): EscalationConfig {
  const r = e?.webhookRetry ?? {};
  return {
    timeoutMs: e?.timeoutMs ?? DEFAULT_ESCALATION_TIMEOUT_MS,
    onTimeout: e?.onTimeout ?? 'fail',
    // "${ESCALATION_WEBHOOK:-}" interpolates to "" when unset: that means no webhook.
    webhook: e?.webhook ? e.webhook : undefined,
    webhookHeaders: Object.fromEntries(Object.entries(e?.webhookHeaders ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    webhookRetry: { attempts: r.attempts ?? 8, baseMs: r.baseMs ?? 1_000, capMs: r.capMs ?? 300_000 },
  };
}

function evals(e: Raw, policyFile: string): EvalsConfig {
  const p = e.passive ?? {};
  const dir = dirname(policyFile);
  return {
    pact: resolve(dir, e.pact),
    baseline: e.baseline ? resolve(dir, e.baseline) : undefined,
    everyMs: parseDuration(e.every ?? '15m'),
    onModelChange: e.onModelChange ?? true,
    target: e.target || undefined,
    webhook: e.webhook || undefined,
    webhookHeaders: Object.fromEntries(Object.entries(e.webhookHeaders ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
    remediate: e.remediate || undefined,
    passive: {
      enabled: p.enabled ?? true, windowCalls: p.windowCalls ?? 500, baselineCalls: p.baselineCalls ?? 500,
      alpha: p.alpha ?? 0.01, minRateDelta: p.minRateDelta ?? 0.05, minRelativeShift: p.minRelativeShift ?? 0.2,
    },
  };
}

// Blocking is the default for what a tool catalogue exists to stop; pattern signals only log,
// because they are hints, never proof.
export const DEFAULT_RULES: RulesConfig = Object.freeze({
  scope_violation: 'block', unknown_tool: 'block', invalid_arguments: 'block', invalid_result: 'block',
  fabricated_tool_result: 'block', suspicious_tool_result: 'log', sensitive_output: 'block',
  limit_exceeded: 'block', model_drift: 'log', blockWith: 'message',
});

function rules(raw: Raw | undefined): RulesConfig {
  return { ...DEFAULT_RULES, ...raw };
}

/** Problems the schema cannot see: values that are each valid but do not fit together. */
export function semanticProblems(doc: Raw): SemanticProblem[] {
  const out: SemanticProblem[] = [...retryProblems(doc), ...agentsProblems(doc), ...sanitizeProblems(doc)];
  for (const [name, u] of Object.entries<Raw>(doc.upstreams ?? {})) {
    if (u.apiKeyEnv && u.apiKeyFile) out.push({ path: ['upstreams', name, 'apiKeyFile'], message: `upstreams.${name}: set apiKeyEnv or apiKeyFile, not both` });
    try {
      new URL(u.baseUrl);
    } catch {
      out.push({ path: ['upstreams', name, 'baseUrl'], message: `upstreams.${name}.baseUrl is not a valid URL (got "${u.baseUrl}")` });
    }
    const t = { ...doc.retries?.timeouts, ...u.timeouts };
    if (t.totalMs !== undefined && t.firstTokenMs !== undefined && t.totalMs < t.firstTokenMs) {
      out.push({ path: ['upstreams', name, 'timeouts'], message: `upstreams.${name}: totalMs (${t.totalMs}) is shorter than firstTokenMs (${t.firstTokenMs})` });
    }
  }
  if (doc.auth && !doc.auth.tokenEnv === !doc.auth.tokenFile) {
    out.push({ path: ['auth'], message: 'auth: set tokenEnv or tokenFile (exactly one): where the token agents present to warden lives' });
  }
  if (doc.context && (doc.context.target ?? 0.5) >= (doc.context.trigger ?? 0.8)) {
    out.push({ path: ['context', 'target'], message: `context.target (${doc.context.target ?? 0.5}) must be below context.trigger (${doc.context.trigger ?? 0.8}), or trimming would happen every turn` });
  }
  for (const [i, rule] of (doc.context?.preserve ?? []).entries()) {
    if (rule.pattern === undefined) continue;
    try {
      new RegExp(rule.pattern, 'iu');
    } catch (err) {
      out.push({ path: ['context', 'preserve', i, 'pattern'], message: `context.preserve[${i}].pattern is not a valid regular expression: ${(err as Error).message}` });
    }
  }
  // Enforce mode's promise is that no call goes unrecorded; failing open would break it silently.
  if (doc.audit?.onFull === 'failOpen' && (doc.mode ?? 'enforce') === 'enforce') {
    out.push({ path: ['audit', 'onFull'], message: 'audit.onFull: failOpen is for monitor and research modes; enforce mode never lets a call through unrecorded' });
  }
  for (const key of ['webhook', 'remediate', 'target'] as const) {
    const url = doc.evals?.[key];
    if (url && !/^https?:\/\/[^/]/.test(url)) out.push({ path: ['evals', key], message: `evals.${key} must be an http(s) URL or empty (got "${url}")` });
  }
  const webhook = doc.escalation?.webhook;
  if (webhook && !/^https?:\/\/[^/]/.test(webhook)) {
    out.push({ path: ['escalation', 'webhook'], message: `escalation.webhook must be an http(s) URL or empty (got "${webhook}")` });
  }
  for (const [name, tool] of Object.entries<Raw>(doc.tools ?? {})) {
    if (tool.http && tool.mcp) out.push({ path: ['tools', name, 'mcp'], message: `tools.${name}: a tool has an http target or an mcp target, not both` });
    if (tool.mcp && doc.upstreams?.[tool.mcp.server]?.provider !== 'mcp') {
      out.push({ path: ['tools', name, 'mcp', 'server'], message: `tools.${name}.mcp.server: "${tool.mcp.server}" is not an upstream with provider: mcp` });
    }
    if (tool.onFailure?.action === 'fallback' && !doc.tools?.[tool.onFailure.fallback]) {
      out.push({ path: ['tools', name, 'onFailure'], message: `tools.${name}.onFailure: action fallback needs fallback: the name of another declared tool` });
    }
    // Warden limits irreversible calls where it executes them; one it never sees would be a limit in name only.
    if (tool.risk === 'irreversible' && !tool.http && !tool.mcp && doc.limits?.irreversibleToolCallsPerHour !== undefined) {
      out.push({ path: ['tools', name, 'risk'], message: `tools.${name}: limits.irreversibleToolCallsPerHour counts the calls Warden executes, and this tool has no http or mcp target` });
    }
    for (const key of ['args', 'result'] as const) {
      const problem = tool[key] === undefined ? undefined : schemaProblem(tool[key]);
      if (problem) out.push({ path: ['tools', name, key], message: `tools.${name}.${key} is not a valid JSON Schema: ${problem}` });
    }
  }
  return out;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** Builds the runtime Policy from a document that passed the schema and the semantic checks. */
export function normalizePolicy(doc: Raw, source: Policy['source']): Policy {
  const retryTimeouts = timeouts(DEFAULT_TIMEOUTS, doc.retries?.timeouts);
  const models: Record<string, ModelConfig> = {};
  for (const [name, m] of Object.entries<Raw>(doc.models ?? {})) models[name] = { name, ...m };
  const limits = doc.limits ?? {};
  const mode: Policy['mode'] = doc.mode ?? 'enforce';
  return deepFreeze({
    apiVersion: 'warden/v1',
    kind: 'Policy',
    agent: { id: doc.agent.id, version: String(doc.agent.version), scopes: doc.agent.scopes ?? [] },
    mode,
    auth: doc.auth && { tokenEnv: doc.auth.tokenEnv, tokenFile: doc.auth.tokenFile },
    upstreams: Object.fromEntries(Object.entries<Raw>(doc.upstreams).map(([n, u]) => [n, upstream(n, u, retryTimeouts)])),
    models,
    usage: { streamUsage: doc.usage?.streamUsage ?? 'request' },
    limits: { ...limits, maxBodyBytes: parseBytes(limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES) },
    retries: retriesConfig(doc.retries, retryTimeouts),
    tools: Object.fromEntries(Object.entries<Raw>(doc.tools ?? {}).map(([n, t]) => [n, tool(n, t)])),
    rules: rules(doc.rules),
    sanitize: sanitizeConfig(doc.sanitize),
    context: doc.context && context(doc.context),
    escalation: escalation(doc.escalation),
    audit: audit(doc.audit, mode),
    evals: doc.evals && evals(doc.evals, source.file),
    agents: agentsConfig(doc.agents),
    source,
  });
}
