// Property: every request is either refused by the proxy (a 4xx, or the proxy's own OPTIONS
// answer, and nothing reaches GitLab), or what reaches GitLab is something GitLab reads as
// allowed for the client. "Reads" is decided by an oracle written here from GitLab's
// behaviour, independently of src/: Grape's router (one percent-decoding per segment, "//"
// collapsed, trailing "/" dropped, optional ".json" suffix), Rack's query, form and
// multipart parsers (";" separators, leading brackets dropped, last "boundary=", a boundary
// with no CRLF before it, the last "; name=" of a part), and the credential and override
// sources of lib/gitlab/auth/auth_finders.rb, lib/api/helpers.rb and Rack::MethodOverride.
//
// Requests are generated from allowed and disallowed templates, then disturbed: encoded
// characters in either case, double encoding, dot segments, extra slashes, case changes,
// format suffixes, backslashes, prefixes, duplicate and credential parameters, header
// spellings, and bodies of every kind. FUZZ_RUNS sets the number of cases (npm run fuzz).
import { randomBytes } from 'node:crypto';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import routesData from '../../src/catalogue/routes.json' with { type: 'json' };
import { fuzzSeed } from '../support/fuzz-seed.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';
import type { RecordedRequest } from '../support/gitlab-standin.ts';
import { buildScopeRequest, SCOPE_POLICY, scopeRequest$, scopeViolations } from './scope-property.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const ROOT = '/gitlab';

/** The client's allowlist: [methods, template]. Placeholders are ":name". */
const RULES: readonly [string, string][] = [
  ['GET', '/api/v4/projects'],
  ['GET', '/api/v4/projects/:id/merge_requests'],
  ['GET,POST', '/api/v4/projects/:id/merge_requests/:iid/notes'],
  ['GET', '/api/v4/projects/1/repository/files/:file_path'],
  ['POST', '/api/v4/projects/:id/statuses/:sha'],
  ['GET', '/api/v4/groups/100/projects'],
  ['PUT', '/api/v4/projects/2'],
];
const POLICY = `clients:\n  fuzz:\n    allow:\n${RULES.map(([m, p]) => `      - ${m} ${p}\n`).join('')}`;

/** Templates the client may not reach (plus everything the allowed ones become when disturbed). */
const DISALLOWED: readonly string[] = [
  '/api/v4/user',
  '/api/v4/version',
  '/api/v4/projects/:id',
  '/api/v4/projects/4/repository/files/:file_path',
  '/api/v4/projects/:id/hooks',
  '/api/v4/projects/:id/members',
  '/api/v4/projects/:id/merge_requests/:iid',
  '/api/v4/groups/102/projects',
  '/api/v4/personal_access_tokens/self',
  '/api/v4/personal_access_tokens/self/rotate',
  '/api/v4/internal/check',
  '/api/v3/projects',
  '/api/graphql',
];

// ------------------------------------------------------------------ the oracle
interface Template { methods: Set<string>; segments: string[] }
const TEMPLATES: Template[] = RULES.map(([m, p]) => {
  const methods = new Set(m.split(','));
  if (methods.has('GET')) methods.add('HEAD');
  return { methods, segments: p.split('/').slice(1) };
});

/** Parameter names that carry a credential, impersonation or a method override somewhere in GitLab. */
const FORBIDDEN_PARAMS = new Set(['private_token', 'access_token', 'bearer_token', 'job_token', 'token', 'feed_token', 'rss_token', 'sudo', '_method']);
const FORBIDDEN_HEADERS = [
  /^authorization$/, /^cookie$/, /^job-token$/, /^deploy-token$/, /^sudo$/, /^dpop$/, /^x-gitlab-static-object-token$/,
  /^x-http-method-override$/, /^x-http-method$/, /^x-method-override$/, /_/, /^gitlab-/, /^x-forwarded-/, /^forwarded$/,
  /^x-real-ip$/, /^x-sendfile-type$/, /^x-accel-mapping$/, /^x-csrf-token$/, /^upgrade$/, /^transfer-encoding$/,
];
const CONTROL = /[\x00-\x1f\x7f\\]/;

function decodeOnce(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Rack's name normalisation: leading brackets dropped, then up to the next bracket. */
const rackBase = (name: string): string => (/^[[\]]*([^[\]]*)/.exec(name)?.[1] ?? '').toLowerCase();

/** Rack::Utils.unescape, lenient: an invalid escape is left as it is. */
const rackUnescape = (s: string): string => decodeOnce(s.replace(/\+/g, ' ')) ?? s.replace(/\+/g, ' ');

/** Rack's query and form parsing: pieces split on "&" and ";" (Rack::QueryParser DEFAULT_SEP). */
function rackPairs(qs: string): [string, string][] {
  return qs.split(/[&;] */).filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=');
    return [rackBase(rackUnescape(eq === -1 ? p : p.slice(0, eq))), rackUnescape(eq === -1 ? '' : p.slice(eq + 1))];
  });
}

