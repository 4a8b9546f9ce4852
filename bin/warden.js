#!/usr/bin/env node
// The `warden` command. Plain JavaScript so it can say clearly when Node is too old to run the
// TypeScript sources (Node strips types itself from 22.18 on).
import module from 'node:module';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`warden needs Node.js >= 22.18 (this is ${process.version}); run "source scripts/node-env.sh" in a checkout to get Node 24.\n`);
  process.exit(2);
}
// Node strips the sources' types with a WebAssembly module that stays resident, ~18 MB in each
// thread that loaded it. With the compile cache, a start after the first (and every start of the
// image, whose cache is filled at build time) reads stripped, compiled code and never loads it:
// ~30 MB less resident for the sidecar, and a faster start. The directory is NODE_COMPILE_CACHE,
// else node-compile-cache in the temporary directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
const cache = module.enableCompileCache?.();
// Worker threads (the audit writer) read the variable when they start, not this thread's choice.
if (cache?.directory) process.env.NODE_COMPILE_CACHE ??= cache.directory;
const { main } = await import('../proxy/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
