// The scope half of the fuzz target (run from property.test.ts): requests of a client with
// `projects:` / `groups:` that name projects and groups in every spelling, through format
// aliases of the path and through parameters that name another project, group or namespace.
// The oracle is written from GitLab's behaviour, independently of src/: Grape routes a last
// segment "x.ext" (also "x%2Eext") as "x" ("(.:format)", grape lib/grape/path.rb), GitLab
// finds a project by numeric id or case-insensitive full path (lib/api/helpers.rb
// find_project), Grape merges query and body parameters and coerces Integer parameters the
// way Ruby's Integer() does (" 4", "0004", "4_0" are numbers), and list answers must hold
// in-scope items only, without X-Total.
import fc from 'fast-check';
import type { RecordedRequest } from '../support/gitlab-standin.ts';

export const SCOPE_POLICY = `
clients:
  scoped:
    projects: ["acme/**"]
    groups: ["acme/platform"]
    scopes: [read_api]
    allow:
      - "* /api/v4/projects/:id/**"
      - POST /api/v4/groups
`;

// The stand-in's fixtures (test/support/gitlab-standin.ts): projects 1-45 are acme/..., but
// 4 is other/secret; groups 100 acme, 101 acme/platform, 102 other.
const OUT_PROJECTS = new Set(['4', 'other/secret']);
const GROUPS: Record<string, string> = { 100: 'acme', 101: 'acme/platform', 102: 'other' };
const inScopeGroup = (fullPath: string): boolean => fullPath.toLowerCase() === 'acme/platform';

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** Every number Ruby's Integer(value, 10) (Grape's coercion) could read from a value, or a path. */
function readings(value: string): string[] {
  const v = value.trim();
  if (/^[+-]?\d+(?:_\d+)*$/.test(v)) return [String(Number(v.replace(/_/g, '')))];
  if (/^[+-]?\d+\.\d*$/.test(v)) return [String(Math.trunc(Number(v)))];
  return [value.toLowerCase()];
}

/** Why GitLab could read `ref` as a project outside ["acme/**"]. */
function projectViolation(ref: string): string | undefined {
  for (const r of readings(ref)) if (OUT_PROJECTS.has(r)) return `project ${ref}`;
  return undefined;
}
function groupViolation(ref: string): string | undefined {
  for (const r of readings(ref)) {
    const path = GROUPS[r] ?? r;
    if ((Object.values(GROUPS).includes(path)) && !inScopeGroup(path)) return `group ${ref}`;
  }
  return undefined;
}

/** The parameters each route reads that name a project (p) or a group or namespace (g):
 *  GitLab's API docs (merge requests, issues "Move an issue", projects "Fork", repositories
 *  "Compare", groups "Create a group", projects "Share a project with a group"). */
const ROUTE_PARAMS: [string, RegExp, Record<string, 'p' | 'g'>][] = [
  ['POST', /^projects\/[^/]+\/merge_requests$/, { target_project_id: 'p' }],
  ['POST', /^projects\/[^/]+\/issues\/[^/]+\/move$/, { to_project_id: 'p' }],
  ['POST', /^projects\/[^/]+\/fork$/, { namespace: 'g', namespace_id: 'g', namespace_path: 'g' }],
  ['GET', /^projects\/[^/]+\/repository\/compare$/, { from_project_id: 'p' }],
  ['POST', /^groups$/, { parent_id: 'g' }],
  ['POST', /^projects\/[^/]+\/share$/, { group_id: 'g' }],
];

/** Parameters as GitLab merges them: query and body, names by their Rack base, any case. */
function params(rec: RecordedRequest): [string, string][] {
  const out: [string, string][] = [];
  const q = rec.url.indexOf('?');
  if (q !== -1) for (const [k, v] of new URLSearchParams(rec.url.slice(q + 1))) out.push([k, v]);
  const type = String(rec.headers['content-type'] ?? '');
  const text = rec.body.toString('utf8');
  if (type.startsWith('application/json') && text) {
    for (const [k, v] of Object.entries(JSON.parse(text) as Record<string, unknown>)) out.push([k, typeof v === 'string' ? v : JSON.stringify(v)]);
  } else if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(text)) out.push([k, v]);
  } else if (type.startsWith('multipart/form-data')) {
    for (const m of text.matchAll(/name="([^"]+)"\r\n\r\n([^\r]*)/g)) out.push([m[1]!, m[2]!]);
  }
  return out.map(([k, v]) => [(/^[[\]]*([^[\]]*)/.exec(k)?.[1] ?? '').toLowerCase(), v]);
}

