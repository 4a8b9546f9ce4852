// `warden escalations list|show|approve|reject`: the human-review queue. It speaks to the sidecar's
// admin API (--admin, WARDEN_ADMIN_URL, default http://127.0.0.1:15101), so a decision wakes the held
// call at once; a decision there sends the admin token (--token, WARDEN_ADMIN_TOKEN or
// WARDEN_ADMIN_TOKEN_FILE) as `authorization: Bearer`. With --data-dir it decides on escalations.db
// directly, which needs the sidecar's data volume (the agent's container has none) and works with the
// sidecar stopped (a running sidecar notices within a quarter second while the call waits). Exit
// codes: 0 ok, 1 refused (unknown id, already decided, arguments that fail the tool's schema), 2 usage,
// an unreachable sidecar, or an admin token that is missing or wrong.
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { applyVerdict, type Verdict } from '../escalation/decide.ts';
import { escalationJson, EscalationStore, type EscalationState } from '../escalation/store.ts';
import { UsageError, WardenError } from '../errors.ts';
import { adminClient, Refused, type Json } from './admin-client.ts';

type Out = Pick<NodeJS.WriteStream, 'write'>;

const SUBCOMMANDS = ['list', 'show', 'approve', 'reject'];
const STATES = ['pending', 'approved', 'rejected', 'timed_out'];

function flags(args: string[]) {
  try {
    return parseArgs({
      args, strict: true, allowPositionals: true,
      options: {
        state: { type: 'string' }, limit: { type: 'string' }, args: { type: 'string' }, choice: { type: 'string' },
        by: { type: 'string' }, note: { type: 'string' }, admin: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' },
        token: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Where decisions go: the admin API, or the queue's file. */
interface Backend {
  list(state?: string, limit?: number): Promise<Json[]>;
  show(id: string): Promise<Json>;
  decide(id: string, verdict: Verdict): Promise<Json>;
  close(): void;
}


/** Runs `warden escalations <sub>` and returns the exit code. */
export async function escalationsCommand(argv: string[], stdout: Out, stderr: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (!SUBCOMMANDS.includes(sub ?? '')) throw new UsageError(`unknown escalations subcommand "${sub ?? ''}" (expected: ${SUBCOMMANDS.join(', ')})`);
  const { values: f, positionals } = flags(rest);
  const id = positionals[0];
  if (sub !== 'list' && (!id || positionals.length > 1)) throw new UsageError(`escalations ${sub} needs one escalation id (e.g. esc_k3j9x2m4p7qa)`);
  if (sub === 'list' && positionals.length > 0) throw new UsageError(`escalations list takes no id (use show ${positionals[0]})`);
  if (f.state && !STATES.includes(f.state)) throw new UsageError(`--state must be one of ${STATES.join(', ')} (got "${f.state}")`);
  if (f.limit !== undefined && !/^[1-9][0-9]*$/.test(f.limit)) throw new UsageError(`--limit must be a positive whole number (got "${f.limit}")`);
  const backend = f['data-dir'] ? fileBackend(f['data-dir']) : apiBackend(f.admin, f.token);
  try {
    if (sub === 'list') {
      const found = await backend.list(f.state, f.limit === undefined ? undefined : Number(f.limit));
      if (f.json) for (const e of found) stdout.write(`${JSON.stringify(e)}\n`);
      else stdout.write(table(found));
      return 0;
    }
    if (sub === 'show') {
      stdout.write(`${JSON.stringify(await backend.show(id), null, 2)}\n`);
      return 0;
    }
    const by = f.by ?? whoami();
    const verdict: Verdict = sub === 'approve'
      ? { state: 'approved', by, note: f.note, args: parseEdited(f.args), choice: parseChoice(f.choice) }
      : { state: 'rejected', by, note: f.note };
    if (sub === 'reject' && (f.args !== undefined || f.choice !== undefined)) throw new UsageError('escalations reject takes --by and --note only');
    const esc = await backend.decide(id, verdict);
    if (f.json) stdout.write(`${JSON.stringify(esc)}\n`);
    else stdout.write(`${esc.state} ${esc.id}${describeDecision(esc)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    stderr.write(`warden: ${err.message}\n`);
    return 1;
  } finally {
    backend.close();
  }
}

function parseEdited(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--args must be JSON, the tool's arguments as they should run (${(err as Error).message})`);
  }
}

function parseChoice(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`--choice must be a candidate's index, 0 for the first (got "${text}")`);
  return Number(text);
}

function whoami(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER;
  }
}

function describeDecision(esc: Json): string {
  const d = esc.decision ?? {};
  if (esc.kind === 'model_answer' && esc.state === 'approved') return ` (candidate ${d.choice})`;
  if (esc.state !== 'approved') return '';
  return ` (arguments sha256 ${String(d.args_hash).slice(0, 16)}…${d.edited ? ', edited' : ''})`;
}

function table(rows: Json[]): string {
  if (rows.length === 0) return 'no escalations\n';
  const now = Date.now();
  const cells = rows.map((e) => [
    e.id, e.state, e.kind, e.agent, e.tool ?? '-',
    e.state === 'pending' ? `${Math.max(0, Math.round((Date.parse(e.deadline) - now) / 1000))}s left` : String(e.decided_at ?? '').slice(0, 19),
    String(e.reason).slice(0, 80),
  ]);
  const head = ['ID', 'STATE', 'KIND', 'AGENT', 'TOOL', 'DEADLINE/DECIDED', 'REASON'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => String(c[i]).length)));
  return [head, ...cells].map((c) => c.map((v, i) => String(v).padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

function apiBackend(base: string | undefined, tokenFlag: string | undefined): Backend {
  const client = adminClient(base, tokenFlag, ', or decide on the file with --data-dir DIR');
  return {
    async list(state, limit) {
      const q = new URLSearchParams();
      if (state) q.set('state', state);
      if (limit) q.set('limit', String(limit));
      return (await client.get(`/escalations${q.size ? `?${q}` : ''}`)).escalations;
    },
    show: (id) => client.get(`/escalations/${encodeURIComponent(id)}`),
    decide: (id, v) => {
      const { state, ...body } = v;
      return client.post(`/escalations/${encodeURIComponent(id)}/${state === 'approved' ? 'approve' : 'reject'}`, body);
    },
    close() {},
  };
}

function fileBackend(dir: string): Backend {
  const path = join(resolve(dir), 'escalations.db');
  if (!existsSync(path)) throw new UsageError(`no escalation queue at ${path} (set --data-dir to the sidecar's WARDEN_DATA_DIR)`);
  const store = new EscalationStore(path);
  const refused = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof WardenError) throw new Refused(`${err.message} (${err.code})`);
      throw err;
    }
  };
  return {
    list: async (state, limit) => store.list(state as EscalationState | undefined, limit).map(escalationJson),
    show: async (id) => refused(() => {
      const esc = store.get(id);
      if (!esc) throw new Refused(`no escalation "${id}" (WARDEN_ERR_ESCALATION_NOT_FOUND)`);
      return escalationJson(esc);
    }),
    // Without the running policy, edited arguments are checked against the schema saved with the escalation.
    decide: async (id, v) => refused(() => escalationJson(applyVerdict(store, id, v))),
    close: () => store.close(),
  };
}
