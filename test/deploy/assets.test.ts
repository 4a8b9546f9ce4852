// The deployment assets in deploy/: every metric the Grafana dashboard and the alert rules query is one
// a running sidecar exposes, the files parse, and the task definition, CloudFormation and Terraform
// say the same thing about ports, the health check and the environment.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { driftRig, type DriftRig } from '../evals/helpers.ts';
import { ROOT, startWarden } from '../helpers/warden.ts';
import type { Sidecar } from '../../proxy/sidecar.ts';

const read = (p: string) => readFileSync(join(ROOT, 'deploy', p), 'utf8');
const dashboard = JSON.parse(read('grafana/warden-dashboard.json'));
const alerts = parse(read('prometheus/alerts.yml')) as { groups: { name: string; rules: { alert: string; expr: string; labels?: { severity?: string } }[] }[] };
const prometheus = parse(read('prometheus/prometheus.yml'));
const taskDef = JSON.parse(read('task-definition.json'));
const cfn = parse(read('cloudformation.yaml'));
const tf = read('terraform/main.tf');

/** The warden_* metric names a PromQL expression reads: string literals, label matchers and `by (…)` lists dropped. */
export function promqlMetricNames(expr: string): string[] {
  const code = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...new Set([...code.matchAll(/(?<![\w:])(warden_[a-zA-Z0-9_:]*)/g)].map((m) => m[1]))];
}