/** Why GitLab would read what the client got as outside its scope, or [] when it would not. */
export function scopeViolations(rec: RecordedRequest, answer: { status: number; headers: Record<string, unknown>; body: string }): string[] {
  const out: string[] = [];
  const path = rec.path.split('/').slice(3);
  const last = path.at(-1) ?? '';
  const routes = [path];
  for (const m of last.matchAll(/\.|%2[Ee]/g)) if (m.index > 0) routes.push([...path.slice(0, -1), last.slice(0, m.index)]);
  let list = false;
  for (const segs of routes) {
    const [area, id, sub] = segs.map(decode);
    if (area === 'projects' && id !== undefined) {
      const v = projectViolation(id);
      if (v) out.push(`path names ${v}`);
    }
    if (area === 'groups' && id !== undefined) {
      const v = groupViolation(id);
      if (v) out.push(`path names ${v}`);
    }
    if (rec.method === 'GET' && (segs.length === 1 || (segs.length === 3 && (sub === 'projects' || sub === 'forks')))) list = true;
  }
  const read: Record<string, 'p' | 'g'> = {};
  for (const segs of routes) for (const [method, re, names] of ROUTE_PARAMS) if (method === rec.method && re.test(segs.join('/'))) Object.assign(read, names);
  for (const [name, value] of params(rec)) {
    const v = read[name] === 'p' ? projectViolation(value) : read[name] === 'g' ? groupViolation(value) : undefined;
    if (v) out.push(`${name} names ${v}`);
  }
  // Quick actions in a note: GitLab's extractor (lib/gitlab/quick_actions/extractor.rb)
  // deletes "\r" and runs lines "/<name>" (case-insensitive, Ruby folding "ſ" to "s") at the
  // start of a line; the client's rules name none.
  if (rec.method === 'POST' && routes.some((segs) => decode(segs.at(-1) ?? '') === 'notes')) {
    for (const [name, value] of params(rec)) {
      if (name !== 'body') continue;
      for (const line of value.replace(/\r/g, '').split('\n')) {
        const m = /^\/(\S+)(?: .*)?\s*$/.exec(line);
        const cmd = m?.[1]!.replace(/\u017f/gi, 's').replace(/\u212a/g, 'k').toLowerCase();
        if (cmd !== undefined && DANGEROUS.has(cmd)) out.push(`quick action /${cmd} in a note`);
      }
    }
  }
  if (list && answer.status === 200) {
    if (answer.headers['x-total'] !== undefined) out.push('X-Total on a filtered list');
    const parsed = JSON.parse(answer.body) as unknown;
    const items = (Array.isArray(parsed) ? parsed : []) as { path_with_namespace?: string; full_path?: string }[];
    for (const item of items) {
      if (item.path_with_namespace !== undefined && !item.path_with_namespace.startsWith('acme/')) out.push(`list shows ${item.path_with_namespace}`);
      if (item.full_path !== undefined && !inScopeGroup(item.full_path)) out.push(`list shows group ${item.full_path}`);
    }
  }
  return out;
}

const DANGEROUS = new Set(['merge', 'approve', 'close', 'move', 'clone', 'rebase', 'unapprove', 'reopen', 'lock', 'label', 'assign', 'ready', 'draft', 'relate', 'ship']);

