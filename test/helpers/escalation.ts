// Shared by the escalation tests: the real `warden` CLI run as a child process, and an HTTP tool on
// loopback that records the arguments each held call is finally released with.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { ROOT, WARDEN_BIN } from './warden.ts';

const run = promisify(execFile);

/** The real CLI, asynchronously: the in-process sidecar must keep answering while it runs. */
export async function warden(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [WARDEN_BIN, ...args], { cwd: ROOT, timeout: 30_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

export interface JsonTool {
  url: string;
  /** Each request's parsed JSON body, in order of arrival. */
  received: unknown[];
  close(): Promise<void>;
}

/** An HTTP tool that records what reaches it, so a test can tell which arguments a person's decision let through. */
export async function startJsonTool(answer: string | ((args: any, n: number) => string)): Promise<JsonTool> {
  const received: unknown[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const args = JSON.parse(text);
      received.push(args);
      const body = typeof answer === 'string' ? answer : answer(args, received.length);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}
