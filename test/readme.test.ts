// README.md stays true: generated sections match the schema and the metrics registry, the commands it
// tells a person to run exist, and the example policies it points at pass `policy check`.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { checkPolicyFile } from '../policies/load.ts';
import { renderReadme } from '../scripts/readme-sections.ts';
import { ROOT, WARDEN_BIN } from './helpers/warden.ts';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

test('the generated sections (policy reference, metrics) are current; run `npm run docs` if not', () => {
  assert.equal(readme, renderReadme(readme));
});

test('the two set-up commands are the demo and the test suite, and .ci/run runs the same test command', () => {
  assert.match(readme, /npm ci && npx warden demo/);
  assert.match(readme, /npm ci && npm test/);
  assert.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), /^npm test$/m);
});

test('every npm script and policy file the README names exists, and every example policy is valid', async () => {
  for (const [, script] of readme.matchAll(/npm run ([\w:-]+)/g)) assert.ok(pkg.scripts[script], `npm run ${script}`);
  for (const [file] of readme.matchAll(/policies\/examples\/[\w.-]+\.yaml/g)) assert.ok(existsSync(join(ROOT, file)), file);
  for (const name of ['minimal', 'demo', 'self-hosted']) {
    const r = await checkPolicyFile(join(ROOT, `policies/examples/${name}.yaml`));
    assert.deepEqual(r.problems, [], name);
  }
});

test('`warden help` names every flag and env variable the README\'s command table lists', () => {
  const help = spawnSync(process.execPath, [WARDEN_BIN, 'help'], { cwd: ROOT, encoding: 'utf8' }).stdout;
  const table = readme.slice(readme.indexOf('## Command line')).split('\n').filter((l) => l.startsWith('| `warden '));
  assert.ok(table.length > 10, 'the README\'s command table');
  for (const row of table) {
    // Error codes (WARDEN_ERR_…) a row mentions are not settings.
    for (const [name] of row.matchAll(/--[a-z][\w-]*|\bWARDEN_(?!ERR_)[A-Z_]+/g)) assert.ok(help.includes(name), `${name} (README: ${row.slice(0, 60)}…) is not in \`warden help\``);
  }
});
