// The degradation protocol: when a tool cannot give a trustworthy answer (it timed out, failed,
// returned something invalid, or the call was refused), the agent gets a structured result it can
// hand to its model as the tool's output. It says what happened, whether trying again may help, and
// what the model should do instead, so the model has no gap to fill with an invented answer.
import type { ToolConfig } from '../../policies/types.ts';

export type DegradationType = 'tool_unavailable' | 'tool_invalid_result' | 'tool_blocked';

export interface Degradation {
  error: {
    type: DegradationType;
    tool: string;
    retryable: boolean;
    message: string;
    instruction: string;
    /** For a call a person did not approve: WARDEN_ERR_ESCALATION_REJECTED or _TIMEOUT, and the escalation's id. */
    code?: string;
    escalation?: string;
    /** For a call a limit refused (code WARDEN_ERR_RATE_LIMITED): seconds until it may go. */
    retryAfterSeconds?: number;
  };
}

const DEFAULT_INSTRUCTIONS: Record<DegradationType, string> = {
  tool_unavailable: 'Tell the user this information is unavailable right now. Do not guess or invent what the tool would have returned.',
  tool_invalid_result: 'The tool\'s answer could not be trusted. Tell the user the information could not be verified. Do not use or guess its contents.',
  tool_blocked: 'This call is not allowed. Do not retry it or work around it; tell the user it cannot be done.',
};

/** The structured result for a tool that could not answer. */
export function degradation(tool: ToolConfig, type: DegradationType, message: string, retryable: boolean): Degradation {
  // The policy's own instruction speaks for the tool's failures; a refusal keeps the generic one,
  // because "the system is unavailable" would misstate why.
  const instruction = type !== 'tool_blocked' && tool.onFailure.instruction ? tool.onFailure.instruction : DEFAULT_INSTRUCTIONS[type];
  return { error: { type, tool: tool.name, retryable, message, instruction } };
}

/** The system note the next model request in the session carries (onFailure.noteToModel). */
export function noteFor(d: Degradation): string {
  return `[warden] The tool ${d.error.tool} could not answer (${d.error.type}: ${d.error.message}). ${d.error.instruction}`;
}
