// `npm run bench`: throughput and added latency of Warden (policies/examples/demo.yaml, audit log on
// with strict durability) against the same fake upstream called directly, through the thinnest undici
// pass-through, and through Warden with its audit log off, measured in one run with the targets
// interleaved round by round, every other round in reverse order (this machine is noisy); then
// resident memory after 100,000 calls.
// Prints a Markdown table and writes test/bench/results.json.
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MEMORY_CALLS = Number(process.env.BENCH_MEMORY_CALLS ?? 100_000);
const BODY = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'system', content: 'You are a support agent.' }, { role: 'user', content: 'Where is my order ORD-123456? It was due on Monday.' }] });

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

const scratch = mkdtempSync(join(tmpdir(), 'warden-bench-'));
// Children's stdout in memory (tmpfs) where there is one, so that Warden's log never shares the disk
// journal with its audit log's fsyncs, as a container's stdout does not.
const stdoutDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'warden-bench-stdout-'));
// Each run writes ~600 MB of audit log to disk and ~250 MB of Warden's log to memory: both removed
// when the bench ends, however it ends.
process.once('exit', () => [scratch, stdoutDir].forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/**
 * Starts a child process and resolves with the first JSON line it prints that has `key`. Its stdout
 * goes to a file, as a container's goes to the runtime's log driver: Warden logs a line per call, and
 * read through a pipe here those lines would cost the load generator, which shares this process, time
 * during Warden's runs only. Warden still pays for formatting and writing them.
 */
async function start(args: string[], key: string, env: NodeJS.ProcessEnv = {}): Promise<{ proc: ChildProcess; info: Record<string, string> }> {
  const outPath = join(stdoutDir, `${children.length}.log`);
  const out = openSync(outPath, 'w');
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', out, 'inherit'] });
  closeSync(out);
  children.push(proc);
  let exit: string | undefined;
  proc.once('exit', (code, signal) => { exit = `${args.join(' ')} exited with ${code ?? signal}`; });
  const head = Buffer.alloc(64 * 1024);
  for (const deadline = performance.now() + 30_000; performance.now() < deadline;) {
    // The ready line comes within the first few lines, long before the log grows.
    const fd = openSync(outPath, 'r');
    const n = readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    for (const line of head.toString('utf8', 0, n).split('\n')) {
      try {
        const info = JSON.parse(line);
        if (info[key]) return { proc, info };
      } catch { /* partial or non-JSON line */ }
    }
    if (exit) throw new Error(exit);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${args.join(' ')} printed no ${key} within 30 s`);
}

async function stop(proc: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}

async function load(url: string, connections: number, seconds: number, amount?: number) {
  const result = await autocannon({
    url: `${url}/v1/chat/completions`, method: 'POST', body: BODY, connections, pipelining: 1,
    headers: { 'content-type': 'application/json' }, ...(amount ? { amount } : { duration: seconds }),
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, total: result.requests.total };
}

/** Sequential calls on one keep-alive connection, timed with performance.now() (autocannon rounds to whole ms). */
async function latency(url: string, seconds: number) {
  const client = new Client(url, { keepAliveTimeout: 30_000 });
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    const res = await client.request({ path: '/v1/chat/completions', method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${url}: status ${res.statusCode}`);
    times.push(performance.now() - t0);
  }
  await client.close();
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length * 0.5)], p99: times[Math.floor(times.length * 0.99)], total: times.length };
}

async function auditRecords(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return [...text.matchAll(/^warden_audit_records_total\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** The resident set split as the kernel counts it: anonymous (heaps, V8 pages, WASM memory) vs file-backed (the node binary, libraries), in MB. */
async function rssPartsOf(pid: number): Promise<{ anonMB: number; fileMB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { anonMB: kb('RssAnon') / 1024, fileMB: kb('RssFile') / 1024 };
}

// Warden runs with the Node flags its image sets, as in production: NODE_OPTIONS in the Dockerfile,
// and the flags its ENTRYPOINT gives node before the script (those NODE_OPTIONS does not take).
const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
const IMAGE_NODE_OPTIONS = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1] ?? '';
const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])\s*$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
const [nodeAt, scriptAt] = [entrypoint.indexOf('node'), entrypoint.findIndex((a) => a.endsWith('/bin/warden.js'))];
// Figures that claim the image's flags must have them: a Dockerfile this cannot read stops the bench.
if (nodeAt < 0 || scriptAt < nodeAt) throw new Error(`cannot find node and bin/warden.js in the Dockerfile's ENTRYPOINT: ${JSON.stringify(entrypoint)}`);
const IMAGE_NODE_FLAGS = entrypoint.slice(nodeAt + 1, scriptAt);

