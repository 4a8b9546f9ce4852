// MCP at /mcp/{server}: a Streamable HTTP proxy that reads the JSON-RPC going through it. Requests and
// responses pass as they are (sessions, protocol headers, SSE), except where the policy speaks:
// tools/list answers show only the tools this agent may call; a tools/call the policy refuses (scope,
// arguments against the policy's schema and the server's own inputSchema) never reaches the server
// and gets a JSON-RPC error; a result must carry structuredContent that conforms when the tool has
// an outputSchema, and meet the policy's result schema; failures become the degradation protocol's
// structured result. Every result the agent receives goes into the tool ledger.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Policy } from '../../policies/types.ts';
import { captureBytes } from '../audit/call-record.ts';
import type { EscalationQueue } from '../escalation/queue.ts';
import { parseJson, readBody } from '../http/body.ts';
import type { CallTiming } from '../http/call-timing.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from '../http/headers.ts';
import { drained, wardenHeaders } from '../http/respond.ts';
import { parseFields, SseSplitter, type SseEvent } from '../http/sse.ts';
import type { UpstreamClient } from '../http/upstream-client.ts';
import type { Metrics } from '../metrics.ts';
import type { CallContext } from '../stage.ts';
import type { ToolCatalog } from './catalog.ts';
import { degradation, noteFor, type Degradation } from './degrade.ts';
import type { ToolLedger } from './ledger.ts';
import { scoreToolResult } from './signals.ts';
import { holdCalls, metricName, refuse, type HeldCall } from './mcp-gate.ts';
import { isResponse, isToolsCall, MAX_EVENT_BYTES, readAll, rpcError, textOf, textValue, tryParse, unpairable, type Id, type Json } from './mcp-wire.ts';
import { judgeAll, judgeCall, type Violation } from './violations.ts';
import type { Limiter } from '../limits/limiter.ts';
import { mcpRateLimited } from '../limits/tool-limits.ts';

const STAGE = 'mcp';

export interface McpInput {
  req: IncomingMessage;
  res: ServerResponse;
  call: CallContext;
  client: UpstreamClient;
  policy: Policy;
  catalog: ToolCatalog;
  ledger: ToolLedger;
  metrics: Metrics;
  /** Holds calls that need a person's approval; without it they are refused. */
  escalations?: EscalationQueue;
  /** Counts irreversible calls against their hourly limit; without it they are not limited. */
  limits?: Limiter;
  rest: string;
  timing: CallTiming;
  maxBodyBytes: number;
  signal: AbortSignal;
  release(): Promise<void>;
}


/** A tools/call in flight in this exchange, by JSON-RPC id. */
interface PendingCall {
  server: string;
  /** The server's name for the tool, and the policy's. */
  name: string;
  tool: string;
  args: unknown;
  /** The arguments the server got, when a person edited them on approval. */
  sent?: unknown;
}

