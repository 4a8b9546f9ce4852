// The fake upstream in a process of its own, so the benchmark's load generator does not share its thread.
import { startFakeUpstream } from '../../proxy/demo/fake-upstream.ts';

const fake = await startFakeUpstream({ host: '127.0.0.1', port: 0, recordBodies: false });
process.stdout.write(`${JSON.stringify({ url: fake.url })}\n`);