/** Field names as Rack 2.2's multipart parser would file them (and Rack 3's, for good measure). */
function rackMultipartNames(body: string, contentType: string): string[] | string {
  const all = [...contentType.matchAll(/boundary="?([^";,]+)"?/gi)];
  const boundary = all.at(-1)?.[1];
  if (!boundary) return 'multipart body without a boundary Rack can find';
  const esc = boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const names: string[] = [];
  // A part ends at the boundary whether or not a CRLF precedes it; lines are stripped.
  const pieces = body.split(new RegExp(`(?:\\r\\n)?--${esc}[ \\t]*(?:\\r\\n|--)`));
  for (const piece of pieces.slice(1)) {
    const headEnd = piece.indexOf('\r\n\r\n');
    if (headEnd === -1) continue;
    const head = piece.slice(0, headEnd + 2);
    const value = String.raw`("(?:\\"|[^"])*"|[^\s()<>,;:\\"/[\]?=]+)`;
    for (const re of [new RegExp(String.raw`Content-Disposition:.*;\s*name=${value}`, 'i'), new RegExp(String.raw`Content-Disposition:[^:]*;\s*name=${value}`, 'i')]) {
      const m = re.exec(head);
      let name = m?.[1];
      if (name?.startsWith('"')) name = name.slice(1, -1).replace(/\\(.)/g, '$1');
      if (!name) name = /filename="?([^";\r\n]*)/i.exec(head)?.[1];
      if (name) names.push(rackBase(name));
    }
  }
  return names;
}

/** Every reading of the path GitLab could make, as decoded segments, or why it has none. */
function pathReadings(path: string): string[][] | string {
  if (!path.startsWith(`${ROOT}/`)) return `outside the relative root: ${path}`;
  const raw = path.slice(ROOT.length).split('/').slice(1);
  // Workhorse routes on path.Clean, Grape never resolves dots: a dot segment has two readings.
  if (raw.some((s) => s === '.' || s === '..')) return 'raw dot segment';
  // Grape collapses "//" and drops a trailing "/".
  const decoded = raw.filter((s) => s !== '').map(decodeOnce);
  if (decoded.some((s) => s === undefined)) return 'undecodable segment';
  const segs = decoded as string[];
  for (const s of segs) {
    if (CONTROL.test(s)) return `control character or backslash in ${JSON.stringify(s)}`;
    if (s.split('/').some((p) => p === '.' || p === '..')) return `dot segment in ${JSON.stringify(s)}`;
  }
  const readings = [segs];
  const last = segs.at(-1);
  // Grape's optional format suffix: "(.:format)" with GitLab's two content types (grape
  // lib/grape/path.rb), so the last segment may end at any "." ("projects.JSON" is "projects").
  if (last !== undefined) {
    for (let i = last.indexOf('.'); i > 0; i = last.indexOf('.', i + 1)) {
      if (i < last.length - 1) readings.push([...segs.slice(0, -1), last.slice(0, i)]);
    }
  }
  return readings;
}

/** GitLab's own route table (its OpenAPI description, as shipped in src/catalogue/routes.json:
 *  data about GitLab, not the proxy's logic), read here with a matcher of the oracle's own. */
const GITLAB_ROUTES = (routesData.routes as unknown as [string, string][]).map(([method, template]) => ({ method, segments: template.split('/').slice(1) }));

function gitlabRoutes(method: string, segs: readonly string[]): boolean {
  const m = method === 'HEAD' ? 'GET' : method;
  return GITLAB_ROUTES.some((r) => r.method === m && r.segments.length === segs.length && r.segments.every((t, i) => {
    const seg = segs[i]!;
    return t.startsWith(':') || t.startsWith('*') || t.includes(':') ? seg !== '' : seg === t;
  }));
}

function allowedRoute(method: string, segs: readonly string[]): boolean {
  return TEMPLATES.some((t) => t.methods.has(method) && t.segments.length === segs.length && t.segments.every((lit, i) => {
    const seg = segs[i]!;
    return lit.startsWith(':') ? seg !== '' : seg === lit;
  }));
}

