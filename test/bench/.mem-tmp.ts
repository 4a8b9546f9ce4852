// Start fake upstream + warden with probe, load N calls, signal probe.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const ROOT = '/work/main/';
const OPTS = process.env.W_OPTS ?? '--max-semi-space-size=4';
const CALLS = Number(process.env.CALLS ?? 100000);
const POLICY = process.env.POLICY ?? 'policies/examples/demo.yaml';
const BODY = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'system', content: 'You are a support agent.' }, { role: 'user', content: 'Where is my order ORD-123456? It was due on Monday.' }] });
const kids: any[] = [];
process.on('exit', () => kids.forEach((c) => c.kill('SIGKILL')));
function start(args: string[], key: string, env: any = {}): Promise<any> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  kids.push(proc);
  return new Promise((res) => { let buf = ''; const on = (d: Buffer) => { buf += d; for (const l of buf.split('\n')) { try { const i = JSON.parse(l); if (i[key]) { proc.stdout!.off('data', on); proc.stdout!.resume(); return res({ proc, info: i }); } } catch {} } }; proc.stdout!.on('data', on); });
}
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const fake = await start(['test/bench/fake-server.ts'], 'url');
const out = '/tmp/wb/probe.out'; rmSync(out, { force: true });
const dd = mkdtempSync(join(tmpdir(), 'wm-'));
const target = process.env.TARGET ?? 'warden';
const w = target === 'bare'
  ? await start(['--expose-gc', '--import', '/tmp/wb/probe.mjs', 'test/bench/bare-proxy.ts', `${fake.info.url}/v1`], 'url', { NODE_OPTIONS: OPTS })
  : await start(['--expose-gc', '--import', '/tmp/wb/probe.mjs', 'bin/warden.js', 'proxy', '--policy', POLICY, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--no-watch'], 'trafficUrl', { WARDEN_DEMO_UPSTREAM: fake.info.url, NODE_OPTIONS: OPTS, WARDEN_DATA_DIR: dd });
const url = w.info.trafficUrl ?? w.info.url;
const sig = async (label: string) => { writeFileSync(out, `== ${label} rss(proc)=${rss(w.proc.pid).toFixed(1)}\n`, { flag: 'a' }); w.proc.kill('SIGUSR2'); await new Promise((r) => setTimeout(r, 500)); };
await sig('idle');
const t0 = Date.now();
const r = await autocannon({ url: `${url}/v1/chat/completions`, method: 'POST', body: BODY, connections: 50, amount: CALLS, headers: { 'content-type': 'application/json' } });
console.log('rps', r.requests.average, 'non2xx', r.non2xx, 'err', r.errors, 's', (Date.now() - t0) / 1000);
await sig(`after ${CALLS}`); w.proc.kill("SIGWINCH"); await new Promise((r) => setTimeout(r, 12000)); await sig("12s later"); w.proc.kill("SIGWINCH"); await new Promise((r) => setTimeout(r, 500));
console.log(readFileSync(out, 'utf8'));
process.exit(0);