/** Answers one request to an MCP server. */
export async function handleMcp(input: McpInput): Promise<void> {
  const { req, call, client, policy } = input;
  const method = req.method ?? 'GET';
  let body = method === 'POST' ? await readBody(req, input.maxBodyBytes) : undefined;
  const server = client.config.name;
  const methods = new Map<Id, string>();
  const pending = new Map<Id, PendingCall>();
  const headers = upstreamRequestHeaders(req.headers, { strip: client.stripHeaders, set: client.setHeaders, identity: true });
  if (body) {
    call.bodies.request = captureBytes(policy, body);
    const parsed = parseJson(body);
    const messages: Json[] = (Array.isArray(parsed) ? parsed : [parsed]).filter((m) => m && typeof m === 'object');
    const unjudgeable = unpairable(messages);
    if (unjudgeable) return answer(input, 400, rpcError(null, `[warden] ${unjudgeable}`, { type: 'invalid_request' }));
    // A client that calls tools without listing them first must not slip past the server's schemas.
    if (messages.some((m) => isToolsCall(m.method)) && !input.catalog.knowsServer(server)) await learnServerTools(input, server, headers);
    const refusals: Json[] = [];
    const held: HeldCall[] = [];
    for (const m of messages) {
      if (m.id === undefined || typeof m.method !== 'string') continue;
      // Lower case: the answer to a Tools/List is filtered like one to tools/list.
      methods.set(m.id, m.method.toLowerCase());
      if (!isToolsCall(m.method)) continue;
      // Not String(): a name like {"toString":1} would make it throw (a 500 for a malformed call).
      const name = typeof m.params?.name === 'string' ? m.params.name : '';
      const tool = input.catalog.mcpToolName(server, name);
      const args = m.params?.arguments ?? {};
      call.toolCall = { name: tool, target: 'mcp', outcome: 'ok' };
      const check = (a: unknown): Violation[] => {
        const { violations } = input.catalog.checkCall(tool, a, undefined, input.catalog.serverTool(server, name)?.input, call.agent.scopes);
        if (!input.catalog.knowsServer(server)) {
          violations.push({ kind: 'invalid_arguments', tool, message: `the server's tool schemas could not be read (tools/list failed), so the arguments cannot be checked` });
        }
        return violations;
      };
      const { blocked, escalated } = judgeCall(call, STAGE, check(args));
      if (blocked.length > 0) refusals.push(refuse(input, m.id, name, tool, blocked));
      else if (escalated.length > 0) held.push({ m, name, tool, args, escalated, check });
      else pending.set(m.id, { server, name, tool, args });
    }
    // Calls that need a person wait for one, unless the batch is refused anyway.
    if (refusals.length === 0 && held.length > 0) {
      for (const r of await holdCalls(input, held)) {
        if ('refusal' in r) refusals.push(r.refusal);
        else pending.set(r.held.m.id, { server, name: r.held.name, tool: r.held.tool, args: r.held.args, sent: r.args });
      }
      // The server gets exactly the arguments a person approved (holdCalls put edited ones in place).
      if (held.some((h) => h.edited)) body = Buffer.from(JSON.stringify(parsed));
    }
    // Irreversible calls are counted last, once nothing else refuses the batch: a refused batch runs nothing.
    if (refusals.length === 0) refusals.push(...mcpRateLimited(input, pending));
    if (refusals.length > 0) {
      // A refused call never reaches the server. In a batch the others are refused with it: the
      // server's answers and Warden's cannot be merged into one response in order.
      const others = messages.filter((m) => m.id !== undefined && !refusals.some((r) => r.id === m.id))
        .map((m) => rpcError(m.id, '[warden] not sent: the batch holds a tools/call the policy refused', { type: 'tool_blocked' }));
      return answer(input, 200, Array.isArray(parsed) ? [...refusals, ...others] : refusals[0]);
    }
  }

  if (body) headers['content-length'] = String(body.length);
  input.timing.upstreamStart = performance.now();
  const up = await client.send({ method, path: client.path(input.rest), headers, body, signal: input.signal });
  input.timing.status = up.status;
  const type = String(up.headers['content-type'] ?? '');
  const context: Exchange = { input, server, methods, pending };
  // JSON and SSE bodies may be rewritten, so their length is Warden's to frame (chunked), not the server's.
  const rewritable = type.includes('json') || type.startsWith('text/event-stream');
  input.res.writeHead(up.status, { ...clientResponseHeaders(up.headers, rewritable), ...wardenHeaders(call.id, call.actions) });
  if (type.startsWith('text/event-stream')) return streamEvents(context, up.body as AsyncIterable<Buffer>);
  const raw = await readAll(up.body, server);
  input.timing.upstreamEnd = performance.now();
  let out = raw;
  if (type.includes('json') && raw.length > 0 && pending.size + methods.size > 0) {
    const value = tryParse(raw);
    if (value !== undefined) {
      const messages = Array.isArray(value) ? value : [value];
      const rewritten = messages.map((m) => transform(context, m));
      if (rewritten.some((m, i) => m !== messages[i])) out = Buffer.from(JSON.stringify(Array.isArray(value) ? rewritten : rewritten[0]));
    }
  }
  call.bodies.response = captureBytes(policy, out);
  await input.release();
  input.timing.firstByte = performance.now();
  input.res.end(out);
}

interface Exchange {
  input: McpInput;
  server: string;
  methods: Map<Id, string>;
  pending: Map<Id, PendingCall>;
}

/**
 * Asks the server for its tools (in the agent's session, with its protocol headers) so the calls
 * that follow are held to the server's input and output schemas. Only the first page: a server with
 * paginated tools has the rest learned when the agent lists them.
 */