/** Why GitLab would read `rec` as something the client may not do, or [] when it would not. */
function violations(rec: RecordedRequest, realToken: string, jwt: string, standinHost: string): string[] {
  const out: string[] = [];
  const q = rec.url.indexOf('?');
  const path = q === -1 ? rec.url : rec.url.slice(0, q);
  const query = q === -1 ? '' : rec.url.slice(q + 1);

  const readings = pathReadings(path);
  if (typeof readings === 'string') out.push(readings);
  else {
    // Only a reading that names one of GitLab's routes can run: "/projects.json" is the
    // project list, since no route is called "projects.json". With none or several, all count.
    const routed = readings.filter((r) => gitlabRoutes(rec.method, r));
    for (const r of routed.length === 1 ? routed : readings) if (!allowedRoute(rec.method, r)) out.push(`${rec.method} /${r.join('/')} is not allowed`);
  }

  const params = rackPairs(query);
  for (const [base, value] of params) {
    if (FORBIDDEN_PARAMS.has(base)) out.push(`query parameter ${base}`);
    if (base === 'format' && value !== 'json') out.push(`format=${value}`);
  }

  if (rec.body.length > 0) {
    const type = rec.headers['content-type'];
    const media = type?.split(/[;,]/)[0]?.trim().toLowerCase();
    let names: string[] = [];
    if (type === undefined) out.push('a body without Content-Type (Rack reads a POST as a form)');
    else if (media === 'application/json' || media === 'text/x-json' || media === 'application/jsonrequest' || media === 'application/vnd.git-lfs+json') {
      try {
        const value: unknown = JSON.parse(rec.body.toString('utf8'));
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) names = Object.keys(value).map((k) => rackBase(k));
      } catch {
        // GitLab answers 400 to a body it cannot parse.
      }
    } else if (media === 'application/x-www-form-urlencoded') names = rackPairs(rec.body.toString('latin1')).map(([k]) => k);
    else if (media?.startsWith('multipart/')) {
      const found = rackMultipartNames(rec.body.toString('latin1'), type);
      if (typeof found === 'string') out.push(found);
      else names = found;
    } else out.push(`a body of type ${type}`);
    for (const n of names) if (FORBIDDEN_PARAMS.has(n)) out.push(`body parameter ${n}`);
  }

  const names = rec.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  if (names.filter((n) => n === 'private-token').length !== 1 || rec.headers['private-token'] !== realToken) out.push('not exactly the real token');
  for (const n of names) if (FORBIDDEN_HEADERS.some((re) => re.test(n))) out.push(`header ${n}`);
  if (/private-token/i.test(String(rec.headers.connection ?? ''))) out.push('Connection names PRIVATE-TOKEN');
  if (rec.headers.host !== standinHost) out.push(`Host ${String(rec.headers.host)}`);
  if (JSON.stringify({ url: rec.url, h: rec.rawHeaders, b: rec.body.toString('latin1') }).includes(jwt)) out.push('the client JWT');
  return out;
}

// ------------------------------------------------------------------ generators
/** Placeholder values: the first `clean` of each list are plain, the rest are aliases and tricks. */
const FILL: Record<string, { clean: number; values: readonly string[] }> = {
  id: { clean: 6, values: ['1', '2', '3', '45', 'acme%2Fdocs', 'acme%2Fplatform%2Fapi', '0005', '01', '-1', '1+', 'ACME%2fDocs', 'acme/docs', '1.json', '2%0A', '1%252F', '1%2e'] },
  iid: { clean: 3, values: ['1', '2', '3', '01', '1+', 'x', '1.0', '%31'] },
  sha: { clean: 2, values: ['abc1234', 'main', 'a.b', 'v1.0', 'a%2F..'] },
  file_path: { clean: 3, values: ['README.md', 'src%2Fmain.ts', 'README%2Emd', 'package.json', '..%2F..%2Fetc', '%2e%2e', 'a%2F.%2Fb', 'x.json'] },
};
const ALL_TEMPLATES = [...RULES.map(([, p]) => p), ...DISALLOWED];

