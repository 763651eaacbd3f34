// Checks of the Helm chart without Helm (it cannot be installed where the
// tests run). Templates are turned into a "skeleton" by plain substitution:
// lines holding only template actions ({{- if }}, {{- end }}, {{- include ...
// | nindent N }}...) are dropped and inline actions become placeholder
// scalars. The chart keeps control flow on lines of its own so that the
// skeleton of every template is YAML with its real kinds and structure.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { DOCUMENTED_SETTINGS, REPO_ROOT, SECRET_VALUE_SETTINGS } from './settings.ts';

const CHART_DIR = join(REPO_ROOT, 'helm', 'gitlab-scope-proxy');
const TEMPLATES_DIR = join(CHART_DIR, 'templates');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/** kind and apiVersion of every document each manifest template produces. */
const EXPECTED_DOCUMENTS: Record<string, Array<[kind: string, apiVersion: string]>> = {
  'deployment.yaml': [['Deployment', 'apps/v1']],
  'service.yaml': [
    ['Service', 'v1'],
    ['Service', 'v1'],
  ],
  'configmap.yaml': [['ConfigMap', 'v1']],
  'configmap-files.yaml': [['ConfigMap', 'v1']],
  'secret.yaml': [['Secret', 'v1']],
  'ingress.yaml': [['Ingress', 'networking.k8s.io/v1']],
  'hpa.yaml': [['HorizontalPodAutoscaler', 'autoscaling/v2']],
  'pdb.yaml': [['PodDisruptionBudget', 'policy/v1']],
  'networkpolicy.yaml': [['NetworkPolicy', 'networking.k8s.io/v1']],
  'servicemonitor.yaml': [['ServiceMonitor', 'monitoring.coreos.com/v1']],
  'serviceaccount.yaml': [['ServiceAccount', 'v1']],
  'prometheusrule.yaml': [['PrometheusRule', 'monitoring.coreos.com/v1']],
  'grafana-dashboard.yaml': [['ConfigMap', 'v1']],
  'pvc.yaml': [['PersistentVolumeClaim', 'v1']],
};

const ACTION = /\{\{[\s\S]*?\}\}/g;
const COMMENT_ACTION = /\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g;

/** Turns a template into YAML text by dropping action-only lines and replacing inline actions. */
function skeleton(template: string): string {
  let counter = 0;
  const withoutComments = template.replace(COMMENT_ACTION, '');
  return withoutComments
    .split('\n')
    .flatMap((line, index) => {
      const opens = line.split('{{').length - 1;
      const closes = line.split('}}').length - 1;
      if (opens !== closes) {
        throw new Error(`line ${index + 1}: a template action spans lines; keep each action on one line: ${line.trim()}`);
      }
      if (opens > 0 && line.replace(ACTION, '').trim() === '') return [];
      return [line.replace(ACTION, () => `__TPL_${++counter}__`)];
    })
    .join('\n');
}

/** Parses the skeleton; YAML errors (bad indentation, duplicate keys) are thrown. */
function skeletonDocuments(template: string): Obj[] {
  const docs = parseAllDocuments(skeleton(template));
  const out: Obj[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('\n'));
    const value = doc.toJS() as Json;
    if (value === null) continue; // comment-only or empty document
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error('a document is not a mapping');
    out.push(value);
  }
  return out;
}

function get(value: Json | undefined, ...path: Array<string | number>): Json | undefined {
  let current: Json | undefined = value;
  for (const key of path) {
    if (current === null || current === undefined || typeof current !== 'object') return undefined;
    current = Array.isArray(current) ? current[key as number] : current[key as string];
  }
  return current;
}

function asArray(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}

function readTemplate(name: string): string {
  return readFileSync(join(TEMPLATES_DIR, name), 'utf8');
}

const templateFiles = readdirSync(TEMPLATES_DIR).sort();
const manifestFiles = templateFiles.filter((f) => f.endsWith('.yaml'));
const valuesText = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
const values = parse(valuesText) as Obj;
const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');

/** Every `.Values.a.b.c` (also `$.Values...`) a template refers to. */
function valuesReferences(text: string): string[] {
  return [...text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1]!.slice(1));
}

function hasPath(root: Obj, dotted: string): boolean {
  let current: Json = root;
  for (const key of dotted.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, key)) {
      return false;
    }
    current = current[key]!;
  }
  return true;
}