// ------------------------------------------------------------------ generator
const NOTES = [
  'LGTM', '/merge', 'ok\n/approve', 'ok\r/close', 'x\r\n/MERGE', '  /merge', '/clo\u017fe', '/move other/secret', '/label ~bug',
  'do not /merge', '```\n/merge\n```', '> /merge', '/packit build', '/mergeX', '/merge\t', '\u2028/merge', '/Approve now', '/\u212Aeep',
];
const PROJECTS = ['1', '3', '42', '4', 'acme%2Fdocs', 'ACME%2FDocs', 'other%2Fsecret', 'OTHER%2FSecret', 'acme%2Fold-docs'];
const GROUP_REFS = ['101', 'acme%2Fplatform', '100', '102', 'acme', 'other', 'ACME%2FPLATFORM'];
const SUFFIXES = ['', '', '', '.json', '%2Ejson', '%2ejson', '.xml', '%2Etxt', '.JSON'];
const VALUES: readonly unknown[] = [2, 3, '3', 'acme/docs', 4, '4', ' 4', '0004', '4_0', 4.5, 'other/secret', 'OTHER/SECRET', 101, 'acme/platform', 100, 102, 'acme', 'other', true, null];
const NAMES = ['target_project_id', 'to_project_id', 'from_project_id', 'namespace', 'namespace_id', 'namespace_path', 'parent_id', 'group_id', 'TARGET_PROJECT_ID', 'Namespace'];

export const scopeRequest$ = fc.record({
  shape: fc.constantFrom('list-projects', 'list-groups', 'group-projects', 'forks', 'user-projects', 'project', 'group', 'mr', 'move', 'fork', 'compare', 'new-group', 'share', 'note', 'note'),
  note: fc.constantFrom(...NOTES),
  project: fc.constantFrom(...PROJECTS),
  group: fc.constantFrom(...GROUP_REFS),
  suffix: fc.constantFrom(...SUFFIXES),
  refs: fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...VALUES)), { maxLength: 2 }),
  encoding: fc.constantFrom('json', 'form', 'multipart', 'query'),
});
export type ScopeRequest = typeof scopeRequest$ extends fc.Arbitrary<infer T> ? T : never;

export function buildScopeRequest(g: ScopeRequest): { method: string; path: string; headers: string[]; body: Buffer | undefined } {
  const p = g.project;
  const [method, path] = ({
    'list-projects': ['GET', '/api/v4/projects'],
    'list-groups': ['GET', '/api/v4/groups'],
    'group-projects': ['GET', `/api/v4/groups/${g.group}/projects`],
    forks: ['GET', `/api/v4/projects/${p}/forks`],
    'user-projects': ['GET', '/api/v4/users/1/projects'],
    project: ['GET', `/api/v4/projects/${p}`],
    group: ['GET', `/api/v4/groups/${g.group}`],
    mr: ['POST', `/api/v4/projects/${p}/merge_requests`],
    move: ['POST', `/api/v4/projects/${p}/issues/1/move`],
    fork: ['POST', `/api/v4/projects/${p}/fork`],
    compare: ['GET', `/api/v4/projects/${p}/repository/compare`],
    'new-group': ['POST', '/api/v4/groups'],
    share: ['POST', `/api/v4/projects/${p}/share`],
    note: ['POST', `/api/v4/projects/${p}/merge_requests/1/notes`],
  } as const)[g.shape];
  const fields = new Map<string, unknown>(g.shape === 'note' ? [['body', g.note]] : g.refs);
  const headers: string[] = [];
  let query = 'per_page=100';
  let body: Buffer | undefined;
  const enc = method === 'GET' ? 'query' : g.encoding;
  if (enc === 'query') {
    for (const [k, v] of fields) query += `&${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`;
  } else if (enc === 'json') {
    headers.push('Content-Type', 'application/json');
    body = Buffer.from(JSON.stringify(Object.fromEntries(fields)));
  } else if (enc === 'form') {
    headers.push('Content-Type', 'application/x-www-form-urlencoded');
    body = Buffer.from([...fields].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&'));
  } else {
    const b = 'fuzzb0undary';
    headers.push('Content-Type', `multipart/form-data; boundary=${b}`);
    body = Buffer.from(`${[...fields].map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${String(v)}\r\n`).join('')}--${b}--\r\n`);
  }
  if (method !== 'GET' && (!body || body.length === 0 || fields.size === 0)) body = undefined;
  if (body) headers.push('Content-Length', String(body.length));
  else if (method !== 'GET') headers.splice(0, headers.length);
  return { method, path: `${path}${g.suffix}?${query}`, headers, body };
}