/** Every series name /metrics can carry, from its `# TYPE` lines: histograms as _bucket/_sum/_count. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

const dashboardExprs = (): string[] => dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr));
const alertExprs = () => alerts.groups.flatMap((g) => g.rules.map((r) => r.expr));

let rig: DriftRig;
let warden: Sidecar;
let metricsText: string;

before(async () => {
  rig = await driftRig({ old: { returns: 0.9, orders: 0.9, scope: 0.9 }, new: { returns: 0.9, orders: 0.9, scope: 0.9 } });
  warden = await startWarden(rig.policyFile);
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${warden.trafficUrl}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `returns question number ${i + 1}` }] }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  const res = await fetch(`${warden.adminUrl}/metrics`);
  assert.equal(res.status, 200);
  metricsText = await res.text();
});
after(async () => {
  await warden?.shutdown();
  await rig?.close();
});

test('promqlMetricNames finds metric names, not labels, strings or functions', () => {
  assert.deepEqual(promqlMetricNames('histogram_quantile(0.9, sum by (le, warden_x) (rate(warden_a_bucket{job="warden_b", x=~\'warden_c\'}[5m]))) / warden_d:rate5m'), ['warden_a_bucket', 'warden_d:rate5m']);
  assert.deepEqual(promqlMetricNames('sum(warden_requests_total) and on (instance) warden_audit_unshipped_records > 0'), ['warden_requests_total', 'warden_audit_unshipped_records']);
});

test('every metric the dashboard and the alert rules query is exposed on /metrics by a running sidecar', () => {
  const exposed = exposedNames(metricsText);
  assert.ok(exposed.has('warden_requests_total') && exposed.has('warden_overhead_seconds_bucket') && exposed.has('warden_drift_deviation'));
  // The calls above were counted.
  assert.match(metricsText, /^warden_requests_total\{[^}]*route="[^"]+"[^}]*status="200"[^}]*\} 2$/m);
  const used = new Map<string, string>();
  for (const [where, exprs] of [['dashboard', dashboardExprs()], ['alerts.yml', alertExprs()]] as const) {
    assert.ok(exprs.length > 0, where);
    for (const expr of exprs) {
      const names = promqlMetricNames(expr);
      assert.ok(names.length > 0, `${where}: no warden_ metric in ${expr}`);
      for (const n of names) used.set(n, where);
    }
  }
  const missing = [...used].filter(([n]) => !exposed.has(n)).map(([n, where]) => `${n} (${where})`);
  assert.deepEqual(missing, [], 'metrics queried but not exposed');
  // Histograms are only queried through their series, and quantiles through _bucket.
  for (const expr of [...dashboardExprs(), ...alertExprs()]) {
    for (const [, inner] of expr.matchAll(/histogram_quantile\([^,]+,(.*)/g)) assert.match(inner, /warden_\w+_bucket/, expr);
  }
  // The dashboard covers what an operator asks first.
  for (const n of ['warden_requests_total', 'warden_request_duration_seconds_bucket', 'warden_overhead_seconds_bucket', 'warden_tokens_total',
    'warden_cost_usd_total', 'warden_violations_total', 'warden_retries_total', 'warden_audit_unshipped_records', 'warden_audit_disk_bytes',
    'warden_drift_deviation', 'warden_trust_score', 'warden_escalations']) {
    assert.ok(dashboardExprs().some((e) => promqlMetricNames(e).includes(n)), `the dashboard shows ${n}`);
  }
  console.log(`# ${used.size} distinct metric names queried (${dashboardExprs().length} dashboard expressions, ${alertExprs().length} alert rules), all exposed`);
});

test('alerts.yml: the expected groups, each rule named, with a severity and an expression', () => {
  assert.deepEqual(alerts.groups.map((g) => g.name), ['warden-upstream', 'warden-drift', 'warden-audit', 'warden-policy', 'warden-trust', 'warden-escalations']);
  const names = alerts.groups.flatMap((g) => g.rules.map((r) => r.alert));
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const a of ['WardenUpstreamErrorRate', 'WardenBehaviourDrift', 'WardenPassiveShift', 'WardenAuditBacklog', 'WardenViolations',
    'WardenBudgetExhausted', 'WardenRateLimited', 'WardenTrustScoreLow', 'WardenEscalationsPending']) assert.ok(names.includes(a), a);
  for (const g of alerts.groups) for (const r of g.rules) {
    assert.ok(['info', 'warning', 'critical'].includes(r.labels?.severity ?? ''), `${r.alert} severity`);
    assert.ok(r.expr.trim(), r.alert);
  }
  const uses = (alert: string, metric: string) => promqlMetricNames(alerts.groups.flatMap((g) => g.rules).find((r) => r.alert === alert)!.expr).includes(metric);
  assert.ok(uses('WardenBehaviourDrift', 'warden_drift_deviation'));
  assert.ok(uses('WardenPassiveShift', 'warden_passive_alerts_total'));
  assert.ok(uses('WardenAuditBacklog', 'warden_audit_unshipped_records'));
});

test('prometheus.yml loads the rules and scrapes the admin port\'s /metrics', () => {
  assert.deepEqual(prometheus.rule_files, ['alerts.yml']);
  const jobs = prometheus.scrape_configs as { job_name: string; metrics_path: string; dns_sd_configs?: { type: string }[]; file_sd_configs?: unknown[] }[];
  assert.ok(jobs.every((j) => j.metrics_path === '/metrics'));
  assert.equal(jobs[0].dns_sd_configs?.[0].type, 'SRV');
  assert.ok(jobs.some((j) => j.file_sd_configs));
  assert.equal(dashboard.uid, 'warden-sidecars');
  assert.ok(dashboard.panels.length >= 20);
});

type KV = { name: string; value?: string; valueFrom?: string };
const envOf = (list: KV[]) => Object.fromEntries(list.map((e) => [e.name, e.value ?? e.valueFrom]));

test('the task definition, CloudFormation and Terraform agree on ports, health check, env, volumes and start order', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const probe = JSON.parse(/^\s*CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
  // The task definition (JSON): the image's health check, the image's env, the agent pointed at Warden.
  assert.equal(taskDef.networkMode, 'awsvpc');
  assert.deepEqual(taskDef.requiresCompatibilities, ['FARGATE']);
  const [warden, agent] = taskDef.containerDefinitions;
  assert.equal(warden.name, 'warden');
  assert.match(warden.image, /@sha256:/, 'the sidecar is pinned by digest');
  assert.deepEqual(warden.healthCheck.command, ['CMD', ...probe], 'the same probe as the image');
  assert.deepEqual(warden.portMappings.map((p: { containerPort: number }) => p.containerPort), [15101]);
  const wEnv = envOf(warden.environment);
  assert.equal(wEnv.WARDEN_LISTEN, '127.0.0.1:15100');
  assert.equal(wEnv.WARDEN_ADMIN_LISTEN, '0.0.0.0:15101');
  assert.equal(wEnv.WARDEN_DATA_DIR, '/var/lib/warden');
  assert.deepEqual(Object.keys(envOf(warden.secrets)).sort(), ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'WARDEN_AGENT_TOKEN', 'WARDEN_COLLECTOR_TOKEN']);
  assert.equal(warden.readonlyRootFilesystem, true);
  assert.deepEqual(warden.mountPoints.map((m: { containerPath: string }) => m.containerPath), ['/var/lib/warden', '/tmp']);
  assert.ok(warden.stopTimeout <= 120 && warden.logConfiguration.logDriver === 'awslogs');
  assert.deepEqual(agent.dependsOn, [{ containerName: 'warden', condition: 'HEALTHY' }]);
  assert.deepEqual(envOf(agent.environment), { OPENAI_BASE_URL: 'http://127.0.0.1:15100/v1', ANTHROPIC_BASE_URL: 'http://127.0.0.1:15100/anthropic' });
  assert.ok(!String(envOf(agent.secrets).OPENAI_API_KEY).includes('openai-api-key'), 'the agent never holds a provider key');

  // CloudFormation (YAML): the same containers.
  const props = cfn.Resources.TaskDefinition.Properties;
  assert.equal(props.NetworkMode, 'awsvpc');
  const [cw, ca] = props.ContainerDefinitions;
  assert.deepEqual(cw.HealthCheck.Command, warden.healthCheck.command);
  for (const k of ['Interval', 'Timeout', 'Retries', 'StartPeriod']) assert.equal(cw.HealthCheck[k], warden.healthCheck[k[0].toLowerCase() + k.slice(1)], k);
  assert.deepEqual(cw.PortMappings.map((p: { ContainerPort: number }) => p.ContainerPort), [15101]);
  const lower = (list: { Name: string; Value?: unknown; ValueFrom?: unknown }[]) => list.map((e) => ({ name: e.Name, value: typeof e.Value === 'string' ? e.Value : undefined }));
  const cEnv = envOf(lower(cw.Environment));
  assert.deepEqual(Object.keys(cEnv).sort(), Object.keys(wEnv).sort());
  for (const k of ['WARDEN_POLICY', 'WARDEN_DATA_DIR', 'WARDEN_LISTEN', 'WARDEN_ADMIN_LISTEN', 'WARDEN_AGENT_CONTAINER']) assert.equal(cEnv[k], wEnv[k], k);
  assert.deepEqual(cw.Secrets.map((s: { Name: string }) => s.Name).sort(), Object.keys(envOf(warden.secrets)).sort());
  assert.equal(cw.ReadonlyRootFilesystem, true);
  assert.deepEqual(cw.MountPoints.map((m: { ContainerPath: string }) => m.ContainerPath), ['/var/lib/warden', '/tmp']);
  assert.deepEqual(ca.DependsOn, [{ ContainerName: 'warden', Condition: 'HEALTHY' }]);
  assert.deepEqual(envOf(lower(ca.Environment)), envOf(agent.environment));
  assert.equal(cfn.Resources.Service.Properties.ServiceRegistries[0].ContainerPort, 15101);

  // Terraform (HCL, read as text): the same values.
  assert.match(tf, /network_mode\s+=\s+"awsvpc"/);
  const tfProbe = /warden_health_probe = "(.*)"$/m.exec(tf)![1];
  assert.equal(tfProbe, probe[2]);
  assert.match(tf, /command\s+=\s+\["CMD", "node", "-e", local\.warden_health_probe\]/);
  for (const k of ['interval', 'timeout', 'retries', 'startPeriod']) assert.match(tf, new RegExp(`^\\s*${k}\\s+= ${warden.healthCheck[k]}$`, 'm'), k);
  assert.match(tf, /containerPort = 15101/);
  assert.match(tf, /container_port = 15101/);
  for (const [k, v] of Object.entries(wEnv)) if (!k.includes('COLLECTOR_URL')) assert.ok(tf.includes(`{ name = "${k}", value = "${v}" }`), k);
  for (const k of Object.keys(envOf(warden.secrets))) assert.ok(tf.includes(`{ name = "${k}", valueFrom = var.`), k);
  for (const [k, v] of Object.entries(envOf(agent.environment))) assert.ok(tf.includes(`{ name = "${k}", value = "${v}" }`), k);
  assert.match(tf, /dependsOn = \[\{ containerName = "warden", condition = "HEALTHY" \}\]/);
  assert.match(tf, /readonlyRootFilesystem = true/);
  assert.match(tf, /containerPath = "\/var\/lib\/warden"/);
  // Prometheus resolves the SRV name the service registers.
  assert.ok((prometheus.scrape_configs[0].dns_sd_configs[0].names as string[])[0].startsWith(`${cfn.Resources.DiscoveryService.Properties.Name}.`));
});