/** Paths of values.yaml's leaves: scalars, lists and empty maps (never inside lists). */
function leafPaths(node: Json, prefix = ''): string[] {
  if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length > 0) {
    return Object.entries(node).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

const allReferences = templateFiles.flatMap((f) => valuesReferences(readTemplate(f)));

describe('skeleton renderer (self-check)', () => {
  it('drops control flow, keeps structure and catches broken YAML', () => {
    const text = [
      '{{- if .Values.on }}',
      'kind: Thing',
      'metadata:',
      '  labels:',
      '    {{- include "x" . | nindent 4 }}',
      '  name: {{ include "name" . }}-admin',
      '{{- end }}',
    ].join('\n');
    expect(skeletonDocuments(text)).toEqual([{ kind: 'Thing', metadata: { labels: null, name: '__TPL_1__-admin' } }]);
    expect(() => skeletonDocuments('a: 1\na: 2\n')).toThrow();
    expect(() => skeletonDocuments('a:\n  - b\n c: 1\n')).toThrow();
    expect(() => skeleton('a: {{ .Values.x\n | quote }}\n')).toThrow(/spans lines/);
    expect(hasPath({ a: { b: null } }, 'a.b')).toBe(true);
    expect(hasPath({ a: { b: null } }, 'a.c')).toBe(false);
  });
});

describe('helm chart: values', () => {
  it('defines every .Values path the templates use', () => {
    expect(allReferences.length).toBeGreaterThan(50);
    const missing = [...new Set(allReferences)].filter((ref) => !hasPath(values, ref));
    expect(missing, 'referenced in templates/ but missing from values.yaml').toEqual([]);
  });

  it('uses every value it defines (no dead settings)', () => {
    const used = new Set(allReferences);
    const unused = leafPaths(values).filter((leaf) => {
      const parts = leaf.split('.');
      return !parts.some((_, i) => used.has(parts.slice(0, i + 1).join('.')));
    });
    expect(unused, 'in values.yaml but used by no template').toEqual([]);
  });

  it('comments every key in values.yaml', () => {
    const lines = valuesText.split('\n');
    const uncommented: string[] = [];
    let blockIndent = -1; // inside a block scalar (|, >) deeper than this indent
    let listIndent = -1; // inside list data (example entries) deeper than this indent
    lines.forEach((line, i) => {
      const indent = line.length - line.trimStart().length;
      if (line.trim() === '' || line.trim().startsWith('#')) return;
      if (blockIndent >= 0) {
        if (indent > blockIndent) return;
        blockIndent = -1;
      }
      if (listIndent >= 0) {
        if (indent > listIndent) return;
        listIndent = -1;
      }
      if (line.trimStart().startsWith('- ')) {
        listIndent = indent; // a list's entries are data, documented by the list's own comment
        return;
      }
      const key = /^(\s*)([A-Za-z][\w.-]*):(\s|$)/.exec(line);
      if (!key) return;
      if (/:\s*[|>][-+]?\s*$/.test(line)) blockIndent = indent;
      let j = i - 1;
      while (j >= 0 && lines[j]!.trim() === '') j--;
      const previous = j >= 0 ? lines[j]!.trim() : '';
      const inlineComment = /\s#\s/.test(line);
      // A parent key's comment may cover a map whose keys are commented one by one.
      const isParent = /:\s*$/.test(line) && i + 1 < lines.length && /^\s+\S/.test(lines[i + 1]!);
      const parentChildCommented = isParent && lines[i + 1]!.trim().startsWith('#');
      if (!previous.startsWith('#') && !inlineComment && !parentChildCommented) uncommented.push(`${i + 1}: ${line.trim()}`);
    });
    expect(uncommented, 'values without a comment').toEqual([]);
  });

  it('documents every value in the chart README table', () => {
    const documented = new Set([...readme.matchAll(/^\|\s*`([^`]+)`\s*\|/gm)].map((m) => m[1]!));
    const undocumented = leafPaths(values).filter((leaf) => !documented.has(leaf));
    expect(undocumented, 'values missing from the README table').toEqual([]);
    const stale = [...documented].filter((path) => !hasPath(values, path));
    expect(stale, 'README rows for values that do not exist').toEqual([]);
  });
});

describe('helm chart: templates', () => {
  it('has exactly the expected manifest templates', () => {
    expect(manifestFiles).toEqual(Object.keys(EXPECTED_DOCUMENTS).sort());
    expect(templateFiles).toContain('_helpers.tpl');
    expect(templateFiles).toContain('NOTES.txt');
  });

  for (const [file, expected] of Object.entries(EXPECTED_DOCUMENTS)) {
    it(`${file} renders to YAML of kind ${expected.map(([k]) => k).join(', ')}`, () => {
      const docs = skeletonDocuments(readTemplate(file));
      expect(docs.map((d) => [d['kind'], d['apiVersion']])).toEqual(expected);
      for (const doc of docs) {
        expect(get(doc, 'metadata', 'name'), `${file}: metadata.name`).toBeTruthy();
        expect(get(doc, 'metadata'), `${file}: labels`).toHaveProperty('labels');
      }
    });
  }

  it('includes only templates defined in _helpers.tpl', () => {
    const helpers = readTemplate('_helpers.tpl');
    const defined = new Set([...helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]!));
    const included = templateFiles.flatMap((f) =>
      [...readTemplate(f).matchAll(/\b(?:include|template)\s+"([^"]+)"/g)].map((m) => m[1]!),
    );
    expect(included.length).toBeGreaterThan(10);
    expect([...new Set(included)].filter((name) => !defined.has(name))).toEqual([]);
  });
});

describe('helm chart: Deployment security and wiring', () => {
  const deploymentText = readTemplate('deployment.yaml');
  const deployment = skeletonDocuments(deploymentText)[0]!;
  const pod = get(deployment, 'spec', 'template', 'spec');
  const containers = asArray(get(pod, 'containers'));
  const container = containers[0];

  it('runs one container as non-root with a RuntimeDefault seccomp profile', () => {
    expect(containers).toHaveLength(1);
    expect(get(pod, 'securityContext', 'runAsNonRoot')).toBe(true);
    expect(get(pod, 'securityContext', 'seccompProfile', 'type')).toBe('RuntimeDefault');
    expect(get(pod, 'automountServiceAccountToken')).toBe(false);
  });

  it('locks the container down: read-only root, no privilege escalation, no capabilities', () => {
    expect(get(container, 'securityContext', 'runAsNonRoot')).toBe(true);
    expect(get(container, 'securityContext', 'readOnlyRootFilesystem')).toBe(true);
    expect(get(container, 'securityContext', 'allowPrivilegeEscalation')).toBe(false);
    expect(get(container, 'securityContext', 'capabilities', 'drop')).toEqual(['ALL']);
    expect(get(container, 'securityContext', 'capabilities', 'add')).toBeUndefined();
    // The hardening must not be overridable from values.
    expect(deploymentText).not.toMatch(/toYaml\s+\.Values\.(containerSecurityContext|podSecurityContext)/);
  });

  it('probes /healthz (liveness) and /readyz (readiness) on the admin port', () => {
    expect(get(container, 'livenessProbe', 'httpGet', 'path')).toBe('/healthz');
    expect(get(container, 'livenessProbe', 'httpGet', 'port')).toBe('admin');
    expect(get(container, 'readinessProbe', 'httpGet', 'path')).toBe('/readyz');
    expect(get(container, 'readinessProbe', 'httpGet', 'port')).toBe('admin');
    const portNames = asArray(get(container, 'ports')).map((p) => get(p, 'name'));
    expect(portNames).toEqual(['api', 'admin']);
  });

  it('passes only documented settings, and secrets only as files', () => {
    const names = asArray(get(container, 'env')).map((e) => String(get(e, 'name')));
    expect(names).toContain('GITLAB_TOKEN_FILE');
    expect(names).toContain('PROXY_JWT_SECRET_FILE');
    // POD_NAME only builds the per-pod audit file name.
    const unknown = names.filter((n) => !DOCUMENTED_SETTINGS.includes(n) && n !== 'POD_NAME');
    expect(unknown, 'env vars that are not documented settings').toEqual([]);
    for (const secret of SECRET_VALUE_SETTINGS) expect(names).not.toContain(secret);
    expect(deploymentText).not.toMatch(/secretKeyRef/);
  });

  it('mounts policies from a ConfigMap at /policies, read-only and without subPath', () => {
    const mounts = asArray(get(container, 'volumeMounts'));
    const policyMount = mounts.find((m) => get(m, 'mountPath') === '/policies');
    expect(policyMount).toBeDefined();
    expect(get(policyMount, 'readOnly')).toBe(true);
    const volume = asArray(get(pod, 'volumes')).find((v) => get(v, 'name') === get(policyMount, 'name'));
    expect(get(volume, 'configMap')).toBeDefined();
    const secretVolumes = asArray(get(pod, 'volumes')).filter((v) => get(v, 'secret') !== undefined);
    expect(secretVolumes.length).toBeGreaterThan(0);
    for (const secretVolume of secretVolumes) {
      const secretMount = mounts.find((m) => get(m, 'name') === get(secretVolume, 'name'));
      expect(get(secretMount, 'readOnly'), `secret volume ${String(get(secretVolume, 'name'))}`).toBe(true);
    }
    // subPath mounts never see ConfigMap/Secret updates, which would break hot reload.
    expect(deploymentText).not.toMatch(/^\s*subPath(Expr)?:/m);
    expect(mounts.some((m) => get(m, 'mountPath') === '/var/log/gitlab-scope-proxy')).toBe(true);
    expect(mounts.some((m) => get(m, 'mountPath') === '/tmp')).toBe(true);
  });

  it('wires OAuth: the application secret as a file, Redis or a SQLite file on a claim', () => {
    const names = asArray(get(container, 'env')).map((e) => String(get(e, 'name')));
    expect(names).toEqual(expect.arrayContaining(['OAUTH_GITLAB_CLIENT_ID', 'OAUTH_GITLAB_CLIENT_SECRET_FILE', 'OAUTH_APPROVERS', 'REDIS_URL', 'SQLITE_FILE']));
    expect(names).not.toContain('OAUTH_GITLAB_CLIENT_SECRET');
    const mounts = asArray(get(container, 'volumeMounts'));
    const state = mounts.find((m) => get(m, 'mountPath') === '/var/lib/gitlab-scope-proxy');
    const volume = asArray(get(pod, 'volumes')).find((v) => get(v, 'name') === get(state, 'name'));
    expect(get(volume, 'persistentVolumeClaim', 'claimName')).toBeTruthy();
    expect(deploymentText).toMatch(/SQLITE_FILE\n\s+value: \/var\/lib\/gitlab-scope-proxy\/state\.sqlite/);
  });

  it('makes the policy and secret checksum annotations optional', () => {
    const lines = deploymentText.split('\n');
    for (const [annotation, flag] of [
      ['checksum/policies', '.Values.rolloutOnChange.policies'],
      ['checksum/secret', '.Values.rolloutOnChange.secret'],
    ] as const) {
      const at = lines.findIndex((l) => l.trim().startsWith(`${annotation}:`));
      expect(at, annotation).toBeGreaterThan(0);
      expect(lines[at - 1]!.trim()).toBe(`{{- if ${flag} }}`);
    }
  });
});

describe('helm chart: Services and NetworkPolicy', () => {
  it('keeps the admin port off the vendor-facing Service', () => {
    const [api, admin] = skeletonDocuments(readTemplate('service.yaml'));
    expect(asArray(get(api, 'spec', 'ports')).map((p) => get(p, 'targetPort'))).toEqual(['api']);
    expect(asArray(get(admin, 'spec', 'ports')).map((p) => get(p, 'targetPort'))).toEqual(['admin']);
    expect(get(admin, 'spec', 'type')).toBe('ClusterIP');
  });

  it('admits the admin port only from listed peers, and allows egress', () => {
    const text = readTemplate('networkpolicy.yaml');
    const [policy] = skeletonDocuments(text);
    expect(get(policy, 'spec', 'policyTypes')).toEqual(['Ingress', 'Egress']);
    const rules = asArray(get(policy, 'spec', 'ingress'));
    const adminRule = rules.find((r) => asArray(get(r, 'ports')).some((p) => get(p, 'port') === 'admin'));
    expect(adminRule).toBeDefined();
    expect(adminRule).toHaveProperty('from');
    // An empty `from` admits everyone, so the admin rule must exist only with peers.
    expect(text).toMatch(/\{\{-\s*with \.Values\.networkPolicy\.admin\.from\s*\}\}\n(\s*#.*\n)*\s*- ports:\n\s*- port: admin/);
    const egressPorts = asArray(get(policy, 'spec', 'egress')).flatMap((r) => asArray(get(r, 'ports')));
    expect(egressPorts.some((p) => get(p, 'port') === 53 && get(p, 'protocol') === 'UDP')).toBe(true);
  });

  it('scrapes /metrics on the admin port', () => {
    const [monitor] = skeletonDocuments(readTemplate('servicemonitor.yaml'));
    const endpoint = asArray(get(monitor, 'spec', 'endpoints'))[0];
    expect(get(endpoint, 'port')).toBe('admin');
    expect(get(endpoint, 'path')).toBe('/metrics');
  });
});

describe('helm chart: README', () => {
  it('explains lint/template commands and the per-replica rate limits', () => {
    expect(readme).toContain('helm lint helm/gitlab-scope-proxy');
    expect(readme).toContain('helm template x helm/gitlab-scope-proxy');
    expect(readme).toMatch(/per[- ](replica|pod)/i);
    expect(readme).toMatch(/rate_limit/);
  });
});
