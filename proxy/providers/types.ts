// What a provider is, as data: how it authenticates, how it shapes errors, and which endpoints carry
// model calls (each with an adapter to the canonical form). Everything else on its routes passes through.
import type { Message, Request, Response, StreamEvent } from '../canonical.ts';
import type { WardenError } from '../errors.ts';

export type Json = Record<string, unknown>;

/** Maps one piece of a message's text; `kind` says whether it is ordinary text, a tool result, or the arguments of a tool call the model made (JSON text). */
export type TextMap = (text: string, kind: 'text' | 'tool-result' | 'tool-call') => string;

/** One parsed SSE event's payload and the canonical events it carries. */
export interface ParsedStreamEvent {
  data: Json;
  events: StreamEvent[];
}

/** A wire SSE event held back while a stage decides on the tool calls it carries. */
export interface HeldEvent {
  /** The event's exact bytes, blank-line terminator included. */
  raw: Buffer;
  event?: string;
  /** The data field (joined lines); undefined for comments and data-less events. */
  data?: string;
}

/** Translates one endpoint's wire format (e.g. OpenAI chat completions) to the canonical call and back. */
export interface EndpointAdapter {
  readonly name: string;
  /** Wire request → canonical; throws InvalidRequestError on a body that is not this endpoint's shape. */
  parseRequest(body: Json): Request;
  /** Writes a (changed) canonical request back into a copy of the wire body. */
  writeRequest(body: Json, req: Request): Json;
  parseResponse(body: Json): Response;
  writeResponse(body: Json, res: Response): Json;
  /** Parses one SSE event; undefined for events that carry no JSON (e.g. `[DONE]`). */
  parseStreamEvent(event: string | undefined, data: string): ParsedStreamEvent | undefined;
  /** True for the event that ends a successful stream ([DONE], message_stop, response.completed). */
  isTerminal(event: string | undefined, data: string): boolean;
  /** Writes changed canonical events back into the event's payload. */
  writeStreamEvent(parsed: ParsedStreamEvent, events: readonly StreamEvent[]): Json;
  /**
   * Like writeStreamEvent, for events that may come back with content the wire event cannot carry:
   * text or arguments a stage released before a channel's closing event (an Anthropic
   * content_block_stop, a Responses .done event). Returns the payloads to send in order, the event's
   * own last. Absent: everything fits in the one payload writeStreamEvent writes.
   */
  writeStreamEvents?(parsed: ParsedStreamEvent, events: readonly StreamEvent[]): Json[];
  /** The payload field that numbers stream events (Responses: sequence_number); events Warden adds shift the later numbers. */
  readonly streamSequence?: string;
  /**
   * Rewrites the text a request message carries, in its wire object too, so writeRequest sends the
   * change: text parts (`text`) and tool-result text (`tool-result`); images and other parts stay.
   * Returns the message itself when `map` changed nothing.
   */
  mapMessageText?(m: Message, map: TextMap): Message;
  /** The finish reason of a response that ends without tool calls (stop, end_turn), when it has one. */
  readonly stopReason?: string;
  /** How its requests are counted for context windowing (tiktoken, or the calibrated estimate). */
  readonly tokenizer?: 'openai' | 'anthropic';
  /**
   * Rewrites a held stream tail (from the first tool-call event to the end) so that each tool call
   * at a `blocked` index (the canonical index: OpenAI's tool_calls index, Anthropic's content block
   * index, the Responses API's output_index) becomes assistant text saying it was refused, and the
   * rest keep flowing as the SDK expects: indices stay consistent, and a response left with no tool
   * call finishes as a plain answer. Absent for endpoints without tool calls.
   */
  rewriteToolCalls?(held: readonly HeldEvent[], blocked: ReadonlyMap<number, string>): Buffer[];
  /** Token logprobs, when the endpoint offers them (confidence scores). */
  readonly logprobs?: LogprobSupport;
  /** A fresh tracker for one stream, so a stalled stream can be ended or continued cleanly. */
  streamTracker?(): StreamTracker;
}

export interface EndpointRoute {
  method: string;
  /** Matched against the end of the path after the mount prefix, so `/v1/chat/completions` and `/chat/completions` both match. */
  suffix: string;
  adapter: EndpointAdapter;
}

export interface ProviderSpec {
  readonly name: string;
  /** Where the upstream credential goes by default. */
  readonly auth: { header: string; scheme: string };
  /** Headers an agent may carry its own credential in; stripped unless the upstream allows passthrough. */
  readonly credentialHeaders: readonly string[];
  readonly endpoints: readonly EndpointRoute[];
  /** The provider's own error body for an error Warden produces. */
  errorBody(err: WardenError): string;
  /** An SSE event that ends a stream with an error, in the provider's own shape. */
  streamErrorEvent(err: WardenError): string;
  /** Its streams may stay silent for long (MCP's server-to-client stream): no idle timeout. */
  readonly quietStreams?: boolean;
  /** Statuses of its own, beyond HTTP's 408/429/5xx, that mean "try again later" (Anthropic's 529 overloaded). */
  readonly retryableStatuses?: readonly number[];
  /** How Warden itself asks this provider a one-shot question (the context summarizer). */
  readonly ownCall?: OwnCall;
}

export interface OwnCall {
  /** Path relative to the upstream's base URL; a model-call endpoint, so its adapter reads the answer. */
  path: string;
  headers: Readonly<Record<string, string>>;
  body(model: string, system: string, user: string, maxTokens: number): Json;
}

/** How an endpoint offers token logprobs (for confidence scores), as data. */
export interface LogprobSupport {
  /** Whether the agent asked for logprobs itself (then they stay in its response). */
  asked(body: Json): boolean;
  /** The request body, asking for logprobs. */
  ask(body: Json): Json;
  /** The answer's token logprobs, from a whole response or one stream event's payload. */
  ofResponse(body: Json): number[];
  ofEvent(data: Json): number[];
  /** Removes the logprobs the agent did not ask for, in place. */
  strip(body: Json): void;
  stripEvent(data: Json): void;
}

/** Follows one stream as it passes to the client, so it can be ended or continued cleanly if the upstream stalls. */
export interface StreamTracker {
  /** Sees each event that went to the client, in order (data parsed as JSON; undefined for non-JSON data such as [DONE]). */
  observe(event: string | undefined, data: Json | undefined): void;
  /** True once the stream's terminal event has been observed. */
  readonly finished: boolean;
  /**
   * The SSE bytes that end the stream as a finished but truncated response: whatever is open is closed
   * (content blocks, output items, tool-call arguments left as they are), the finish reason is the
   * provider's "cut short" one (chat: finish_reason "length"; Anthropic: stop_reason "max_tokens";
   * Responses: a `response.incomplete` event with incomplete_details.reason "max_output_tokens"), and the
   * closing event carries `warden: note` as an extra top-level JSON field that SDKs ignore.
   */
  close(note: Json): Buffer;
  /**
   * Continue-by-prefill, for APIs that accept a trailing assistant message as a prefill (Anthropic
   * messages). Given the original request body, returns the body for the continuation call and a
   * splicer for its SSE events; undefined when the stream cannot be continued (it stalled inside a
   * tool_use or thinking block, no text yet, or the API has no prefill).
   */
  continuation?(requestBody: Json): Continuation | undefined;
}

export interface Continuation {
  body: Json;
  /** Maps one event of the continuation's stream into the client's stream: the bytes to send (possibly several events), or null to drop it. */
  splice(event: string | undefined, data: string): Buffer | null;
}
