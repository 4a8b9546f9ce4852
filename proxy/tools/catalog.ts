// The policy's tools, compiled once per load: who may call each (scope), what its arguments and
// result must look like (JSON Schema), and where it runs. Every route that sees a tool call (model
// responses, /tools, /mcp) asks the same questions here, so the answers cannot drift apart.
import type { ValidateFunction } from 'ajv';
import type { Policy, ToolConfig } from '../../policies/types.ts';
import { describeErrors, toolSchemaCompiler } from '../../policies/tool-schema.ts';
import { decide, type Violation } from './violations.ts';

export interface CatalogTool {
  config: ToolConfig;
  args?: ValidateFunction;
  result?: ValidateFunction;
}

/** What an MCP server said of one of its tools in tools/list: its schemas, compiled. */
export interface ServerTool {
  input?: ValidateFunction;
  output?: ValidateFunction;
}

export interface ArgumentsCheck {
  violations: Violation[];
  /** The parsed arguments, when they parse. */
  value?: unknown;
}

// Bounds the schemas learned from MCP servers, whatever they send.
const MAX_EXTERNAL_SCHEMAS = 2_000;

export class ToolCatalog {
  /** With no tools declared, tool checks are off: the policy has not said what is allowed. */
  readonly active: boolean;
  private readonly policy: Policy;
  private readonly tools = new Map<string, CatalogTool>();
  private readonly aliases = new Map<string, CatalogTool>();
  private readonly compile = toolSchemaCompiler();
  private compileServerSchema = toolSchemaCompiler();
  // Per MCP upstream, the tools its last tools/list described. Learned at run time, so a server's
  // new version is picked up by the next tools/list without a policy change.
  private readonly serverTools = new Map<string, Map<string, ServerTool>>();
  private readonly external = new Map<string, ValidateFunction | undefined>();

  constructor(policy: Policy) {
    this.policy = policy;
    for (const config of Object.values(policy.tools)) {
      this.tools.set(config.name, {
        config,
        args: config.args && this.compile(config.args),
        result: config.result && this.compile(config.result),
      });
    }
    for (const t of this.tools.values()) {
      const alias = t.config.mcp?.tool;
      if (alias && alias !== t.config.name && !this.tools.has(alias)) this.aliases.set(alias, t);
    }
    this.active = this.tools.size > 0;
  }

  /** A tool by its policy name, or by the name its MCP server gives it (which agents often show the model). */
  get(name: string): CatalogTool | undefined {
    return this.tools.get(name) ?? this.aliases.get(name);
  }

  /** The policy's name for a tool the model or an agent names either way. */
  canonicalName(name: string): string {
    return this.get(name)?.config.name ?? name;
  }

  /**
   * The policy's name for an MCP server's tool: the declared tool that targets it, else
   * `server/name`, which no declaration can match (names have no slash), so it is an unknown tool.
   */
  mcpToolName(server: string, name: string): string {
    for (const t of this.tools.values()) if (t.config.mcp?.server === server && t.config.mcp.tool === name) return t.config.name;
    return `${server}/${name}`;
  }

  /** Remembers an MCP server's tool definitions (from its tools/list answer). */
  learnServerTools(server: string, defs: readonly { name: string; inputSchema?: unknown; outputSchema?: unknown }[]): void {
    const known = this.serverTools.get(server) ?? new Map<string, ServerTool>();
    for (const d of defs) known.set(d.name, { input: this.compileExternal(d.inputSchema), output: this.compileExternal(d.outputSchema) });
    this.serverTools.set(server, known);
  }

  /** Whether a tools/list answer from this server has been seen since the policy loaded. */
  knowsServer(server: string): boolean {
    return this.serverTools.has(server);
  }

  serverTool(server: string, name: string): ServerTool | undefined {
    return this.serverTools.get(server)?.get(name);
  }

