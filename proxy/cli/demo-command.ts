// `warden demo`: a fake upstream, a fake order service, a sidecar on policies/examples/demo.yaml and a
// scripted agent, all in this process and on loopback ports chosen by the OS. Prints, call by call, what Warden did.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOrderService } from '../demo/fake-orders.ts';
import { startFakeUpstream } from '../demo/fake-upstream.ts';
import { runScenes } from '../demo/scenes.ts';
import { startDemoSidecar } from '../demo/scene-kit.ts';

const DEMO_POLICY = fileURLToPath(new URL('../../policies/examples/demo.yaml', import.meta.url));

/** Runs the demo and returns 0 when every scene behaved as expected. */
export async function demoCommand(args: string[]): Promise<number> {
  if (args.length > 0) process.stderr.write(`warden demo takes no arguments; ignoring ${args.join(' ')}\n`);
  const fake = await startFakeUpstream({ host: '127.0.0.1', port: 0 });
  const orders = await startOrderService();
  process.env.WARDEN_DEMO_UPSTREAM = fake.url;
  process.env.WARDEN_DEMO_TOOLS = orders.url;
  // The demo's audit log lives in a throwaway directory, so a demo never touches a real one.
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
  const sidecar = await startDemoSidecar(DEMO_POLICY, dataDir);
  const out = (line = '') => process.stdout.write(`${line}\n`);
  out(`Warden demo: fake upstream at ${fake.url}, sidecar at ${sidecar.trafficUrl} (admin ${sidecar.adminUrl})`);
  out(`policy: policies/examples/demo.yaml (agent ${sidecar.ctx.runtime.policy.agent.id})`);
  try {
    const failures = await runScenes({ trafficUrl: sidecar.trafficUrl, adminUrl: sidecar.adminUrl, auditPath: join(dataDir, 'audit.db'), out });
    out();
    out(failures === 0 ? 'All scenes behaved as expected.' : `${failures} scene(s) did not behave as expected.`);
    return failures === 0 ? 0 : 1;
  } finally {
    await sidecar.shutdown();
    await fake.close();
    await orders.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
