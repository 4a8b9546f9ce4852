// Headless Chromium for page tests: Debian's `chromium` (installed by .ci/run) driven by
// playwright-core, which downloads no browser of its own. Screenshots go to test-artifacts/.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** Where the page tests leave their screenshots (kept by CI as artifacts). */
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts');

export function chromiumPath(): string {
  const found = [process.env.CHROMIUM_PATH, ...CANDIDATES].find((p): p is string => !!p && existsSync(p));
  // Never a skip: a page test without a browser is a failed test (.ci/run installs it).
  if (!found) throw new Error(`no Chromium found (tried ${CANDIDATES.join(', ')}; set CHROMIUM_PATH); install it with: apt-get install chromium`);
  return found;
}

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}