async function learnServerTools(input: McpInput, server: string, agentHeaders: Record<string, string | string[]>): Promise<void> {
  const id = `warden-${randomUUID()}`;
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params: {} }));
  try {
    const up = await input.client.send({ method: 'POST', path: input.client.path(input.rest), headers: { ...agentHeaders, 'content-length': String(body.length) }, body, signal: input.signal });
    const raw = (await readAll(up.body, server)).toString('utf8');
    if (up.status !== 200) return;
    const texts = String(up.headers['content-type'] ?? '').startsWith('text/event-stream')
      ? raw.split(/\r?\n\r?\n/).map((e) => parseFields(e).data).filter((d): d is string => d !== undefined)
      : [raw];
    for (const t of texts) {
      const m = tryParse(Buffer.from(t));
      if (m?.id === id && Array.isArray(m.result?.tools)) input.catalog.learnServerTools(server, m.result.tools.filter((d: Json) => typeof d?.name === 'string'));
    }
  } catch (err) {
    input.call.decisions.push({ stage: STAGE, decision: 'tools-list-failed', detail: { server, error: String((err as Error).message ?? err) } });
  }
}

/**
 * An SSE response (or the standalone GET stream): each JSON-RPC message is read and, if need be,
 * rewritten, and flows at once (a server's own requests, such as elicitation, and progress must not
 * wait). Only responses wait for the record's commit, and go out when the server ends the stream.
 */
async function streamEvents(x: Exchange, body: AsyncIterable<Buffer>): Promise<void> {
  const { input } = x;
  const splitter = new SseSplitter(MAX_EVENT_BYTES);
  const responses: Buffer[] = [];
  const seen: Buffer[] = [];
  /** A piece's bytes as they go to the agent (a message rewritten if need be), and whether it is a response. */
  function wire(piece: SseEvent | Buffer): { bytes: Buffer; response: boolean } {
    const out = Buffer.isBuffer(piece) ? { bytes: piece, response: false } : piece.data === undefined ? { bytes: piece.raw, response: false } : rewriteEvent(x, piece.raw, piece.data);
    if (seen.length < 64) seen.push(out.bytes);
    return out;
  }
  try {
    for await (const chunk of body) {
      for (const piece of splitter.push(chunk)) {
        const { bytes, response } = wire(piece);
        if (response) {
          responses.push(bytes);
          continue;
        }
        input.timing.firstByte ??= performance.now();
        if (!input.res.write(bytes)) await drained(input.res, input.client.config.timeouts.idleMs);
      }
    }
  } catch (err) {
    // The agent stopped reading or left, or the server's stream broke: the record keeps what came.
    input.call.bodies.response = captureBytes(input.policy, Buffer.concat(seen));
    throw err;
  }
  // A last event without its blank line is a message like any other (read, checked, rewritten), and
  // stays last, after the responses held back, as it came after them: nothing may follow its open line.
  const tail = splitter.endPiece();
  if (tail) responses.push(wire(tail).bytes);
  input.timing.upstreamEnd = performance.now();
  input.call.bodies.response = captureBytes(input.policy, Buffer.concat(seen));
  await input.release();
  input.res.end(responses.length > 0 ? Buffer.concat(responses) : undefined);
}

/** One SSE event with its data line replaced when the message in it changed (every other line kept), and whether it is a response. */
function rewriteEvent(x: Exchange, raw: Buffer, data: string): { bytes: Buffer; response: boolean } {
  const message = tryParse(Buffer.from(data));
  if (message === undefined || Array.isArray(message)) return { bytes: raw, response: false };
  const response = isResponse(message);
  const next = transform(x, message);
  if (next === message) return { bytes: raw, response };
  const lines = raw.toString('utf8').split(/\r\n|\r|\n/).filter((l) => l !== '' && !l.startsWith('data:') && l !== 'data');
  return { bytes: Buffer.from(`${[...lines, `data: ${JSON.stringify(next)}`].join('\n')}\n\n`), response };
}

/** A server message after the policy: the same object when nothing changed. */
function transform(x: Exchange, m: Json): Json {
  if (!isResponse(m)) return m;
  const method = x.methods.get(m.id);
  if (method === 'tools/list' && Array.isArray(m.result?.tools)) return filterList(x, m);
  const p = x.pending.get(m.id);
  if (!p) return m;
  x.pending.delete(m.id);
  return judgeResult(x, p, m);
}

