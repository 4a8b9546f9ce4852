// Agent-to-agent boundaries, end to end: three sidecars in one process, each with its own data dir
// and policy. Agent A (scopes: support) calls agent B (support, finance) through both sidecars; B's
// agent, a small HTTP server here, does what an agent does: it asks its model (the fake upstream,
// offered a support and a finance tool) and calls the finance tool through its own Warden, sending
// back the delegation id it was handed. Acting for A, B cannot use the finance tool; on its own, it
// can. B acting for A may call C (support, finance), and C still gets only A's scopes. Tokens that
// are forged, expired, replayed, for another agent, or from an untrusted one are refused and counted.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { request } from 'undici';
import { loadIdentityKey, type IdentityKey } from '../../proxy/agents/identity-key.ts';
import { signIdentity, type Hop } from '../../proxy/agents/token.ts';
import { keyIdOf } from '../../proxy/audit/signing.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import { closeServer } from '../../proxy/demo/fake-orders.ts';
import { startSidecar, type Sidecar } from '../../proxy/sidecar.ts';
import { auditRecords } from '../helpers/audit.ts';
import { tempDataDir, tempFile } from '../helpers/warden.ts';

const LOOPBACK = { host: '127.0.0.1', port: 0 };
const TOOLS = [
  { type: 'function', function: { name: 'lookup_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } },
  { type: 'function', function: { name: 'issue_refund', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } },
];

let fake: FakeUpstream;
let refunds: { url: string; calls: number; server: Server };
let agentB: Server;
let agentC: Server;
let wardenA: Sidecar;
let wardenB: Sidecar;
let wardenC: Sidecar;
let keyA: IdentityKey;
const dataA = tempDataDir();
const dataB = tempDataDir();

async function listen(handler: (req: IncomingMessage, body: string) => Promise<unknown>): Promise<Server> {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const out = JSON.stringify(await handler(req, Buffer.concat(chunks).toString('utf8')));
    res.writeHead(200, { 'content-type': 'application/json' }).end(out);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) };
}

/**
 * Agent B: given `ask`, one model turn with both tools offered and a call of the finance tool, each
 * through B's sidecar with the delegation id it was handed (when it was handed one); given `onward`,
 * a call of agent C through B's sidecar. It reports what it saw.
 */
async function actAsB(req: IncomingMessage, text: string) {
  const body = text ? JSON.parse(text) : {};
  const delegation = req.headers['x-warden-delegation'] as string | undefined;
  const h: Record<string, string> = delegation ? { 'x-warden-delegation': delegation } : {};
  const seen = { delegation, caller: req.headers['x-warden-caller'], chain: req.headers['x-warden-chain'], scopes: req.headers['x-warden-scopes'], authorization: req.headers.authorization, identity: req.headers['x-warden-identity'] };
  if (body.onward) return { seen, onward: (await post(`${wardenB.trafficUrl}/agents/c-agent/echo`, { hi: 1 }, h)).json };
  if (!body.ask) return { seen };
  const chat = await post(`${wardenB.trafficUrl}/v1/chat/completions`, { model: 'gpt-4o', messages: [{ role: 'user', content: body.ask }], tools: TOOLS }, h);
  const tool = await post(`${wardenB.trafficUrl}/tools/issue_refund`, { order_id: 'ORD-123456' }, h);
  return {
    seen,
    chat: { status: chat.status, actions: chat.headers['x-warden-actions'], message: chat.json.choices[0].message },
    tool: { status: tool.status, outcome: tool.headers['x-warden-tool-outcome'], json: tool.json },
  };
}

function start(policy: string, dataDir: string, inbound: boolean): Promise<Sidecar> {
  return startSidecar({
    policyFile: tempFile('policy.yaml', policy), dataDir, listen: LOOPBACK, adminListen: LOOPBACK, inboundListen: inbound ? LOOPBACK : undefined,
    shutdownGraceMs: 2_000, watchPolicy: false, logger: pino({ level: process.env.WARDEN_TEST_LOG_LEVEL ?? 'silent' }),
  });
}

