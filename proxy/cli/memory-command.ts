// `warden memory list|search|delete --session ID`: a session's context memory, read from (or erased
// in) $WARDEN_DATA_DIR/memory.db directly, so it works with the sidecar stopped or running.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryStore } from '../context/memory.ts';
import { UsageError } from '../errors.ts';

export async function memoryCommand(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const [sub, ...rest] = args;
  const { values: f } = parseArgs({
    args: rest,
    options: { session: { type: 'string' }, agent: { type: 'string' }, query: { type: 'string' }, 'data-dir': { type: 'string' }, limit: { type: 'string' } },
  });
  if (!['list', 'search', 'delete'].includes(sub ?? '')) throw new UsageError(`unknown memory subcommand "${sub ?? ''}" (expected: list, search, delete)`);
  if (!f.session || !f.agent) throw new UsageError(`memory ${sub} needs --agent ID --session ID`);
  if (sub === 'search' && !f.query) throw new UsageError('memory search needs --query TEXT');
  const path = join(resolve(f['data-dir'] ?? process.env.WARDEN_DATA_DIR ?? '.warden'), 'memory.db');
  if (!existsSync(path)) throw new UsageError(`no context memory at ${path} (set --data-dir or WARDEN_DATA_DIR)`);
  const store = new MemoryStore(path);
  try {
    const limit = Number(f.limit ?? 100) || 100;
    if (sub === 'delete') {
      stdout.write(`${JSON.stringify({ agent: f.agent, session: f.session, erased: store.eraseDurably(f.agent, f.session) })}\n`);
      return 0;
    }
    const found = sub === 'search' ? store.recall(f.agent, f.session, f.query!, limit) : store.list(f.agent, f.session, limit);
    for (const m of found) stdout.write(`${JSON.stringify(m)}\n`);
    return 0;
  } finally {
    store.close();
  }
}