const DOTS = ['.', '..', '%2e', '%2E', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e'];
const PREFIXES = [['gitlab', 'api', 'v4'], ['api', 'v3'], ['API', 'v4'], ['api', 'V4'], ['api', 'graphql'], ['api', 'v4', 'internal'], ['api%2Fv4']];

const mutation = fc.record({
  kind: fc.constantFrom('encode', 'encode', 'encode', 'double', 'upper', 'dot', 'dotpair', 'slash', 'json', 'backslash', 'prefix'),
  at: fc.nat(),
  pick: fc.nat(),
  lower: fc.boolean(),
});
type Mutation = { kind: string; at: number; pick: number; lower: boolean };

const hex = (c: string, lower: boolean): string => {
  const h = `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`;
  return lower ? h.toLowerCase() : h;
};

function mutate(segs: string[], m: Mutation): string[] {
  const out = [...segs];
  const i = out.length === 0 ? 0 : m.at % out.length;
  const seg = out[i] ?? '';
  switch (m.kind) {
    case 'encode': {
      const chars = [...seg].map((c, j) => [c, j] as const).filter(([c]) => c !== '%');
      if (chars.length === 0) break;
      const [c, j] = chars[m.pick % chars.length]!;
      out[i] = seg.slice(0, j) + hex(c, m.lower) + seg.slice(j + 1);
      break;
    }
    case 'double':
      out[i] = seg.includes('%') ? seg.replace('%', '%25') : seg.length > 0 ? `%25${seg.charCodeAt(0).toString(16)}${seg.slice(1)}` : seg;
      break;
    case 'upper':
      out[i] = m.lower ? seg.toUpperCase() : seg.charAt(0).toUpperCase() + seg.slice(1);
      break;
    case 'dot':
      out.splice(i, 0, DOTS[m.pick % DOTS.length]!);
      break;
    case 'dotpair':
      out.splice(i, 0, ['user', 'x', 'projects'][m.pick % 3]!, DOTS[(m.pick >> 2) % DOTS.length]!);
      break;
    case 'slash':
      if (m.pick % 3 === 0) out.push('');
      else out.splice(i, 0, '');
      break;
    case 'json':
      out[out.length - 1] = `${out.at(-1) ?? ''}${['.json', '%2ejson', '%2Ejson', '.JSON'][m.pick % 4]}`;
      break;
    case 'backslash':
      out[i] = `${seg}${['\\', '%5c', '%5C', '\\..'][m.pick % 4]}`;
      break;
    case 'prefix':
      out.splice(0, 2, ...PREFIXES[m.pick % PREFIXES.length]!);
      break;
  }
  return out;
}

type Placement = 'bearer' | 'private-token' | 'query-private' | 'query-access' | 'basic' | 'none' | 'two';
/** Query parameters: the first BENIGN_PARAMS are ordinary, the rest are refused somewhere in GitLab. */
const PARAM_POOL: readonly [string, string][] = [
  ['per_page', '20'], ['page', '2'], ['state', 'opened'], ['labels[]', 'a'], ['not[labels]', 'b'], ['format', 'json'], ['order_by', 'id'], ['search', 'acme%2Fapp'],
  ['format', 'xml'], ['sudo', 'root'], ['SUDO', '1'], ['su%64o', '1'], ['%5Bsudo%5D', '1'], ['sudo[]', '1'], ['_method', 'DELETE'], ['%5Fmethod', 'DELETE'],
  ['job_token', 'x'], ['token', 'x'], ['bearer_token', 'x'], ['feed_token', 'x'], ['rss_token', 'x'], ['body', 'q'], ['a[b][c]', '1'],
  ['private%5Ftoken', 'x'], ['Private_Token', 'x'], ['per_page', '50'],
];
const BENIGN_PARAMS = 8;
/** Headers: the first BENIGN_HEADERS are ordinary. */
const HEADER_POOL: readonly [string, string][] = [
  ['Accept', 'application/json'], ['User-Agent', 'fuzz/1'], ['If-None-Match', '"x"'],
  ['Sudo', '1'], ['X-HTTP-Method-Override', 'DELETE'], ['X-HTTP-Method', 'DELETE'], ['X-Method-Override', 'DELETE'],
  ['JOB-TOKEN', 'x'], ['Deploy-Token', 'x'], ['Cookie', '_gitlab_session=x'], ['X-Forwarded-Host', 'evil.example'],
  ['X-Forwarded-For', '10.0.0.1'], ['Forwarded', 'for=10.0.0.1'], ['X-Real-IP', '10.0.0.1'], ['X-Sendfile-Type', 'X-Accel-Redirect'],
  ['X-Accel-Mapping', '/=/'], ['Gitlab-Workhorse', '1'], ['X-CSRF-Token', 'x'], ['X-Gitlab-Static-Object-Token', 'x'],
  ['Connection', 'private-token'], ['Connection', 'content-type'], ['Connection', 'keep-alive, Content-Type'], ['Connection', 'content-length'],
  ['Connection', 'accept, private-token'], ['Private-Token', 'x'], ['DPoP', 'x'], ['Upgrade', 'websocket'], ['Gitlab-Agent-Api-Request', 'x'],
];
const BENIGN_HEADERS = 3;
/** Body keys: the first BENIGN_KEYS are ordinary. */
const BODY_KEYS = ['body', 'note', 'state', 'description', 'sudo', 'Sudo', '[sudo]', ']sudo', '_method', 'private_token', 'token', 'access_token', 'su\\u0064o'];
const BENIGN_KEYS = 4;

/** An index into a pool, picking among its first `benign` entries most of the time. */
const pick = (size: number, benign: number) => fc.oneof({ weight: 3, arbitrary: fc.nat(benign - 1) }, { weight: 1, arbitrary: fc.nat(size - 1) });

const request$ = fc.record({
  /** 0-3: a plain request; 4-7: plain but for one disturbed part (`part`); 8-9: anything. */
  tier: fc.nat(9),
  part: fc.constantFrom('path', 'path', 'query', 'query', 'credential', 'headers', 'body'),
  /** For tier 4-7: the disturbance added to `part`, an index past the benign entries. */
  extra: fc.nat(),
  template: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...RULES.map(([, p]) => p)) }, { weight: 1, arbitrary: fc.constantFrom(...ALL_TEMPLATES) }),
  /** Use one of the rule's own methods (or HEAD for GET), or any method. */
  ruleMethod: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  methodPick: fc.nat(),
  anyMethod: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'),
  fills: fc.array(fc.tuple(fc.boolean(), fc.nat()), { minLength: 3, maxLength: 3 }),
  mutations: fc.oneof({ weight: 1, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
  params: fc.array(fc.tuple(pick(PARAM_POOL.length, BENIGN_PARAMS), fc.option(mutation, { nil: undefined, freq: 4 })), { maxLength: 4 }),
  semicolon: fc.nat(3).map((n) => n === 0),
  placement: fc.constantFrom<Placement>('bearer', 'bearer', 'bearer', 'bearer', 'bearer', 'private-token', 'private-token', 'query-private', 'query-access', 'basic', 'basic', 'none', 'two'),
  headers: fc.array(fc.tuple(pick(HEADER_POOL.length, BENIGN_HEADERS), fc.constantFrom('as-is', 'as-is', 'lower', 'upper', 'underscore')), { maxLength: 3 }),
  body: fc.record({
    kind: fc.constantFrom('auto', 'auto', 'auto', 'none', 'json', 'form', 'multipart', 'multipart-trick', 'untyped', 'text'),
    keys: fc.array(pick(BODY_KEYS.length, BENIGN_KEYS), { minLength: 1, maxLength: 3 }),
    trick: fc.nat(),
  }),
});
type Generated = typeof request$ extends fc.Arbitrary<infer T> ? T : never;

