// The sidecar image: what the Dockerfile must say for production, and its entrypoint run the way the
// container runs it (ENV, ENTRYPOINT + CMD, WORKDIR, the copied policy), with /app mapped to this
// checkout, because no Docker engine is at hand in the test environment.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, waitFor } from '../helpers/warden.ts';

interface Instruction { op: string; args: string }

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (!current && (/^\s*#/.test(line) || !line.trim())) continue;
    if (current && /^\s*#/.test(line)) continue;
    current += current ? ` ${line.trim()}` : line.trim();
    if (current.endsWith('\\')) { current = current.slice(0, -1).trimEnd(); continue; }
    const m = /^(\w+)\s+(.*)$/s.exec(current)!;
    out.push({ op: m[1].toUpperCase(), args: m[2] });
    current = '';
  }
  return out;
}

/** `ENV A=1 B="two words"` as a record. */
function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, key, quoted, bare] of args.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g)) env[key] = quoted ?? bare;
  return env;
}

const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const instructions = parseDockerfile(docker);
const all = (op: string) => instructions.filter((i) => i.op === op);
const last = (op: string) => all(op).at(-1)!;
const stages = instructions.reduce<Instruction[][]>((acc, i) => (i.op === 'FROM' ? [...acc, [i]] : (acc.at(-1)!.push(i), acc)), []);
const runtime = stages.at(-1)!;
const imageEnv = Object.assign({}, ...runtime.filter((i) => i.op === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
const command = [...JSON.parse(last('ENTRYPOINT').args) as string[], ...JSON.parse(last('CMD').args) as string[]];
/** The flags the ENTRYPOINT gives node before the script. */
const nodeFlags = command.slice(command.indexOf('node') + 1, command.indexOf('/app/bin/warden.js'));
const healthcheck = JSON.parse(/\bCMD\s+(\[.*\])$/s.exec(last('HEALTHCHECK').args)![1]) as string[];

test('the Dockerfile: node:24-slim pinned, production dependencies only, non-root, tini, healthcheck on /readyz without curl, warden proxy', () => {
  // Both stages on one exact Node 24 slim release (optionally also pinned by digest).
  const from = /^FROM node:24\.\d+\.\d+-(?:bookworm|trixie)-slim(?:@sha256:[0-9a-f]{64})? AS deps$/m;
  assert.match(docker, from);
  assert.equal(stages.length, 2, 'two stages: deps and runtime');
  assert.equal(runtime[0].args, stages[0][0].args.replace(/ AS deps$/, ''), 'the runtime stage uses the same base image');
  assert.match(docker, /npm ci --omit=dev/);
  // The toolchain stays in the deps stage; the runtime stage gets only node_modules from it.
  assert.ok(!runtime.some((i) => i.op === 'RUN' && /g\+\+|python3|make\b/.test(i.args)), 'no build toolchain in the runtime stage');
  assert.ok(runtime.some((i) => i.op === 'COPY' && i.args === '--from=deps /app/node_modules ./node_modules'));
  assert.match(docker, /^USER node$/m);
  assert.notEqual(last('USER').args, 'root');
  // tini as PID 1: signal forwarding and zombie reaping.
  assert.ok(runtime.some((i) => i.op === 'RUN' && /apt-get install -y --no-install-recommends tini\b/.test(i.args)));
  assert.match(docker, /^HEALTHCHECK [^\n]*\\\n[^\n]*\/readyz/m);
  assert.equal(healthcheck[0], 'node', 'the health check runs node');
  assert.ok(!/\bcurl\b|\bwget\b/.test(last('HEALTHCHECK').args), 'no curl or wget in the health check');
  assert.deepEqual(command, ['/usr/bin/tini', '--', 'node', '--heap-growing-percent=100', '/app/bin/warden.js', 'proxy']);
  assert.match(docker, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "--heap-growing-percent=100", "\/app\/bin\/warden\.js"\]$/m);
  assert.match(docker, /^CMD \["proxy"\]$/m);
  assert.equal(imageEnv.WARDEN_DATA_DIR, '/var/lib/warden');
  assert.equal(imageEnv.WARDEN_POLICY, '/etc/warden/policy.yaml');
  assert.equal(imageEnv.NODE_ENV, 'production');
  // The compile cache lives in the image, filled at build time after every source is copied, in the
  // run time's environment, as its user and with its node flags: Node keeps one cache per user id
  // and set of V8 flags, so one filled as root, or without the flags, would never be read.
  const cacheDir = imageEnv.NODE_COMPILE_CACHE;
  assert.match(cacheDir, /^\/app\//);
  const at = (i: Instruction) => runtime.indexOf(i);
  const warm = runtime.find((i) => i.op === 'RUN' && i.args === ['scripts/warm-compile-cache.sh', ...nodeFlags].join(' '));
  assert.ok(warm, 'the image fills its compile cache');
  for (const i of runtime.filter((i) => i.op === 'COPY' || i.op === 'ENV' || i.op === 'USER')) {
    assert.ok(at(i) < at(warm), `${i.op} ${i.args} comes before the cache is filled`);
  }
  assert.ok(runtime.some((i) => i.op === 'RUN' && at(i) < at(last('USER')) && new RegExp(`chown -R node:node .*${cacheDir}`).test(i.args)), 'the sidecar\'s user owns the cache directory');
  assert.match(docker, /^VOLUME \/var\/lib\/warden$/m);
  for (const [, src] of docker.matchAll(/^COPY (?!--from)(\S+)/gm)) assert.ok(existsSync(join(ROOT, src)), `COPY ${src}`);
  // No tests, benchmarks or scripts in the image, but the one that fills the compile cache.
  for (const [, src] of docker.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const s of src.split(/\s+/)) {
      if (s !== 'scripts/warm-compile-cache.sh') assert.ok(!/^(test|scripts|\.ci|\.git)\b|bench/.test(s), `the image copies ${s}`);
    }
  }
  // Every runtime directory the package ships is in the image (the sidecar imports evals/ at start).
  const { files } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  for (const dir of files.filter((f) => existsSync(join(ROOT, f)))) assert.match(docker, new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'), `the image copies ${dir}/`);
});

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** A command of the image, mapped to this checkout: `node` is this Node, `/app/…` is the repository. */
function mapped(argv: string[]): string[] {
  // tini is not installed here; it only forwards signals to node, which the test sends directly.
  const rest = argv[0].endsWith('/tini') ? argv.slice(argv.indexOf('--') + 1) : argv;
  return rest.map((a, i) => (i === 0 && a === 'node' ? process.execPath : a.replace(/^\/app\//, ROOT)));
}

/** Each file under `dir` with its contents' hash. */
function filesOf(dir: string): Record<string, string> {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return Object.fromEntries(files.map((e) => [join(e.parentPath, e.name), createHash('sha256').update(readFileSync(join(e.parentPath, e.name))).digest('hex')]));
}

test('the image\'s command serves /readyz from its build\'s compile cache, passes its HEALTHCHECK, writes only to the data dir, and exits 0 on SIGTERM', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'warden-image-'));
  const [dataDir, home, etc, compileCache] = ['var-lib-warden', 'home', 'etc-warden', 'app-compile-cache'].map((d) => join(tmp, d));
  for (const d of [dataDir, home, etc]) mkdirSync(d);
  // As the image's RUN does, with the image's NODE_OPTIONS and node flags.
  const warm = spawnSync(join(ROOT, 'scripts/warm-compile-cache.sh'), nodeFlags, {
    env: { PATH: process.env.PATH, HOME: home, NODE_OPTIONS: imageEnv.NODE_OPTIONS, NODE_COMPILE_CACHE: compileCache }, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(warm.status, 0, warm.stderr);
  assert.ok(Object.keys(filesOf(compileCache)).length > 100, 'the cache holds the modules');
  // As the image's RUN does: the minimal example becomes /etc/warden/policy.yaml.
  const copy = all('RUN').find((i) => /cp policies\/examples\/minimal\.yaml \/etc\/warden\/policy\.yaml/.test(i.args));
  assert.ok(copy, 'the image installs the minimal policy');
  copyFileSync(join(ROOT, 'policies/examples/minimal.yaml'), join(etc, 'policy.yaml'));
  const [traffic, adminPort] = [await freePort(), await freePort()];
  const withPort = (hostPort: string, port: number) => `${hostPort.replace(/:\d+$/, '')}:${port}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: home, TMPDIR: join(tmp, 'tmp'),
    ...imageEnv,
    WARDEN_DATA_DIR: dataDir,
    WARDEN_POLICY: join(etc, 'policy.yaml'),
    WARDEN_LISTEN: withPort(imageEnv.WARDEN_LISTEN, traffic),
    WARDEN_ADMIN_LISTEN: withPort(imageEnv.WARDEN_ADMIN_LISTEN, adminPort),
    NODE_COMPILE_CACHE: compileCache,
  };
  mkdirSync(env.TMPDIR!);
  const hadDotWarden = existsSync(join(ROOT, '.warden'));
  const [bin, ...args] = mapped(command);
  // WORKDIR /app is the repository root.
  assert.equal(last('WORKDIR').args, '/app');
  const proc = spawn(bin, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d) => { output += d; });
  proc.stderr!.on('data', (d) => { output += d; });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  try {
    const readyz = `http://127.0.0.1:${adminPort}/readyz`;
    await waitFor(async () => (await fetch(readyz).catch(() => undefined))?.status === 200, 15_000, `${readyz} 200\n${output}`);
    const [hcBin, ...hcArgs] = mapped(healthcheck);
    const hc = spawnSync(hcBin, hcArgs, { env, encoding: 'utf8', timeout: 10_000 });
    assert.equal(hc.status, 0, `HEALTHCHECK exit ${hc.status}: ${hc.stderr}`);
    // (The health check's own script, not TypeScript, may add its entries; the sidecar adds its at exit.)
    const cached = filesOf(compileCache);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    // Node writes an entry for each module it had to strip and compile itself: none, so the sidecar
    // never loaded the TypeScript stripper (the image's cache is read-only; Node would go on without).
    assert.deepEqual(filesOf(compileCache), cached, 'every module of the sidecar and its audit writer came from the build\'s compile cache');
    // Once it is gone the same health check fails.
    assert.equal(spawnSync(hcBin, hcArgs, { env, timeout: 10_000 }).status, 1);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  assert.match(output, /"msg":"stop signal received".*"signal":"SIGTERM"|"signal":"SIGTERM".*"msg":"stop signal received"/);
  // Writes went to the data volume only: nothing in HOME, no ./.warden under WORKDIR.
  assert.ok(existsSync(join(dataDir, 'audit.db')), 'the audit log is in WARDEN_DATA_DIR');
  assert.deepEqual(readdirSync(home), [], 'nothing written to HOME');
  if (!hadDotWarden) assert.ok(!existsSync(join(ROOT, '.warden')), 'nothing written under WORKDIR');
});
