// The dashboard end to end, in headless Chromium: a real sidecar handles a scripted mix of calls
// (two models, three tasks and none, streamed and not, OpenAI and Anthropic SDKs, upstream errors, a
// tool outside the agent's scope, a tool held for a person) and ships its audit log to a real
// collector. A person approves the held call from the sidecar's admin page and the call is
// released; then the collector's pages are read as a browser shows them: the overview's totals and
// the agent page's cost per task must match what the sidecar's own audit log says. Every page is
// screenshotted into test-artifacts/.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { NO_TASK } from '../../collector/dashboard-data.ts';
import { count, usd } from '../../collector/dashboard/format.ts';
import { startFakeUpstream, type FakeUpstream } from '../../proxy/demo/fake-upstream.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';
import { auditLogSize, auditRecords } from '../helpers/audit.ts';
import { ARTIFACTS, launchBrowser } from '../helpers/browser.ts';
import { startCollector, TOKEN, type TestCollector } from '../helpers/collector.ts';
import { startJsonTool, type JsonTool } from '../helpers/escalation.ts';
import { startWarden, tempDataDir, tempFile, waitFor } from '../helpers/warden.ts';

const AGENT = 'checkout-bot';
const ADMIN_TOKEN = 'e2e-admin-Qm7vX2pL9sK4';

let fake: FakeUpstream;
let tool: JsonTool;
let collector: TestCollector;
let sidecar: Sidecar;
let dataDir: string;
let browser: Browser;

