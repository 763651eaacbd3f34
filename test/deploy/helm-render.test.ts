// The Helm chart rendered by a real `helm` (installed by .ci/install-helm from an npm package:
// Debian has no Helm), and every rendered manifest validated against the Kubernetes OpenAPI
// schemas that the `kubernetes-models` packages carry (no network at test time). Also checks
// that values.schema.json refuses what would not run, and that the PrometheusRule and the
// Grafana dashboard only name metrics the proxy really exports.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ProxyMetrics } from '../../src/ops/metrics.ts';
import { REPO_ROOT } from './settings.ts';

const CHART = join(REPO_ROOT, 'helm', 'gitlab-scope-proxy');

type Obj = Record<string, unknown>;

function findHelm(): string {
  const local = join(REPO_ROOT, 'node_modules', '.cache', 'helm', 'helm');
  if (process.env['HELM']) return process.env['HELM'];
  const onPath = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
  if (!onPath.error && onPath.status === 0) return 'helm';
  if (existsSync(local)) return local;
  throw new Error('no helm: run `bash .ci/install-helm` (installs it from the npm registry into node_modules/.cache/helm)');
}
const HELM = findHelm();

/** The least a working install needs. */
const REQUIRED = ['gitlab.url=https://git.example.com', 'secret.gitlabToken=glpat-test-not-real', 'secret.jwtSecret=0123456789abcdef0123456789abcdef'];

/** Every optional object switched on. */
const EVERYTHING = [
  ...REQUIRED,
  'publicUrl=https://gitlab-proxy.example.com',
  'ingress.enabled=true',
  'ingress.tls[0].secretName=gitlab-proxy-tls',
  'ingress.tls[0].hosts[0]=gitlab-proxy.example.com',
  'autoscaling.enabled=true',
  'autoscaling.targetMemoryUtilizationPercentage=80',
  'networkPolicy.enabled=true',
  'serviceMonitor.enabled=true',
  'prometheusRule.enabled=true',
  'grafanaDashboard.enabled=true',
  'tls.existingSecret=proxy-tls',
  'audit.file=audit.log',
  'jwt.jwksUrl=https://idp.example.com/jwks',
  'serviceAccount.annotations.team=platform',
];

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function render(sets: string[], extra: string[] = []): Obj[] {
  const r = helm(['template', 'gsp', CHART, '--namespace', 'proxy', ...sets.flatMap((s) => ['--set', s]), ...extra]);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

function find(docs: Obj[], kind: string, nameSuffix = ''): Obj {
  const doc = docs.find((d) => d['kind'] === kind && String((d['metadata'] as Obj)['name']).endsWith(nameSuffix));
  if (!doc) throw new Error(`no ${kind} rendered`);
  return doc;
}

// apiVersion/kind -> the kubernetes-models module whose class validates it.
const MODELS: Record<string, string> = {
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'autoscaling/v2/HorizontalPodAutoscaler': 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget',
  'networking.k8s.io/v1/Ingress': 'kubernetes-models/networking.k8s.io/v1/Ingress',
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
  'monitoring.coreos.com/v1/ServiceMonitor': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PrometheusRule': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
};

async function validateAgainstSchema(doc: Obj): Promise<void> {
  const key = `${String(doc['apiVersion'])}/${String(doc['kind'])}`;
  const module = MODELS[key];
  if (!module) throw new Error(`no schema for ${key}: add it to MODELS`);
  const exports = (await import(module)) as Record<string, new (data: Obj) => { validate: () => void }>;
  const Model = exports[String(doc['kind'])]!;
  new Model(doc).validate();
}

/** Names a PromQL expression selects (`name{...}`, `name[5m]`, a bare `name`), PromQL's own words left out. */
const PROMQL_WORDS = new Set(['sum', 'max', 'min', 'count', 'avg', 'by', 'without', 'rate', 'increase', 'histogram_quantile', 'le', 'label_values']);
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const names = [...withoutStrings.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]);
  return names.filter((n) => !PROMQL_WORDS.has(n) && !/^(namespace|pod|client|decision|reason|kind|result|checksum)$/.test(n));
}

/** Every series name the proxy's registry exports (histograms as _bucket, _sum, _count). */
async function exportedSeries(): Promise<Set<string>> {
  const metrics = new ProxyMetrics({}, { processMetrics: true });
  metrics.limitsShared(true); // exported only with REDIS_URL
  const out = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    out.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(m.name + s);
  }
  return out;
}

