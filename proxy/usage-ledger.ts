// Cost and tokens per agent and per task (x-warden-task), kept in memory for /usage. Task ids are
// unbounded user input, so they live here and never in metric labels; the oldest task is evicted first.
import type { Usage } from './canonical.ts';

export interface UsageTotals {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

const MAX_TASKS = 10_000;

function empty(): UsageTotals {
  return { calls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
}

function add(t: UsageTotals, usage: Usage | undefined, costUsd: number | undefined): void {
  t.calls += 1;
  t.inputTokens += usage?.inputTokens ?? 0;
  t.outputTokens += usage?.outputTokens ?? 0;
  t.costUsd += costUsd ?? 0;
}

export class UsageLedger {
  private readonly agents = new Map<string, UsageTotals>();
  // A Map iterates in insertion order; re-inserting on use makes it an LRU.
  private readonly tasks = new Map<string, UsageTotals & { agent: string }>();

  /** Adds one finished call. */
  record(agent: string, task: string | undefined, usage: Usage | undefined, costUsd: number | undefined): void {
    let a = this.agents.get(agent);
    if (!a) this.agents.set(agent, (a = empty()));
    add(a, usage, costUsd);
    if (task === undefined) return;
    let t = this.tasks.get(task);
    if (t) this.tasks.delete(task);
    else t = { ...empty(), agent };
    add(t, usage, costUsd);
    this.tasks.set(task, t);
    if (this.tasks.size > MAX_TASKS) this.tasks.delete(this.tasks.keys().next().value as string);
  }

  /** A JSON-ready snapshot, optionally for one task. */
  snapshot(task?: string): Record<string, unknown> {
    if (task !== undefined) return { task, ...(this.tasks.get(task) ?? empty()) };
    return { agents: Object.fromEntries(this.agents), tasks: Object.fromEntries(this.tasks) };
  }
}