before(async () => {
  fake = await startFakeUpstream({ recordBodies: false });
  tool = await startJsonTool('{"refund_id":"re_81","status":"pending"}');
  collector = await startCollector();
  dataDir = tempDataDir();
  const env = { WARDEN_COLLECTOR_URL: collector.url, WARDEN_COLLECTOR_TOKEN: TOKEN, WARDEN_ADMIN_TOKEN: ADMIN_TOKEN };
  Object.assign(process.env, env);
  try {
    sidecar = await startWarden(tempFile('e2e.yaml', `apiVersion: warden/v1
kind: Policy
agent: { id: ${AGENT}, version: 3.1.0, scopes: [support] }
upstreams:
  openai: { baseUrl: "${fake.url}/v1" }
  anthropic: { baseUrl: "${fake.url}" }
models:
  gpt-4o: { price: { inputPerMTok: 2.5, outputPerMTok: 10 } }
  gpt-4o-mini: { price: { inputPerMTok: 0.15, outputPerMTok: 0.6 } }
  claude-sonnet-5-5: { price: { inputPerMTok: 3, outputPerMTok: 15 } }
tools:
  issue_refund:
    scope: support
    approval: human
    http: { url: "${tool.url}/refunds" }
  wire_money:
    scope: finance
    http: { url: "${tool.url}/wire" }
escalation:
  timeoutMs: 120000
`), false, dataDir);
  } finally {
    for (const name of Object.keys(env)) delete process.env[name];
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await sidecar?.shutdown();
  await collector?.close();
  await Promise.all([fake?.close(), tool?.close()]);
});

/** The scripted agent: what a checkout bot does in a morning, through both official SDKs. */
async function runAgent(): Promise<void> {
  const openai = (task?: string) => new OpenAI({ apiKey: 'sk-agent', baseURL: `${sidecar.trafficUrl}/v1`, maxRetries: 0, defaultHeaders: task ? { 'x-warden-task': task } : {} });
  const ask = (text: string) => [{ role: 'user' as const, content: text }];
  const refund = openai('refund-81');
  await refund.chat.completions.create({ model: 'gpt-4o', messages: ask('Order 81 arrived broken. What can I do?') });
  await refund.chat.completions.create({ model: 'gpt-4o', messages: ask('Please refund order 81 in full, the parcel was crushed and the vase inside is in pieces.') });
  const stream = await refund.chat.completions.create({ model: 'gpt-4o', stream: true, messages: ask('Summarize the refund for the customer.') });
  for await (const chunk of stream) void chunk;
  const triage = openai('triage-12');
  await triage.chat.completions.create({ model: 'gpt-4o-mini', messages: ask('Classify: "where is my parcel"') });
  await triage.responses.create({ model: 'gpt-4o-mini', input: 'Classify: "cancel my subscription please"' });
  const anthropic = new Anthropic({ apiKey: 'sk-ant-agent', baseURL: `${sidecar.trafficUrl}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-warden-task': 'escalate-3' } });
  await anthropic.messages.create({ model: 'claude-sonnet-5-5', max_tokens: 200, messages: ask('Draft an apology for a late delivery.') });
  await anthropic.messages.stream({ model: 'claude-sonnet-5-5', max_tokens: 200, messages: ask('Shorter, please.') }).finalMessage();
  // No task header: attributed to the agent, not to a task.
  await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: ask('Good morning!') });
  // Two calls the upstream refuses: they count as errors.
  for (const id of [1, 2]) {
    await assert.rejects(triage.chat.completions.create({ model: 'gpt-4o', messages: ask('?') }, { headers: { 'x-fake-scenario': `status=400;id=${id}` } }), { status: 400 });
  }
  // A tool outside the agent's scopes: refused before it reaches the tool, a violation.
  const wire = await request(`${sidecar.trafficUrl}/tools/wire_money`, {
    method: 'POST', body: JSON.stringify({ to: 'DE89 3704 0044 0532 0130 00', amount: 900 }), headers: { 'content-type': 'application/json', 'x-warden-task': 'refund-81' },
  });
  assert.match(((await wire.body.json()) as { error: { message: string } }).error.message, /^scope_violation: "wire_money" needs scope "finance"/);
  assert.equal(wire.headers['x-warden-tool-outcome'], 'blocked');
  assert.equal(tool.received.length, 0, 'nothing reached the tool');
}



/** A headline number on the overview, by its card's label. */
async function card(page: Page, label: string): Promise<string> {
  return (await page.locator('.card', { has: page.locator('.label', { hasText: new RegExp(`^${label}$`) }) }).locator('.value').innerText()).trim();
}

/** A table's rows as the page shows them: the caption names the table, cells by column label. */
async function tableRows(page: Page, caption: string): Promise<Record<string, string>[]> {
  const t = page.locator('table', { has: page.locator('caption', { hasText: new RegExp(`^${caption}$`) }) });
  const labels = (await t.locator('thead th').allInnerTexts()).map((s) => s.trim());
  const rows: Record<string, string>[] = [];
  for (const row of await t.locator('tbody tr').all()) {
    const cells = (await row.locator('td').allInnerTexts()).map((s) => s.trim());
    rows.push(Object.fromEntries(labels.map((l, i) => [l, cells[i]])));
  }
  return rows;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `e2e-${name}.png`), fullPage: true });

test('a sidecar\'s scripted morning, read back in Chromium: overview totals, cost per task, an escalation approved from the admin page', { timeout: 120_000 }, async () => {
  const problems: string[] = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });

  await runAgent();

  // The held call: a refund that needs a person. It waits while the admin page shows it.
  const held = request(`${sidecar.trafficUrl}/tools/issue_refund`, {
    method: 'POST', body: JSON.stringify({ order_id: 'ORD-81', amount: 49.5 }),
    headers: { 'content-type': 'application/json', 'x-warden-task': 'refund-81', 'x-warden-session': 'sess-81' },
  }).then(async (r) => ({ status: r.statusCode, outcome: r.headers['x-warden-tool-outcome'], body: await r.body.text() }));
  await page.goto(`${sidecar.adminUrl}/`);
  const row = page.locator('[data-escalation]');
  await row.waitFor({ timeout: 10_000 });
  assert.equal(tool.received.length, 0, 'the refund has not reached the tool');
  assert.match(await row.innerText(), /issue_refund[\s\S]*ORD-81/);
  await page.fill('#admin-token', ADMIN_TOKEN);
  await row.locator('[data-note]').fill('photo of the broken vase checked');
  await shot(page, 'admin-pending');
  await row.locator('button[data-action="approve"]').click();
  await page.waitForSelector('#action-result.ok');
  assert.match(await page.innerText('#action-result'), /^Approved esc/);
  const released = await held;
  assert.deepEqual([released.status, released.outcome], [200, 'ok'], 'the approved call is released');
  assert.deepEqual(tool.received, [{ order_id: 'ORD-81', amount: 49.5 }], 'the refund reached the tool once, as asked');
  assert.deepEqual(JSON.parse(released.body), { refund_id: 're_81', status: 'pending' });
  await page.reload();
  await page.waitForSelector('#no-escalations');
  assert.ok(await page.locator('#recent-calls [data-request-id]').count() >= 10, 'the recent calls are listed');
  await shot(page, 'admin-after');

  // Everything the sidecar recorded reaches the collector.
  await waitFor(async () => (await collector.logSize()) === auditLogSize(dataDir), 30_000, 'the collector to hold the whole log');

  // What the sidecar's own audit log says: the figures the pages must show.
  const calls = auditRecords(dataDir, 'model_call');
  const errors = calls.filter((c) => c.status >= 400 || c.error !== undefined);
  assert.equal(calls.length, 10);
  assert.equal(errors.length, 2);
  const costOf = (rs: Record<string, any>[]) => rs.reduce((s, r) => s + (r.cost_usd ?? 0), 0);
  const byTask = new Map<string, Record<string, any>[]>();
  for (const c of calls) byTask.set(c.task ?? NO_TASK, [...(byTask.get(c.task ?? NO_TASK) ?? []), c]);
  assert.deepEqual([...byTask.keys()].sort(), [NO_TASK, 'escalate-3', 'refund-81', 'triage-12']);
  for (const [task, rs] of byTask) {
    if (task !== NO_TASK) assert.ok(costOf(rs.filter((r) => r.status === 200)) > 0, `${task} cost something`);
  }

  // The collector's dashboard, signed in with the fleet token.
  await page.goto(`${collector.url}/`);
  assert.match(page.url(), /\/login/);
  await shot(page, 'login');
  await page.fill('input[name=token]', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('.cards');
  // Today's figures are today's (UTC) records: a run across midnight splits them as the page does.
  const today = new Date().toISOString().slice(0, 10);
  const callsToday = calls.filter((c) => c.ts.startsWith(today));
  assert.equal(await card(page, 'Agents'), '1');
  assert.equal(await card(page, 'Calls today'), count(callsToday.length));
  assert.equal(await card(page, 'Errors today'), count(callsToday.filter((c) => errors.includes(c)).length));
  assert.equal(await card(page, 'Cost today'), usd(costOf(callsToday)));
  const month = today.slice(0, 7);
  const callsMonth = calls.filter((c) => c.ts.startsWith(month));
  assert.equal(await card(page, 'Calls this month'), count(callsMonth.length));
  assert.equal(await card(page, 'Cost this month'), usd(costOf(callsMonth)));
  assert.equal(await card(page, 'Integrity alerts'), '0');
  const [agentRow] = await tableRows(page, 'Agents');
  assert.deepEqual([agentRow.Agent, agentRow.Version, agentRow['Calls (month)'], agentRow['Errors (month)'], agentRow['Cost this month']],
    [AGENT, '3.1.0', count(callsMonth.length), count(callsMonth.filter((c) => errors.includes(c)).length), usd(costOf(callsMonth))]);
  assert.ok(Number(agentRow.Violations) >= 1, 'the out-of-scope tool call is a violation');
  assert.equal(await page.locator('svg[role="img"]').count(), 2, 'two trend charts');
  await shot(page, 'overview');

  // The agent page: cost per task as the audit records add it up, on the page and in its export.
  await page.click(`a[href="/agents/${AGENT}"]`);
  await page.waitForSelector('caption:text-is("Cost per task")');
  const taskRows = await tableRows(page, 'Cost per task');
  const shown = new Map(taskRows.map((r) => [r.Task, r]));
  assert.deepEqual([...shown.keys()].sort(), [...byTask.keys()].sort());
  for (const [task, rs] of byTask) {
    assert.equal(shown.get(task)!.Calls, count(rs.length), `${task} calls`);
    assert.equal(shown.get(task)!.Cost, usd(costOf(rs)), `${task} cost`);
    assert.equal(shown.get(task)!['Input tokens'], count(rs.reduce((s, r) => s + (r.usage?.input_tokens ?? 0), 0)), `${task} input tokens`);
  }
  // The export as the browser downloads it (its session cookie, no token).
  const exported = await (await page.request.get(`${collector.url}/agents/${AGENT}?format=json&table=tasks`)).json() as { rows: { key: string | null; costUsd: number; calls: number }[] };
  for (const r of exported.rows) {
    const rs = byTask.get(r.key ?? NO_TASK)!;
    assert.ok(Math.abs(r.costUsd - costOf(rs)) < 1e-12, `${r.key} exported cost ${r.costUsd} = ${costOf(rs)}`);
  }
  const models = new Map((await tableRows(page, 'Cost per model')).map((r) => [r.Model, r]));
  assert.deepEqual([...models.keys()].sort(), [...new Set(calls.map((c) => c.model?.served ?? c.model?.asked))].sort());
  const violations = await tableRows(page, 'Violations by kind');
  assert.ok(violations.some((v) => v.Tool === 'wire_money'), `the scope violation is listed: ${JSON.stringify(violations)}`);
  const escalations = await tableRows(page, 'Escalations');
  assert.ok(escalations.some((e) => e.Tool === 'issue_refund' && e.Outcome === 'approved' && e.By === 'admin page'), `the approval is listed: ${JSON.stringify(escalations)}`);
  await shot(page, 'agent');

  // Audit search, one record, the alerts and the prices.
  await page.goto(`${collector.url}/records?agent=${AGENT}&event=tool_call`);
  const found = await tableRows(page, 'Records');
  assert.equal(found.length, auditRecords(dataDir, 'tool_call').length);
  await shot(page, 'records');
  await page.locator('table a').first().click();
  await page.waitForSelector('#record-json');
  assert.match(await page.innerText('#record-json'), /"event": ?"tool_call"/);
  await shot(page, 'record');
  await page.goto(`${collector.url}/alerts`);
  await shot(page, 'alerts');
  await page.goto(`${collector.url}/prices`);
  await shot(page, 'prices');
  assert.deepEqual(problems, []);
});