before(async () => {
  fake = await startFakeUpstream();
  const refundServer = await listen(async () => {
    refunds.calls++;
    return { refund_id: 'RF-20931', status: 'issued' };
  });
  refunds = { url: urlOf(refundServer), calls: 0, server: refundServer };
  agentB = await listen(actAsB);
  agentC = await listen(async (req) => ({ caller: req.headers['x-warden-caller'], chain: req.headers['x-warden-chain'], scopes: req.headers['x-warden-scopes'] }));
  // Each sidecar creates its identity key in its data dir; loading it first gives the same key.
  keyA = loadIdentityKey(dataA);
  const keyB = loadIdentityKey(dataB);
  const head = (id: string, scopes: string) => `apiVersion: warden/v1
kind: Policy
agent: { id: ${id}, version: 1.0.0, scopes: [${scopes}] }
upstreams:
  openai: { baseUrl: "${fake.url}/v1" }
`;
  wardenC = await start(`${head('c-agent', 'support, finance')}agents:
  trust: { b-agent: { publicKey: "${keyB.publicKey}" } }
  inbound: { url: "${urlOf(agentC)}", timeoutMs: 5000 }
`, tempDataDir(), true);
  wardenB = await start(`${head('b-agent', 'support, finance')}tools:
  lookup_order: { scope: support }
  issue_refund:
    scope: finance
    args: { type: object, required: [order_id], properties: { order_id: { type: string } } }
    http: { url: "${refunds.url}/refund", timeoutMs: 2000 }
agents:
  peers: { c-agent: { url: "${wardenC.inboundUrl}", timeoutMs: 5000 } }
  trust: { a-agent: { publicKey: "${keyA.publicKey}" } }
  inbound: { url: "${urlOf(agentB)}", timeoutMs: 10000 }
`, dataB, true);
  wardenA = await start(`${head('a-agent', 'support')}agents:
  peers: { b-agent: { url: "${wardenB.inboundUrl}", timeoutMs: 10000 } }
`, dataA, false);
});

after(async () => {
  await Promise.all([wardenA, wardenB, wardenC].map((w) => w?.shutdown()));
  await Promise.all([agentB, agentC, refunds?.server].filter(Boolean).map((s) => closeServer(s)));
  await fake?.close();
});

