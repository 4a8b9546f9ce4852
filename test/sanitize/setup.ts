// What the sanitization files that talk to a sidecar share: a fake upstream, and a sidecar in front
// of it with a data directory of its own (so a test can read the records its calls left).
import { after, before } from 'node:test';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { policyFor, startWarden, tempDataDir, tempFile } from '../helpers/warden.ts';

export interface SanitizingSidecar {
  readonly fake: FakeUpstream;
  readonly warden: Sidecar;
  readonly dataDir: string;
}

/** Starts the fake and a sidecar with `policyFor(fake, extra)` before the file's tests, and stops both after them. */
export function sanitizingSidecar(policyName: string, extra: string): SanitizingSidecar {
  const ctx = {} as { fake: FakeUpstream; warden: Sidecar; dataDir: string };
  before(async () => {
    ctx.fake = await startFakeUpstream();
    ctx.dataDir = tempDataDir();
    ctx.warden = await startWarden(tempFile(policyName, policyFor(ctx.fake.url, extra)), false, ctx.dataDir);
  });
  after(async () => {
    await ctx.warden.shutdown();
    await ctx.fake.close();
  });
  return ctx;
}
