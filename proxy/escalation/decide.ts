// A person's decision on an escalation, checked and written: the one code path behind the admin API
// and `warden escalations` (which may also write the file directly, with the sidecar stopped).
// An approval of a tool call is bound to the exact arguments it approves: their canonical hash is
// stored with it, and the held call runs with those arguments and no others.
import type { ValidateFunction } from 'ajv';
import { describeErrors, toolSchemaCompiler } from '../../policies/tool-schema.ts';
import { EscalationDecidedError, EscalationNotFoundError, InvalidApprovalError } from '../errors.ts';
import { argsHash, type DecisionRecord, type Escalation, type EscalationStore } from './store.ts';

export interface ApproveInput {
  by?: string;
  note?: string;
  /** Tool call: arguments to run it with instead of the ones the agent sent. */
  args?: unknown;
  /** Model answer: which candidate (default 0, the jury's pick). */
  choice?: number;
}

export interface RejectInput {
  by?: string;
  note?: string;
}

export type Verdict = ({ state: 'approved' } & ApproveInput) | ({ state: 'rejected' } & RejectInput);

/** The tool's argument schema under the running policy, when the caller knows it. */
export type SchemaLookup = (tool: string) => ValidateFunction | undefined;

/** Checks a verdict against the escalation and writes it; throws 404, 409 or 400 (InvalidApprovalError). */
export function applyVerdict(store: EscalationStore, id: string, verdict: Verdict, schemaOf?: SchemaLookup, now = Date.now()): Escalation {
  // A decision that arrives after the deadline finds the call already timed out.
  store.expire(now);
  const esc = store.get(id);
  if (!esc) throw new EscalationNotFoundError(id);
  if (esc.state !== 'pending') throw new EscalationDecidedError(id, esc.state);
  const by = verdict.by || undefined;
  const note = verdict.note || undefined;
  const record: DecisionRecord = verdict.state === 'approved' ? { by, note, ...approval(esc, verdict, schemaOf) } : { by, note };
  if (!store.decide(id, verdict.state, record, now)) throw new EscalationDecidedError(id, store.get(id)?.state ?? 'decided');
  return store.get(id)!;
}

function approval(esc: Escalation, input: ApproveInput, schemaOf?: SchemaLookup): DecisionRecord {
  if (esc.kind === 'model_answer') {
    if (input.args !== undefined) throw new InvalidApprovalError(`escalation ${esc.id} holds a model answer: pick a candidate with choice, there are no arguments to edit`);
    const n = esc.candidates?.length ?? 0;
    const choice = input.choice ?? 0;
    if (!Number.isInteger(choice) || choice < 0 || choice >= n) throw new InvalidApprovalError(`choice must be a candidate's index, 0 to ${n - 1} (got ${input.choice})`);
    return { choice };
  }
  if (input.choice !== undefined) throw new InvalidApprovalError(`escalation ${esc.id} holds a tool call: edit its arguments with args, there is no choice to make`);
  const args = input.args === undefined ? esc.args : input.args;
  if (input.args !== undefined) {
    const validate = (esc.tool && schemaOf?.(esc.tool)) ?? compile(esc.argsSchema);
    if (validate && !validate(args)) {
      throw new InvalidApprovalError(`the edited arguments do not match ${esc.tool}'s schema: ${describeErrors(validate.errors).join('; ')}`);
    }
  }
  const hash = argsHash(args);
  return { args, argsHash: hash, edited: hash !== esc.argsHash };
}

/** The schema saved with the escalation, for a decision made without the running policy (the CLI on the file). */
function compile(schema: unknown): ValidateFunction | undefined {
  if (!schema || typeof schema !== 'object') return undefined;
  try {
    return toolSchemaCompiler()(schema);
  } catch {
    return undefined;
  }
}