/** tools/list: the agent sees only the tools it may call; the server's schemas are remembered. */
function filterList(x: Exchange, m: Json): Json {
  const { catalog, call } = x.input;
  const tools = m.result.tools as Json[];
  catalog.learnServerTools(x.server, tools.filter((t) => typeof t?.name === 'string') as { name: string }[]);
  const hidden = tools.filter((t) => !catalog.visible(catalog.mcpToolName(x.server, typeof t?.name === 'string' ? t.name : ''), call.agent.scopes));
  if (hidden.length === 0) return m;
  call.decisions.push({ stage: STAGE, decision: 'tools-filtered', detail: { server: x.server, removed: hidden.map((t) => t.name) } });
  call.actions.push(`tools-filtered:${hidden.length}`);
  return { ...m, result: { ...m.result, tools: tools.filter((t) => !hidden.includes(t)) } };
}

/** A tools/call result: schema checks, signals, the degradation protocol, the ledger. */
function judgeResult(x: Exchange, p: PendingCall, m: Json): Json {
  const { input } = x;
  const { call, catalog, policy } = input;
  const toolCall = call.toolCall!;
  const config = catalog.get(p.tool)?.config;
  let out = m;
  if (m.error) {
    toolCall.outcome = 'failed';
  } else if (m.result && typeof m.result === 'object') {
    const result = m.result as Json;
    const value = result.structuredContent ?? textValue(result);
    let failure: Degradation | undefined;
    if (result.isError === true) {
      toolCall.outcome = 'failed';
      if (config) failure = degradation(config, 'tool_unavailable', `the tool reported an error: ${textOf(result).slice(0, 300)}`, true);
    } else {
      const violations: Violation[] = [];
      const output = catalog.serverTool(x.server, p.name)?.output;
      if (output && result.structuredContent === undefined) {
        violations.push({ kind: 'invalid_result', tool: p.tool, message: `the tool declares an outputSchema but returned no structuredContent` });
      } else if (output && !output(result.structuredContent)) {
        violations.push({ kind: 'invalid_result', tool: p.tool, message: `structuredContent does not match the tool's outputSchema: ${(output.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ')}` });
      }
      violations.push(...catalog.checkResult(p.tool, value));
      const report = scoreToolResult(value, p.sent ?? p.args);
      if (report.signals.length > 0) toolCall.signals = report;
      if (config && report.score >= config.suspicionThreshold) {
        for (const s of report.signals) input.metrics.hallucinationFlags.inc({ tool: metricName(catalog, p.tool), signal: s.name });
        toolCall.verification = { rerun: false };
        violations.push({ kind: 'suspicious_tool_result', tool: p.tool, message: `the result looks invented (${report.signals.map((s) => s.name).join(', ')}; score ${report.score.toFixed(2)})` });
      }
      const blocked = judgeAll(call, STAGE, violations);
      if (blocked.length > 0) {
        toolCall.outcome = 'invalid_result';
        if (config) failure = degradation(config, 'tool_invalid_result', blocked.map((d) => d.message).join('; '), false);
        else out = rpcError(m.id, `[warden] the result of ${p.name} was withheld: ${blocked.map((d) => d.message).join('; ')}`, { type: 'tool_invalid_result' });
      }
    }
    if (failure) {
      // The agent's model reads the structured failure instead of the server's answer.
      out = { ...m, result: { content: [{ type: 'text', text: JSON.stringify(failure) }], isError: true } };
      if (config?.onFailure.noteToModel && call.session) input.ledger.addNote(policy.agent.id, call.session, noteFor(failure));
    }
    if (out.result) input.ledger.recordResult(policy.agent.id, call.session, p.tool, p.args, out.result, !failure);
  }
  input.metrics.toolCalls.inc({ tool: metricName(catalog, p.tool), outcome: toolCall.outcome });
  return out;
}

async function answer(input: McpInput, status: number, message: unknown): Promise<void> {
  const body = Buffer.from(JSON.stringify(message));
  input.call.bodies.response = captureBytes(input.policy, body);
  input.timing.status = status;
  await input.release();
  input.res.writeHead(status, { ...wardenHeaders(input.call.id, input.call.actions), 'content-type': 'application/json', 'content-length': body.length });
  input.res.end(body);
}