// As in the image, every child runs from a compile cache filled beforehand (Dockerfile), so no child
// loads Node's TypeScript stripper, which stays resident (~18 MB a thread): Warden's by the image's
// script, the bare pass-through's by one start and stop (Node writes a thread's cache as it exits).
process.env.NODE_COMPILE_CACHE = join(scratch, 'compile-cache');
const warmed = spawnSync(join(ROOT, 'scripts/warm-compile-cache.sh'), IMAGE_NODE_FLAGS, { env: { ...process.env, NODE_OPTIONS: IMAGE_NODE_OPTIONS }, encoding: 'utf8' });
if (warmed.status !== 0) throw new Error(`scripts/warm-compile-cache.sh: ${warmed.stderr}`);
const fake = await start(['test/bench/fake-server.ts'], 'url');
await stop((await start([...IMAGE_NODE_FLAGS, 'test/bench/bare-proxy.ts', `${fake.info.url}/v1`], 'url', { NODE_OPTIONS: IMAGE_NODE_OPTIONS })).proc);
// The bare pass-through gets the same Node flags, so the memory figures compare like with like.
const bare = await start([...IMAGE_NODE_FLAGS, 'test/bench/bare-proxy.ts', `${fake.info.url}/v1`], 'url', { NODE_OPTIONS: IMAGE_NODE_OPTIONS });
const startWarden = (policy: string, dataDir: string) => start([...IMAGE_NODE_FLAGS, 'bin/warden.js', 'proxy', '--policy', policy, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--no-watch'],
  'trafficUrl', { WARDEN_DEMO_UPSTREAM: fake.info.url, WARDEN_LOG_LEVEL: process.env.WARDEN_LOG_LEVEL ?? 'info', NODE_OPTIONS: IMAGE_NODE_OPTIONS, WARDEN_DATA_DIR: dataDir });
const warden = await startWarden('policies/examples/demo.yaml', join(scratch, 'audited'));
// The same policy with the audit log off, to price strict durability.
const noAuditPolicy = join(scratch, 'no-audit.yaml');
writeFileSync(noAuditPolicy, `${readFileSync(join(ROOT, 'policies/examples/demo.yaml'), 'utf8')}\naudit: { enabled: false }\n`);
const wardenNoAudit = await startWarden(noAuditPolicy, join(scratch, 'unaudited'));
const targets = { direct: fake.info.url, bare: bare.info.url, warden: warden.info.trafficUrl, wardenNoAudit: wardenNoAudit.info.trafficUrl };

// Resident memory at rest, before any call.
await new Promise((r) => setTimeout(r, 1000));
const idle = { warden: await rssOf(warden.proc.pid!), bare: await rssOf(bare.proc.pid!) };

// Warm every path (JIT, connection pools) before measuring.
for (const url of Object.values(targets)) await load(url, 10, 1);

const samples: Record<string, { c50: Awaited<ReturnType<typeof load>>[]; c1: Awaited<ReturnType<typeof latency>>[] }> = Object.fromEntries(Object.keys(targets).map((k) => [k, { c50: [], c1: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  // Every other round in reverse order, so that no target always runs right after the same one.
  const order = Object.entries(targets);
  for (const [name, url] of round % 2 === 0 ? order : order.reverse()) {
    samples[name].c50.push(await load(url, 50, SECONDS));
    samples[name].c1.push(await latency(url, SECONDS));
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, {
  rpsC50: median(s.c50.map((x) => x.rps)),
  p50C1Ms: median(s.c1.map((x) => x.p50)),
  p99C1Ms: median(s.c1.map((x) => x.p99)),
}]));

// Records committed per second: every call through the audited Warden is one record.
const auditRecordsBefore = await auditRecords(warden.info.adminUrl);
const recordsStarted = performance.now();
await load(targets.warden, 50, SECONDS);
const recordsPerSecond = (await auditRecords(warden.info.adminUrl) - auditRecordsBefore) / ((performance.now() - recordsStarted) / 1000);

const memBefore = await rssOf(warden.proc.pid!);
await load(targets.warden, 50, 0, MEMORY_CALLS);
const memAfter = await rssOf(warden.proc.pid!);
const wardenParts = await rssPartsOf(warden.proc.pid!);
// The same calls through the bare pass-through say how much of that is Node and undici themselves.
await load(targets.bare, 50, 0, MEMORY_CALLS);
const bareMem = await rssOf(bare.proc.pid!);
const bareParts = await rssPartsOf(bare.proc.pid!);

const throughputRatio = summary.warden.rpsC50 / summary.bare.rpsC50;
const auditRatio = summary.warden.rpsC50 / summary.wardenNoAudit.rpsC50;
const addedP50 = summary.warden.p50C1Ms - summary.bare.p50C1Ms;
const results = {
  date: new Date().toISOString(), node: process.version, seconds: SECONDS, rounds: ROUNDS, summary,
  throughputRatioVsBare: throughputRatio, addedP50MsVsBare: addedP50, auditThroughputRatio: auditRatio, auditRecordsPerSecond: recordsPerSecond, rssAfterCallsMB: memAfter / 2 ** 20,
  rssBeforeCallsMB: memBefore / 2 ** 20, rssIdleMB: { warden: idle.warden / 2 ** 20, bare: idle.bare / 2 ** 20 }, bareRssAfterCallsMB: bareMem / 2 ** 20, rssPartsAfterCallsMB: { warden: wardenParts, bare: bareParts }, memoryCalls: MEMORY_CALLS, wardenNodeOptions: IMAGE_NODE_OPTIONS, wardenNodeFlags: IMAGE_NODE_FLAGS,
  targets: { throughputRatioVsBare: 0.7, addedP50MsVsBare: 0.5, rssAfterCallsMB: 120, auditThroughputRatio: 0.85 },
};
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);

const row = (name: string) => `| ${name} | ${summary[name].rpsC50.toFixed(0)} | ${summary[name].p50C1Ms.toFixed(2)} | ${summary[name].p99C1Ms.toFixed(2)} |`;
process.stdout.write([
  `Node ${process.version}, ${ROUNDS} interleaved rounds of ${SECONDS} s per target and concurrency (medians)`,
  '',
  '| target | req/s at c=50 | p50 ms at c=1 | p99 ms at c=1 |',
  '| --- | --- | --- | --- |',
  row('direct'), row('bare'), row('warden'), row('wardenNoAudit'),
  '',
  `Warden throughput / bare pass-through at c=50: ${throughputRatio.toFixed(3)} (target >= 0.70) ${throughputRatio >= 0.7 ? 'PASS' : 'MISS'}`,
  `Audit on (strict) / audit off throughput at c=50: ${auditRatio.toFixed(3)} (target >= 0.85) ${auditRatio >= 0.85 ? 'PASS' : 'MISS'}`,
  `Audit records committed per second at c=50 (strict, one fsync per group commit): ${recordsPerSecond.toFixed(0)}`,
  `Warden p50 added over bare at c=1: ${addedP50.toFixed(3)} ms (target <= 0.5 ms) ${addedP50 <= 0.5 ? 'PASS' : 'MISS'}`,
  `Warden RSS after ${MEMORY_CALLS} calls: ${(memAfter / 2 ** 20).toFixed(1)} MB (before: ${(memBefore / 2 ** 20).toFixed(1)} MB; target <= 120 MB) ${memAfter / 2 ** 20 <= 120 ? 'PASS' : 'MISS'}`,
  `Bare pass-through RSS after ${MEMORY_CALLS} calls: ${(bareMem / 2 ** 20).toFixed(1)} MB (both with NODE_OPTIONS="${IMAGE_NODE_OPTIONS}", ${IMAGE_NODE_FLAGS.join(' ')} and a compile cache filled beforehand)`,
  `RSS at rest before any call: Warden ${(idle.warden / 2 ** 20).toFixed(1)} MB, bare ${(idle.bare / 2 ** 20).toFixed(1)} MB`,
  `RSS anonymous / file-backed: Warden ${wardenParts.anonMB.toFixed(1)} / ${wardenParts.fileMB.toFixed(1)} MB, bare ${bareParts.anonMB.toFixed(1)} / ${bareParts.fileMB.toFixed(1)} MB`,
  '',
].join('\n'));
process.exit(0);