async function metric(w: Sidecar, line: string): Promise<number> {
  const text = await (await request(`${w.adminUrl}/metrics`)).body.text();
  const m = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const lastChatTools = () => {
  const chats = fake.requests.filter((r) => r.path.endsWith('/chat/completions'));
  return (JSON.parse(chats[chats.length - 1].body.toString('utf8')).tools ?? []).map((t: any) => t.function.name);
};

test('A (support) calls B (support, finance) through Warden and cannot make B use a finance tool on its behalf', async () => {
  const ask = 'Refund my order. [[call issue_refund {"order_id":"ORD-123456"}]]';
  const res = await post(`${wardenA.trafficUrl}/agents/b-agent/ask`, { ask }, { authorization: 'Bearer a-agents-own-key' });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const { seen, chat, tool } = res.json;
  // B's agent learns who it works for and with what; A's credential and the token stay behind.
  assert.equal(seen.caller, 'a-agent');
  assert.equal(seen.chain, 'a-agent');
  assert.equal(seen.scopes, 'support');
  assert.match(seen.delegation, /^dlg_/);
  assert.equal(seen.authorization, undefined);
  assert.equal(seen.identity, undefined);
  // The model never sees the finance tool, and its call of it does not reach the agent.
  assert.deepEqual(lastChatTools(), ['lookup_order']);
  assert.equal(chat.status, 200);
  assert.equal(chat.message.tool_calls, undefined);
  assert.match(chat.message.content, /refused by policy \(scope_violation\).*"issue_refund" needs scope "finance"/);
  assert.match(chat.actions, /tools-filtered:1/);
  assert.match(chat.actions, /tool-blocked:1/);
  // Forced through /tools, the finance call is refused, and the refund service never hears of it.
  assert.equal(tool.outcome, 'blocked');
  assert.equal(tool.json.error.type, 'tool_blocked');
  assert.match(tool.json.error.message, /scope_violation: "issue_refund" needs scope "finance", which agent b-agent holds but may not use here/);
  assert.equal(refunds.calls, 0);

  // The delegation ended with A's call: its id now widens nothing and narrows nothing, it is refused.
  const late = await post(`${wardenB.trafficUrl}/tools/issue_refund`, { order_id: 'ORD-123456' }, { 'x-warden-delegation': seen.delegation });
  assert.equal(late.status, 401);
  assert.equal(late.json.error.code, 'WARDEN_ERR_IDENTITY_DELEGATION');
  assert.equal(refunds.calls, 0);

  // Both records name whom the call was for: A's says what it signed, B's what it verified.
  const signed = auditRecords(dataA, 'agent_call').at(-1)!.decisions.find((d: any) => d.stage === 'agent-identity');
  assert.equal(signed.decision, 'signed');
  assert.deepEqual(signed.detail.scopes, ['support']);
  const verified = auditRecords(dataB, 'agent_call').at(-1)!.decisions.find((d: any) => d.stage === 'agent-identity');
  assert.equal(verified.decision, 'verified');
  assert.equal(verified.detail.jti, signed.detail.jti);
  assert.deepEqual(verified.detail.scopes, ['support']);
  const refused = auditRecords(dataB, 'tool_call').at(-1)!;
  assert.deepEqual(refused.decisions[0], { stage: 'agent-identity', decision: 'acting-for', detail: { delegation: seen.delegation, caller: 'a-agent', chain: ['a-agent'], scopes: ['support'] } });
});

test('B acting on its own may use its finance tool', async () => {
  const res = await post(`${urlOf(agentB)}/ask`, { ask: 'Refund it. [[call issue_refund {"order_id":"ORD-123456"}]]' });
  const { chat, tool } = res.json;
  assert.deepEqual(lastChatTools(), ['lookup_order', 'issue_refund']);
  assert.equal(chat.message.tool_calls[0].function.name, 'issue_refund');
  assert.equal(tool.outcome, 'ok');
  assert.equal(tool.json.refund_id, 'RF-20931');
  assert.equal(refunds.calls, 1);
});

test('no agent gains a scope through another: B acting for A calls C (support, finance), and C gets support only', async () => {
  const forA = await post(`${wardenA.trafficUrl}/agents/b-agent/x`, { onward: true });
  assert.equal(forA.status, 200, JSON.stringify(forA.json));
  assert.deepEqual(forA.json.onward, { caller: 'b-agent', chain: 'a-agent,b-agent', scopes: 'support' });
  // The same call by B on its own carries B's scopes.
  const own = await post(`${urlOf(agentB)}/x`, { onward: true });
  assert.deepEqual(own.json.onward, { caller: 'b-agent', chain: 'b-agent', scopes: 'support,finance' });
});

const hop = (agent: string, scopes: string[]): Hop => ({ agent, scopes });

/** A token as A's sidecar would sign it for POST /agents/b-agent/ask with `body`. */
function tokenFor(body: string, over: { key?: IdentityKey; iss?: string; aud?: string; now?: number } = {}): string {
  const iss = over.iss ?? 'a-agent';
  return signIdentity(over.key ?? keyA, { iss, aud: over.aud ?? 'b-agent', scopes: ['support'], chain: [hop(iss, ['support'])] },
    { method: 'POST', path: '/ask', body: Buffer.from(body) }, { ttlMs: 60_000, now: over.now });
}

async function inbound(token: string | undefined, body: string) {
  return post(`${wardenB.inboundUrl}/agents/b-agent/ask`, body, token ? { 'x-warden-identity': token } : {});
}

test('a forged, expired, replayed, misaddressed or untrusted token is refused with its reason, and counted', async () => {
  const body = '{"n":1}';
  const count = async (reason: string) => metric(wardenB, `warden_auth_failures_total{reason="${reason}"}`);
  const counts: Record<string, number> = {};
  for (const r of ['forged', 'expired', 'replayed', 'audience', 'untrusted', 'unsigned']) counts[r] = await count(r);

  // A good token goes through once; the same token again is a replay.
  const good = tokenFor(body);
  assert.equal((await inbound(good, body)).status, 200);
  const replay = await inbound(good, body);
  assert.equal(replay.status, 401);
  assert.equal(replay.json.error.code, 'WARDEN_ERR_IDENTITY_REPLAYED');

  // Forged: A's token with finance written into its claims; and one signed by another key under A's key id.
  const [h, claims, sig] = tokenFor(body).split('.');
  const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claims, 'base64url').toString()), scopes: ['support', 'finance'] })).toString('base64url');
  const edited = await inbound(`${h}.${widened}.${sig}`, body);
  assert.equal(edited.status, 401);
  assert.equal(edited.json.error.code, 'WARDEN_ERR_IDENTITY_FORGED');
  const { privateKey } = generateKeyPairSync('ed25519');
  const impostor = await inbound(tokenFor(body, { key: { privateKey, publicKey: '', keyId: keyA.keyId, source: 'test' } }), body);
  assert.equal(impostor.json.error.code, 'WARDEN_ERR_IDENTITY_FORGED');
  // A valid token carried with a different request is forged too (it vouches for one body).
  const moved = await inbound(tokenFor(body), '{"n":2}');
  assert.equal(moved.json.error.code, 'WARDEN_ERR_IDENTITY_FORGED');

  // Expired: issued two minutes ago for one minute.
  const expired = await inbound(tokenFor(body, { now: Date.now() - 120_000 }), body);
  assert.equal(expired.status, 401);
  assert.equal(expired.json.error.code, 'WARDEN_ERR_IDENTITY_EXPIRED');

  // For another agent.
  const misaddressed = await inbound(tokenFor(body, { aud: 'c-agent' }), body);
  assert.equal(misaddressed.json.error.code, 'WARDEN_ERR_IDENTITY_AUDIENCE');

  // From an agent B does not trust, with a key of its own.
  const other = generateKeyPairSync('ed25519');
  const der = other.publicKey.export({ type: 'spki', format: 'der' });
  const stranger = await inbound(tokenFor(body, { iss: 'm-agent', key: { privateKey: other.privateKey, publicKey: der.toString('base64'), keyId: keyIdOf(der), source: 'test' } }), body);
  assert.equal(stranger.json.error.code, 'WARDEN_ERR_IDENTITY_UNTRUSTED');

  // No token at all.
  const bare = await inbound(undefined, body);
  assert.equal(bare.status, 401);
  assert.equal(bare.json.error.type, 'warden_unauthorized');
  assert.equal(bare.json.error.code, 'WARDEN_ERR_IDENTITY_UNSIGNED');

  const expected = { forged: 3, expired: 1, replayed: 1, audience: 1, untrusted: 1, unsigned: 1 };
  for (const [reason, n] of Object.entries(expected)) assert.equal(await count(reason) - counts[reason], n, reason);
  // Refused calls never reached B's agent's model or tools.
  assert.equal(refunds.calls, 1);
});