interface Built { method: string; path: string; headers: string[]; body: Buffer | undefined }

/** The generated request with every part the tier keeps plain made plain. */
function tame(g: Generated): Generated {
  if (g.tier >= 8) return g;
  const keep = (part: string): boolean => g.tier >= 4 && g.part === part;
  const t = { ...g };
  if (!keep('path')) {
    t.template = RULES.some(([, p]) => p === g.template) ? g.template : RULES[g.methodPick % RULES.length]![1];
    t.ruleMethod = true;
    t.fills = g.fills.map(([, n]) => [false, n] as [boolean, number]);
    t.mutations = [];
  }
  if (!keep('query')) {
    t.params = [...new Set(g.params.map(([i]) => i).filter((i) => i < BENIGN_PARAMS))].map((i): Generated['params'][number] => [i, undefined]);
    t.semicolon = false;
  }
  if (!keep('credential') && (g.placement === 'none' || g.placement === 'two')) t.placement = 'bearer';
  if (!keep('headers')) t.headers = g.headers.filter(([i]) => i < BENIGN_HEADERS).map(([i]): Generated['headers'][number] => [i, 'as-is']);
  // The one disturbed part always carries at least one disturbance.
  if (keep('query')) t.params = [...g.params, [BENIGN_PARAMS + (g.extra % (PARAM_POOL.length - BENIGN_PARAMS)), undefined]];
  if (keep('headers')) t.headers = [...g.headers, [BENIGN_HEADERS + (g.extra % (HEADER_POOL.length - BENIGN_HEADERS)), 'as-is']];
  if (!keep('body')) t.body = { ...g.body, kind: 'auto', keys: g.body.keys.filter((k) => k < BENIGN_KEYS).concat([0]).slice(0, 3) };
  return t;
}