describe('helm chart rendered by helm', () => {
  it(`renders with the least values and with everything on, and every manifest passes the Kubernetes schemas (${execFileSync(HELM, ['version', '--short'], { encoding: 'utf8' }).trim()})`, async () => {
    const minimal = render(REQUIRED);
    const full = render(EVERYTHING, ['--set-file', `policies.acme-ci\\.yaml=${join(REPO_ROOT, 'policies', 'presets', 'packit.yaml')}`, '--set-string', 'gitlab.caCert=-----BEGIN CERTIFICATE-----']);
    expect(minimal.map((d) => d['kind']).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'ServiceAccount']);
    expect(new Set(full.map((d) => d['kind']))).toEqual(new Set([
      'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'PodDisruptionBudget',
      'PrometheusRule', 'Secret', 'Service', 'ServiceAccount', 'ServiceMonitor',
    ]));
    for (const doc of [...minimal, ...full]) await validateAgainstSchema(doc);
    // The validator is not a no-op: a Deployment with a container port that is not a number fails.
    const broken = structuredClone(find(minimal, 'Deployment'));
    (((((broken['spec'] as Obj)['template'] as Obj)['spec'] as Obj)['containers'] as Obj[])[0]!['ports'] as Obj[])[0]!['containerPort'] = 'eighty';
    await expect(validateAgainstSchema(broken)).rejects.toThrow(/containerPort must be integer/);
  });

  it('passes helm lint with the required values', () => {
    const r = helm(['lint', CHART, '--strict', ...REQUIRED.flatMap((s) => ['--set', s])]);
    expect(r.stderr + r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.status).toBe(0);
  });

  it('refuses to install without gitlab.url, a GitLab token or a JWT key, and on a misspelt value', () => {
    const fails = (sets: string[]): string => {
      const r = helm(['template', 'gsp', CHART, ...sets.flatMap((s) => ['--set', s])]);
      expect(r.status, sets.join(' ')).not.toBe(0);
      return r.stderr;
    };
    expect(fails(REQUIRED.slice(1))).toMatch(/gitlab\.url/);
    expect(fails(['gitlab.url=', ...REQUIRED.slice(1)])).toMatch(/gitlab\.url/);
    expect(fails(['gitlab.url=git.example.com', ...REQUIRED.slice(1)])).toMatch(/gitlab\.url: Does not match pattern/);
    expect(fails([REQUIRED[0]!, REQUIRED[2]!])).toMatch(/secret\.(existingSecret|gitlabToken)/);
    expect(fails(REQUIRED.slice(0, 2))).toMatch(/anyOf/);
    expect(fails([...REQUIRED, 'gitlab.ur=https://x'])).toMatch(/Additional property ur is not allowed/);
    expect(fails([...REQUIRED, 'audit.onFailure=ignore'])).toMatch(/audit\.onFailure/);
    // Each alone is enough for the JWT key: a public key, or a JWKS URL.
    expect(render([...REQUIRED.slice(0, 2), 'jwt.jwksUrl=https://idp.example.com/jwks']).length).toBeGreaterThan(0);
  });

  it('runs as its own ServiceAccount without a token, spread over nodes and zones by default', () => {
    const docs = render(REQUIRED);
    const account = find(docs, 'ServiceAccount');
    expect(account['automountServiceAccountToken']).toBe(false);
    const pod = ((find(docs, 'Deployment')['spec'] as Obj)['template'] as Obj)['spec'] as Obj;
    expect(pod['serviceAccountName']).toBe((account['metadata'] as Obj)['name']);
    expect(pod['automountServiceAccountToken']).toBe(false);
    const spread = pod['topologySpreadConstraints'] as Obj[];
    expect(spread.map((c) => c['topologyKey'])).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const c of spread) {
      expect(c['whenUnsatisfiable']).toBe('ScheduleAnyway');
      expect((c['labelSelector'] as Obj)['matchLabels']).toEqual({ 'app.kubernetes.io/name': 'gitlab-scope-proxy', 'app.kubernetes.io/instance': 'gsp' });
    }
    // Own constraints replace the default; without a created account the pods use "default".
    const custom = render([...REQUIRED, 'topologySpreadConstraints[0].maxSkew=2', 'topologySpreadConstraints[0].topologyKey=rack',
      'topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule', 'serviceAccount.create=false']);
    const customPod = ((find(custom, 'Deployment')['spec'] as Obj)['template'] as Obj)['spec'] as Obj;
    expect((customPod['topologySpreadConstraints'] as Obj[]).map((c) => c['topologyKey'])).toEqual(['rack']);
    expect(customPod['serviceAccountName']).toBe('default');
    expect(custom.some((d) => d['kind'] === 'ServiceAccount')).toBe(false);
    const none = render([...REQUIRED, 'defaultTopologySpread=false']);
    expect((((find(none, 'Deployment')['spec'] as Obj)['template'] as Obj)['spec'] as Obj)['topologySpreadConstraints']).toBeUndefined();
  });

  it("lets the NetworkPolicy reach GitLab on gitlab.url's port", () => {
    const gitlabPorts = (url: string, extra: string[] = []): unknown => {
      const policy = find(render([`gitlab.url=${url}`, ...REQUIRED.slice(1), 'networkPolicy.enabled=true', ...extra]), 'NetworkPolicy');
      return ((policy['spec'] as Obj)['egress'] as Obj[])[0]!['ports'];
    };
    expect(gitlabPorts('https://git.example.com')).toEqual([{ port: 443, protocol: 'TCP' }]);
    expect(gitlabPorts('http://git.example.com/gitlab')).toEqual([{ port: 80, protocol: 'TCP' }]);
    expect(gitlabPorts('https://git.example.com:8443/gitlab')).toEqual([{ port: 8443, protocol: 'TCP' }]);
    expect(gitlabPorts('http://[fd00::5]:8080')).toEqual([{ port: 8080, protocol: 'TCP' }]);
    expect(gitlabPorts('https://[fd00::5]')).toEqual([{ port: 443, protocol: 'TCP' }]);
    expect(gitlabPorts('https://git.example.com', ['networkPolicy.egress.gitlab.ports[0].port=9443'])).toEqual([{ port: 9443 }]);
  });

  it('ships the alerts docs/operations.md lists, each naming metrics the proxy exports', async () => {
    const exported = await exportedSeries();
    const rule = find(render([...REQUIRED, 'prometheusRule.enabled=true']), 'PrometheusRule');
    const rules = ((rule['spec'] as Obj)['groups'] as Obj[]).flatMap((g) => g['rules'] as Obj[]);
    const byName = new Map(rules.map((r) => [String(r['alert']), String(r['expr'])]));
    // The alerts docs/operations.md recommends, by the metric each one watches.
    const operations = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    for (const name of byName.keys()) expect(operations, `docs/operations.md should describe ${name}`).toContain(name);
    for (const [alert, metric] of [
      ['GspAuditLogUnwritable', 'gsp_audit_writable'], ['GspAuditLinesLost', 'gsp_audit_lines_lost_total'],
      ['GspPolicyReloadFailed', 'gsp_policy_reloads_total'], ['GspUpstreamErrors', 'gsp_upstream_errors_total'],
      ['GspClientRateLimited', 'gsp_limit_refusals_total'], ['GspPolicyDiverged', 'gsp_policy_info'], ['GspGitLabDown', 'gsp_gitlab_up'],
      ['GspLimitsNotShared', 'gsp_limits_shared'],
    ] as const) {
      expect(metricNames(byName.get(alert) ?? ''), alert).toContain(metric);
    }
    for (const [alert, expr] of byName) {
      expect(expr, alert).toContain('namespace="proxy", service="gsp-gitlab-scope-proxy-admin"');
      for (const name of metricNames(expr)) expect(exported.has(name), `${alert}: ${name} is not exported`).toBe(true);
    }
  });

  it('ships a Grafana dashboard whose every query names metrics the proxy exports', async () => {
    const exported = await exportedSeries();
    const map = find(render([...REQUIRED, 'grafanaDashboard.enabled=true']), 'ConfigMap', '-dashboard');
    expect(((map['metadata'] as Obj)['labels'] as Obj)['grafana_dashboard']).toBe('1');
    const dashboard = JSON.parse(String((map['data'] as Obj)['gitlab-scope-proxy.json'])) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const topic of [/requests by client and decision/i, /denials by reason/i, /latency/i, /upstream errors/i, /reloads/i]) expect(titles).toMatch(topic);
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets) {
        const names = metricNames(expr.replace(/\$__rate_interval/g, '5m'));
        expect(names.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        for (const name of names) {
          expect(exported.has(name), `${panel.title}: ${name} is not exported`).toBe(true);
          queried.add(name);
        }
      }
    }
    expect(queried).toContain('gsp_denials_total');
    // The self-check: a name the proxy does not export is caught.
    expect(exported.has('gsp_requests_denied_total')).toBe(false);
  });
});
