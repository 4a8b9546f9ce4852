// What the demo's scenes share: the environment they run in, a plain HTTP call, and the check that
// fails a scene with what was expected.
import pino from 'pino';
import { request } from 'undici';
import { startSidecar, type Sidecar } from '../sidecar.ts';

export interface SceneEnv {
  trafficUrl: string;
  adminUrl: string;
  /** The sidecar's audit database. */
  auditPath: string;
  out(line?: string): void;
}

export interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json?: Record<string, any>;
}

export interface Scene {
  title: string;
  run(env: SceneEnv): Promise<string[]>;
}

export async function call(url: string, body: unknown, headers: Record<string, string> = {}, raw?: string): Promise<CallResult> {
  const res = await request(url, {
    method: body === undefined && raw === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.body.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

export async function usageOf(env: SceneEnv, task: string): Promise<string> {
  const u = (await call(`${env.adminUrl}/usage?task=${encodeURIComponent(task)}`, undefined)).json ?? {};
  return `tokens in/out ${u.inputTokens}/${u.outputTokens}, cost $${Number(u.costUsd).toFixed(6)} (task ${task})`;
}

export function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`expected ${what}`);
}


/** A sidecar for the demo: loopback ports the OS picks, no file watching, and a silent log (the demo prints its own story). */
export function startDemoSidecar(policyFile: string, dataDir: string): Promise<Sidecar> {
  return startSidecar({
    dataDir,
    policyFile,
    listen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    shutdownGraceMs: 2_000,
    watchPolicy: false,
    logger: pino({ level: process.env.WARDEN_LOG_LEVEL ?? 'silent' }),
  });
}