function build(generated: Generated, jwt: string): Built {
  const g = tame(generated);
  let fillIndex = 0;
  let segs = g.template.split('/').slice(1).map((s) => {
    if (!s.startsWith(':')) return s;
    const { clean, values } = FILL[s.slice(1)]!;
    const [dirty, n] = g.fills[fillIndex++ % 3]!;
    return values[n % (dirty ? values.length : clean)]!;
  });
  for (const m of g.mutations) segs = mutate(segs, m);
  const rule = RULES.find(([, p]) => p === g.template);
  const ruleMethods = rule ? [...rule[0].split(','), ...(rule[0].includes('GET') ? ['HEAD'] : [])] : undefined;
  const method = g.ruleMethod && ruleMethods ? ruleMethods[g.methodPick % ruleMethods.length]! : g.anyMethod;

  const params = g.params.map(([i, m]) => {
    const [k, v] = PARAM_POOL[i]!;
    return `${m ? mutate([k], m)[0] ?? k : k}=${v}`;
  });
  if (g.placement === 'query-private' || g.placement === 'two') params.splice(g.methodPick % (params.length + 1), 0, `private_token=${jwt}`);
  if (g.placement === 'query-access') params.splice(g.methodPick % (params.length + 1), 0, `access_token=${jwt}`);
  const query = params.join(g.semicolon ? ';' : '&');
  const path = `/${segs.join('/')}${query ? `?${query}` : ''}`;

  const headers: string[] = [];
  if (g.placement === 'bearer' || g.placement === 'two') headers.push('Authorization', `Bearer ${jwt}`);
  if (g.placement === 'private-token') headers.push('PRIVATE-TOKEN', jwt);
  if (g.placement === 'basic') headers.push('Authorization', `Basic ${Buffer.from(`vendor:${jwt}`).toString('base64')}`);
  for (const [i, spelling] of g.headers) {
    const [name, value] = HEADER_POOL[i]!;
    const spelled = spelling === 'lower' ? name.toLowerCase() : spelling === 'upper' ? name.toUpperCase() : spelling === 'underscore' ? name.replace(/-/g, '_') : name;
    headers.push(spelled, value);
  }

  const keys = g.body.keys.map((k, i) => `${BODY_KEYS[k]!}${i > 0 && BODY_KEYS[k] === BODY_KEYS[g.body.keys[0]!] ? i : ''}`);
  const kind = g.body.kind === 'auto' ? (['POST', 'PUT', 'PATCH'].includes(method) ? ['json', 'form', 'multipart'][g.body.trick % 3]! : 'none') : g.body.kind;
  let body: Buffer | undefined;
  const b = `b${g.body.trick.toString(36)}x`;
  switch (kind) {
    case 'json':
      headers.push('Content-Type', 'application/json');
      body = Buffer.from(`{${keys.map((k, i) => `"${k}":"v${i}"`).join(',')}}`);
      break;
    case 'form':
      headers.push('Content-Type', 'application/x-www-form-urlencoded');
      body = Buffer.from(keys.map((k, i) => `${encodeURIComponent(k)}=v${i}`).join('&'));
      break;
    case 'multipart':
      headers.push('Content-Type', `multipart/form-data; boundary=${b}`);
      body = Buffer.from(`${keys.map((k, i) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\nv${i}\r\n`).join('')}--${b}--\r\n`);
      break;
    case 'multipart-trick': {
      const tricks = [
        // The boundary without CRLF before it, inside a value.
        () => [`multipart/form-data; boundary=${b}`, `--${b}\r\nContent-Disposition: form-data; name="body"\r\n\r\nx--${b}\r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot\r\n--${b}--\r\n`],
        // A second boundary= that Rack prefers.
        () => [`multipart/form-data; boundary=${b}; x=boundary=y${b}`, `--${b}\r\nContent-Disposition: form-data; name="body"\r\n\r\n\r\n--y${b}\r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot\r\n--y${b}--\r\n--${b}--\r\n`],
        // "; name=" inside the filename.
        () => [`multipart/form-data; boundary=${b}`, `--${b}\r\nContent-Disposition: form-data; name="body"; filename="a; name=sudo"\r\n\r\nroot\r\n--${b}--\r\n`],
        // A bracketed name.
        () => [`multipart/form-data; boundary=${b}`, `--${b}\r\nContent-Disposition: form-data; name="[_method]"\r\n\r\nDELETE\r\n--${b}--\r\n`],
        // A boundary line with trailing spaces.
        () => [`multipart/form-data; boundary=${b}`, `--${b}\r\nContent-Disposition: form-data; name="body"\r\n\r\nx\r\n--${b} \r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot\r\n--${b}--\r\n`],
      ];
      const [type, text] = tricks[g.body.trick % tricks.length]!();
      headers.push('Content-Type', type!);
      body = Buffer.from(text!, 'latin1');
      break;
    }
    case 'untyped':
      body = Buffer.from(keys.map((k, i) => `${k}=v${i}`).join('&'));
      break;
    case 'text':
      headers.push('Content-Type', ['text/plain', 'text/x-json', 'application/jsonrequest', 'application/json; charset=utf-16'][g.body.trick % 4]!);
      body = Buffer.from(`{${keys.map((k, i) => `"${k}":"v${i}"`).join(',')}}`);
      break;
  }
  if (body) headers.push('Content-Length', String(body.length));
  return { method, path, headers, body };
}

// ------------------------------------------------------------------ the run
interface Answer { status: number; headers: IncomingHttpHeaders }

let h: Harness;
let jwt: string;
let agent: Agent;
let standinHost: string;
beforeAll(async () => {
  h = await startHarness({ policies: { 'fuzz.yaml': POLICY }, relativeRoot: ROOT });
  jwt = await h.token('fuzz');
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
  standinHost = new URL(h.standin.origin).host;
});
afterAll(async () => {
  agent.destroy();
  await h.close();
});

function sendBuilt(b: Built): Promise<Answer | Error> {
  const { hostname, port, host } = new URL(h.url);
  return new Promise((resolve) => {
    const headers = ['Host', host, ...b.headers];
    const req = request({ hostname, port: Number(port), method: b.method, path: b.path, headers, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.on('error', (err) => resolve(err));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(err));
    if (b.body) req.write(b.body);
    req.end();
  });
}

it(`never lets GitLab read more than the allowlist (${RUNS} generated requests)`, async () => {
  const startedAt = Date.now();
  const auditBefore = h.audit.length;
  let forwardedCount = 0;
  let refusedCount = 0;
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(request$, async (g) => {
      const built = build(g, jwt);
      h.standin.reset();
      const answer = await sendBuilt(built);
      sent++;
      const received = [...h.standin.requests];
      const where = `${built.method} ${built.path} ${JSON.stringify(built.headers.filter((_, i) => i % 2 === 0))} ${built.body?.toString('latin1') ?? ''}`;
      if (received.length === 0) {
        refusedCount++;
        if (answer instanceof Error) return; // the proxy closed the connection: nothing was forwarded
        const local = built.method === 'OPTIONS' && answer.status === 204;
        expect(local || (answer.status >= 400 && answer.status < 500), `${answer.status} without forwarding: ${where}`).toBe(true);
        return;
      }
      forwardedCount++;
      expect(received, where).toHaveLength(1);
      expect(violations(received[0]!, h.realToken, jwt, standinHost), where).toEqual([]);
    }),
    { numRuns: RUNS, ...fuzzSeed() },
  );
  // Every request left exactly one audit line; exactly the forwarded ones say allow.
  await h.waitForAudit(auditBefore + sent, 10_000);
  const lines = h.audit.slice(auditBefore);
  expect(lines.filter((l) => l.decision === 'allow')).toHaveLength(forwardedCount);
  expect(lines.filter((l) => l.decision !== 'allow')).toHaveLength(refusedCount);
  expect(h.auditText()).not.toContain(jwt);
  // A run that forwards nothing or refuses nothing proves nothing.
  expect(forwardedCount).toBeGreaterThan(RUNS / 5);
  expect(refusedCount).toBeGreaterThan(RUNS / 5);
  const reasons = new Map<string, number>();
  for (const l of lines) if (l.decision !== 'allow') reasons.set(String(l.reason).split(':')[0]!, (reasons.get(String(l.reason).split(':')[0]!) ?? 0) + 1);
  console.info(`fuzz: ${sent} requests, ${forwardedCount} forwarded, ${refusedCount} refused, ${Date.now() - startedAt} ms; refusals: ${JSON.stringify(Object.fromEntries(reasons))}`);
}, Math.max(60_000, RUNS * 20));

it('has an oracle that recognises what it must reject', () => {
  const rec = (url: string, headers: string[] = ['private-token', 'T', 'host', 'gl'], body = '', method = 'GET'): RecordedRequest => ({
    method, url, path: url, query: '', rawHeaders: headers, body: Buffer.from(body),
    headers: Object.fromEntries(headers.flatMap((v, i) => (i % 2 === 0 ? [[v.toLowerCase(), headers[i + 1]!]] : []))),
  });
  const v = (r: RecordedRequest): string[] => violations(r, 'T', `j${randomBytes(4).toString('hex')}`, 'gl');
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests'))).toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests/%2e%2e/%2e%2e/%2e%2e/user'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/1/merge_requests/../../../user'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/%75ser'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/1/repository/files/package.json'))).toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/4/repository/files/x'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests?per_page=1;sudo=1'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests?%5Bsudo%5D=1'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests?format=xml'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests', ['private-token', 'T', 'host', 'gl', 'Private_Token', 'x']))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests', ['private-token', 'T', 'host', 'gl', 'connection', 'private-token']))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests/1/notes', ['private-token', 'T', 'host', 'gl'], 'body=x&_method=DELETE', 'POST'))).not.toEqual([]);
  const b = 'bnd';
  const trick = `--${b}\r\nContent-Disposition: form-data; name="body"\r\n\r\nx--${b}\r\nContent-Disposition: form-data; name="sudo"\r\n\r\nroot\r\n--${b}--\r\n`;
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests/1/notes', ['private-token', 'T', 'host', 'gl', 'content-type', `multipart/form-data; boundary=${b}`], trick, 'POST'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests/1/notes', ['private-token', 'T', 'host', 'gl', 'content-type', 'application/json'], '{"[sudo]":1}', 'POST'))).not.toEqual([]);
  expect(v(rec('/gitlab/api/v4/projects/5/merge_requests/1/notes', ['private-token', 'T', 'host', 'gl', 'content-type', 'application/json'], '{"body":1}', 'DELETE'))).not.toEqual([]);
});

// ------------------------------------------------------------------ scope references
// A client with projects:/groups: names projects and groups in every spelling, through
// format aliases and through parameters naming another project, group or namespace
// (test/security/scope-property.ts holds the generator and its GitLab oracle).
describe('scope references', () => {
  const SCOPE_RUNS = Math.max(200, Math.round(RUNS / 10));
  let sh: Harness;
  let sjwt: string;
  let sagent: Agent;
  beforeAll(async () => {
    sh = await startHarness({ policies: { 'scoped.yaml': SCOPE_POLICY } });
    sjwt = await sh.token('scoped');
    sagent = new Agent({ keepAlive: true, maxSockets: 1 });
  });
  afterAll(async () => {
    sagent.destroy();
    await sh.close();
  });

  const sendScoped = (b: ReturnType<typeof buildScopeRequest>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> => {
    const { hostname, port, host } = new URL(sh.url);
    return new Promise((resolve, reject) => {
      const headers = ['Host', host, 'Authorization', `Bearer ${sjwt}`, ...b.headers];
      const req = request({ hostname, port: Number(port), method: b.method, path: b.path, headers, agent: sagent, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      if (b.body) req.write(b.body);
      req.end();
    });
  };

  it(`never lets GitLab read a project or group outside the scope (${SCOPE_RUNS} generated requests)`, async () => {
    let forwardedCount = 0;
    let refusedCount = 0;
    await fc.assert(
      fc.asyncProperty(scopeRequest$, async (g) => {
        const built = buildScopeRequest(g);
        sh.standin.reset();
        const answer = await sendScoped(built);
        // The scope resolver's own look-ups carry no X-Request-Id.
        const received = sh.standin.requests.filter((r) => typeof r.headers['x-request-id'] === 'string');
        const where = `${built.method} ${built.path} ${built.body?.toString('latin1') ?? ''}`;
        if (received.length === 0) {
          refusedCount++;
          expect(answer.status >= 400 && answer.status < 500, `${answer.status} without forwarding: ${where}`).toBe(true);
          return;
        }
        forwardedCount++;
        expect(received, where).toHaveLength(1);
        expect(scopeViolations(received[0]!, answer), `${where} -> ${answer.status}`).toEqual([]);
      }),
      { numRuns: SCOPE_RUNS, ...fuzzSeed() },
    );
    expect(forwardedCount).toBeGreaterThan(SCOPE_RUNS / 10);
    expect(refusedCount).toBeGreaterThan(SCOPE_RUNS / 10);
  }, Math.max(60_000, SCOPE_RUNS * 40));

  it('has an oracle that recognises what it must reject', () => {
    const rec = (method: string, url: string, body = '', type = 'application/json'): RecordedRequest => {
      const q = url.indexOf('?');
      return { method, url, path: q === -1 ? url : url.slice(0, q), query: '', rawHeaders: [], headers: { 'content-type': type }, body: Buffer.from(body) };
    };
    const ok = { status: 201, headers: {}, body: '{}' };
    expect(scopeViolations(rec('POST', '/api/v4/projects/1/issues/1/move', '{"to_project_id":3}'), ok)).toEqual([]);
    expect(scopeViolations(rec('POST', '/api/v4/projects/1/issues/1/move', '{"to_project_id":" 4"}'), ok)).not.toEqual([]);
    expect(scopeViolations(rec('POST', '/api/v4/projects/1/merge_requests', 'TARGET_PROJECT_ID=0004', 'application/x-www-form-urlencoded'), ok)).not.toEqual([]);
    expect(scopeViolations(rec('POST', '/api/v4/projects/1/fork?namespace=other'), ok)).not.toEqual([]);
    expect(scopeViolations(rec('GET', '/api/v4/projects/other%2FSecret.json'), ok)).not.toEqual([]);
    const list = { status: 200, headers: {}, body: JSON.stringify([{ id: 4, path_with_namespace: 'other/secret' }]) };
    expect(scopeViolations(rec('GET', '/api/v4/projects%2Exml?per_page=100'), list)).not.toEqual([]);
    expect(scopeViolations(rec('GET', '/api/v4/groups/101/projects.json'), { status: 200, headers: { 'x-total': '2' }, body: '[]' })).not.toEqual([]);
  });
});
