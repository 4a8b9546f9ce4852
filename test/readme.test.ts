// README.md stays true: generated sections match the schema and the metrics registry, the commands it
// tells a person to run exist, and the example policies it points at pass `policy check`.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPolicyFile } from '../policies/load.ts';
import { renderReadme } from '../scripts/readme-sections.ts';
import { ROOT } from './helpers/warden.ts';

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

test('the Dockerfile: node:24-slim, production dependencies only, non-root, healthcheck on /readyz, warden proxy', () => {
  const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(docker, /^FROM node:24-slim AS deps$/m);
  assert.match(docker, /npm ci --omit=dev/);
  assert.match(docker, /^USER node$/m);
  assert.match(docker, /^HEALTHCHECK [^\n]*\\\n[^\n]*\/readyz/m);
  assert.match(docker, /^ENTRYPOINT \["node", "\/app\/bin\/warden\.js", "proxy"\]$/m);
  for (const [, src] of docker.matchAll(/^COPY (?!--from)(\S+)/gm)) assert.ok(existsSync(join(ROOT, src)), `COPY ${src}`);
  // Every runtime directory the package ships is in the image (the sidecar imports evals/ at start).
  const { files } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  for (const dir of files.filter((f) => existsSync(join(ROOT, f)))) assert.match(docker, new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'), `the image copies ${dir}/`);
});
