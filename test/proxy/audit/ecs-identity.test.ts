// In an ECS task, every record names the task, its task definition and the agent container's image
// and digest, read from the task metadata endpoint (a local stand-in speaking its v4 JSON here).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { ecsIdentity } from '../../../proxy/audit/ecs-identity.ts';
import { startFakeUpstream, type FakeUpstream } from '../../../proxy/demo/fake-upstream.ts';
import { policyFor, startWarden, tempDataDir, tempFile } from '../../helpers/warden.ts';

const TASK_ARN = 'arn:aws:ecs:us-west-2:111122223333:task/prod/8f03e41243824aea923aca126495f665';
const container = (Name: string, Image: string, ImageID: string, Type = 'NORMAL') => ({ DockerId: 'd', Name, DockerName: `ecs-${Name}`, Image, ImageID, Type, DesiredStatus: 'RUNNING' });
const TASK = {
  Cluster: 'prod', TaskARN: TASK_ARN, Family: 'support-bot', Revision: '42', DesiredStatus: 'RUNNING', KnownStatus: 'RUNNING', LaunchType: 'FARGATE',
  Containers: [
    container('~internal~ecs~pause', 'amazon/amazon-ecs-pause:0.1.0', '', 'CNI_PAUSE'),
    container('warden', '111122223333.dkr.ecr.us-west-2.amazonaws.com/agent-warden:0.1.0', 'sha256:aaaa'),
    container('support-agent', '111122223333.dkr.ecr.us-west-2.amazonaws.com/support-bot:1.4.2', 'sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553'),
  ],
};

let metadata: Server;
let base: string;
let fake: FakeUpstream;

before(async () => {
  metadata = createServer((req, res) => {
    const body = req.url === '/v4/abc/task' ? TASK : req.url === '/v4/abc' ? TASK.Containers[1] : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  }).listen(0, '127.0.0.1');
  await new Promise((r) => metadata.once('listening', r));
  base = `http://127.0.0.1:${(metadata.address() as { port: number }).port}/v4/abc`;
  fake = await startFakeUpstream();
});
after(async () => {
  metadata.close();
  await fake.close();
});

test('the agent container is the task\'s ordinary container that is not the sidecar, unless named', async () => {
  const id = await ecsIdentity({ ECS_CONTAINER_METADATA_URI_V4: base });
  assert.deepEqual(id, {
    task_arn: TASK_ARN, cluster: 'prod', family: 'support-bot', revision: '42', container: 'support-agent',
    image: TASK.Containers[2].Image, image_digest: TASK.Containers[2].ImageID,
  });
  assert.equal((await ecsIdentity({ ECS_CONTAINER_METADATA_URI_V4: base, WARDEN_AGENT_CONTAINER: 'warden' }))?.image_digest, 'sha256:aaaa');
  assert.equal(await ecsIdentity({}), undefined);
});

test('records carry the task identity, and the log id starts with the task ARN', async () => {
  process.env.ECS_CONTAINER_METADATA_URI_V4 = base;
  const dataDir = tempDataDir();
  const warden = await startWarden(tempFile('p.yaml', policyFor(fake.url)), false, dataDir);
  delete process.env.ECS_CONTAINER_METADATA_URI_V4;
  try {
    const res = await request(`${warden.trafficUrl}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }) });
    await res.body.text();
  } finally {
    await warden.shutdown();
  }
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  const rec = JSON.parse((db.prepare("SELECT body FROM records WHERE event = 'model_call'").get() as { body: string }).body);
  db.close();
  assert.deepEqual(rec.agent, {
    id: 'test-agent', version: '1.0.0', task_arn: TASK_ARN, cluster: 'prod', family: 'support-bot', revision: '42',
    container: 'support-agent', image: TASK.Containers[2].Image, image_digest: TASK.Containers[2].ImageID,
  });
  assert.ok(rec.log_id.startsWith(`${TASK_ARN}/`), rec.log_id);
});

test('an unreachable metadata endpoint does not stop the sidecar', async () => {
  process.env.ECS_CONTAINER_METADATA_URI_V4 = 'http://127.0.0.1:9/v4/nothing';
  try {
    const warden = await startWarden(tempFile('p.yaml', policyFor(fake.url)));
    await warden.shutdown();
  } finally {
    delete process.env.ECS_CONTAINER_METADATA_URI_V4;
  }
});