  private compileExternal(schema: unknown): ValidateFunction | undefined {
    if (!schema || typeof schema !== 'object') return undefined;
    // Every tools/list brings fresh objects; keyed by text, a schema compiles once (ajv's own cache
    // would keep every copy).
    const key = JSON.stringify(schema);
    if (this.external.has(key)) return this.external.get(key);
    if (this.external.size >= MAX_EXTERNAL_SCHEMAS) {
      // A fresh compiler drops every compiled schema with it (ajv's cache holds them otherwise).
      this.external.clear();
      this.compileServerSchema = toolSchemaCompiler();
    }
    let validate: ValidateFunction | undefined;
    try {
      validate = this.compileServerSchema(schema);
    } catch {
      validate = undefined; // a server's broken schema is the server's problem; the policy's own still applies
    }
    this.external.set(key, validate);
    return validate;
  }

  /**
   * Why the agent may not call `name` at all (undeclared, out of scope), or undefined. `scopes`: what
   * the call acts with (CallContext.agent.scopes), narrower than the policy's when the agent works
   * for another agent; default: the policy's.
   */
  accessViolation(name: string, callId?: string, scopes: readonly string[] = this.policy.agent.scopes): Violation | undefined {
    if (!this.active) return undefined;
    const tool = this.get(name);
    if (!tool) return { kind: 'unknown_tool', tool: name, callId, message: `"${name}" is not a tool this agent's policy declares` };
    const scope = tool.config.scope;
    if (scope && !scopes.includes(scope)) {
      const id = this.policy.agent.id;
      const why = this.policy.agent.scopes.includes(scope)
        ? `which agent ${id} holds but may not use here: the call is made for another agent, whose delegation does not carry it`
        : `which agent ${id} does not hold`;
      return { kind: 'scope_violation', tool: name, callId, message: `"${name}" needs scope "${scope}", ${why}` };
    }
    return undefined;
  }

  /** Whether a tool definition may be shown to the model (the tool list sent upstream, tools/list). */
  visible(name: string, scopes?: readonly string[]): boolean {
    const v = this.accessViolation(name, undefined, scopes);
    // A call a person may approve is shown: it is held when the agent runs it through Warden.
    return !v || decide(this.policy, v, 'model').action !== 'block';
  }

  /**
   * Checks one tool call: may it be called, do its arguments parse (a truncated stream is never read
   * as `{}`), and do they satisfy the policy's schema and `extra` (e.g. the MCP server's own).
   */
  checkCall(name: string, args: string | unknown, callId?: string, extra?: ValidateFunction, scopes?: readonly string[]): ArgumentsCheck {
    const violations: Violation[] = [];
    const access = this.accessViolation(name, callId, scopes);
    if (access) violations.push(access);
    else if (this.get(name)?.config.approval === 'human') {
      violations.push({ kind: 'approval_required', tool: name, callId, message: `"${name}" needs a person's approval (approval: human)` });
    }
    let value: unknown = args;
    if (typeof args === 'string') {
      try {
        value = args.trim() === '' ? {} : JSON.parse(args);
      } catch {
        violations.push({ kind: 'invalid_arguments', tool: name, callId, message: `the arguments are not valid JSON (truncated or malformed): ${preview(args)}` });
        return { violations };
      }
    }
    for (const validate of [this.get(name)?.args, extra]) {
      if (validate && !validate(value)) {
        violations.push({ kind: 'invalid_arguments', tool: name, callId, message: `the arguments do not match the tool's schema: ${describeErrors(validate.errors).join('; ')}` });
      }
    }
    return { violations, value };
  }

  /** Checks a tool's result against its declared schema. */
  checkResult(name: string, value: unknown, callId?: string): Violation[] {
    const validate = this.get(name)?.result;
    if (!validate || validate(value)) return [];
    return [{ kind: 'invalid_result', tool: name, callId, message: `the result does not match the tool's schema: ${describeErrors(validate.errors).join('; ')}` }];
  }
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
