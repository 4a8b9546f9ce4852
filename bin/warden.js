#!/usr/bin/env node
// The `warden` command. Plain JavaScript so it can say clearly when Node is too old to run the
// TypeScript sources (Node strips types itself from 22.18 on).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`warden needs Node.js >= 22.18 (this is ${process.version}); run "source scripts/node-env.sh" in a checkout to get Node 24.\n`);
  process.exit(2);
}
const { main } = await import('../proxy/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
