import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
const ROOT = '/work/main/';
function start(args: string[], key: string, env = {}): Promise<any> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => { let buf = ''; const on = (d: Buffer) => { buf += d; for (const l of buf.split('\n')) { try { const i = JSON.parse(l); if (i[key]) { proc.stdout!.off('data', on); proc.stdout!.resume(); resolve({ proc, info: i }); } } catch {} } }; proc.stdout!.on('data', on); });
}
const fake = await start(['test/bench/fake-server.ts'], 'url');
const w = await start(['--cpu-prof', '--cpu-prof-dir=/tmp/cpuprof', 'bin/warden.js', 'proxy', '--policy', 'policies/examples/demo.yaml', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--no-watch'], 'trafficUrl', { WARDEN_DEMO_UPSTREAM: fake.info.url, WARDEN_DATA_DIR: mkdtempSync('/tmp/prof-') });
const BODY = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'system', content: 'You are a support agent.' }, { role: 'user', content: 'Where is my order ORD-123456? It was due on Monday.' }] });
const r = await autocannon({ url: `${w.info.trafficUrl}/v1/chat/completions`, method: 'POST', body: BODY, headers: { 'content-type': 'application/json' }, connections: 50, duration: 6 });
console.log('rps', r.requests.average);
w.proc.kill('SIGTERM'); await new Promise((res) => w.proc.once('exit', res)); fake.proc.kill('SIGKILL'); process.exit(0);