/**
 * POSTs to B's inbound listener over a raw socket: the head, then (`streamBody`) body chunks without
 * end, or no body at all though the head announces 8 MiB. Resolves with what came back once B closes.
 */
async function headOnly(token: string, streamBody: boolean): Promise<{ answer: string; bodyBytesSent: number }> {
  const { hostname, port } = new URL(wardenB.inboundUrl!);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  const length = streamBody ? 'transfer-encoding: chunked' : `content-length: ${8 * 1024 * 1024}`;
  socket.write(`POST /agents/b-agent/ask HTTP/1.1\r\nhost: b\r\ncontent-type: application/json\r\n${length}\r\nx-warden-identity: ${token}\r\n\r\n`);
  let bodyBytesSent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = streamBody ? setInterval(() => {
    if (socket.writable) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`, () => (bodyBytesSent += chunk.length));
  }, 5) : undefined;
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.on('error', () => undefined); // B may reset the connection while chunks are still being written
  const closed = once(socket, 'close');
  const timeout = setTimeout(() => socket.destroy(), 5_000);
  try {
    await closed;
  } finally {
    clearInterval(pump);
    clearTimeout(timeout);
  }
  return { answer, bodyBytesSent };
}

test('a forged or expired token is refused from the request head, without waiting for (or buffering) the body', async () => {
  const body = '{"n":1}';
  const [h, claims] = tokenFor(body).split('.');
  const { privateKey } = generateKeyPairSync('ed25519');
  const forged = `${h}.${claims}.${tokenFor(body, { key: { privateKey, publicKey: '', keyId: keyA.keyId, source: 'test' } }).split('.')[2]}`;
  const expired = tokenFor(body, { now: Date.now() - 120_000 });
  const calls = refunds.calls;
  for (const [token, code, streamBody] of [[forged, 'FORGED', false], [expired, 'EXPIRED', false], [forged, 'FORGED', true], [expired, 'EXPIRED', true]] as const) {
    const at = Date.now();
    const { answer, bodyBytesSent } = await headOnly(token, streamBody);
    // The body never comes (or never ends), and still the answer does, long before the 60 s body deadline.
    assert.match(answer, /^HTTP\/1\.1 401 /, `${code}, ${streamBody ? 'endless body' : 'no body'}: ${answer.slice(0, 200)}`);
    assert.match(answer, new RegExp(`"code":"WARDEN_ERR_IDENTITY_${code}"`));
    assert.match(answer, /\r\nconnection: close\r\n/i, 'the connection closes rather than the rest of the body being drained');
    assert.ok(Date.now() - at < 4_000, `answered in ${Date.now() - at} ms`);
    assert.ok(bodyBytesSent < 8 * 1024 * 1024, `the body was not read to its end (${bodyBytesSent} bytes sent)`);
  }
  assert.equal(refunds.calls, calls);
  // A good token with its body still goes through after all that.
  assert.equal((await inbound(tokenFor(body), body)).status, 200);
});

test('each listener serves its own side only', async () => {
  // A cannot call an agent its policy does not list.
  const unknown = await post(`${wardenA.trafficUrl}/agents/z-agent/ask`, {});
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'WARDEN_ERR_UNKNOWN_AGENT');
  // The inbound listener serves /agents/{its agent}/* and nothing else: no model routes, no other agent.
  assert.equal((await post(`${wardenB.inboundUrl}/v1/chat/completions`, { model: 'gpt-4o', messages: [] })).status, 404);
  assert.equal((await post(`${wardenB.inboundUrl}/agents/c-agent/x`, {}, { 'x-warden-identity': tokenFor('{}') })).json.error.code, 'WARDEN_ERR_UNKNOWN_AGENT');
  // A has no inbound section and no inbound listener.
  assert.equal(wardenA.inboundUrl, undefined);
});
