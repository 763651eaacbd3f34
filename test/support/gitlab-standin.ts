// A loopback HTTP server that answers like GitLab's REST API (v4) and records
// every request it receives. Used as the upstream in integration tests.
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { runHttpBackend } from './git-backend.ts';
import { Changes, until } from './wait.ts';
import { createStandInOidc, type StandInOidc } from './standin-oidc.ts';

export interface RecordedRequest {
  method: string;
  url: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}
export interface StandInOptions {
  relativeRoot?: string;
  validTokens: string[];
  projectCount?: number;
}
export interface StandIn {
  origin: string;
  url: string;
  requests: RecordedRequest[];
  /** Forgets the recorded requests (forbidden requests stay forbidden). */
  reset(): void;
  close(): Promise<void>;
  /** Notified after each request is recorded (for `until` in ./wait.ts). */
  changes: Changes;
  /** Resolves when at least n requests have been recorded; rejects after the guard timeout. */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves with the first recorded request that `match`es, now or when it arrives. */
  waitForRequest(match: (r: RecordedRequest) => boolean, what: string, timeoutMs?: number): Promise<RecordedRequest>;
  /**
   * Requests that must never reach GitLab: from now on, one that `match`es (default: any) is
   * answered 500 and recorded as a violation, so a test fails on it whenever it arrives instead
   * of waiting a while to see that nothing came. Returns a function that lifts the ban.
   */
  forbid(why: string, match?: (r: RecordedRequest) => boolean): () => void;
  /** The forbidden requests that arrived ("why: METHOD url"), emptying the list. */
  takeViolations(): string[];
  /** Serve git over HTTP from these bare repositories (`<full path>.git`, test/support/git-backend.ts). */
  serveGitFrom(projectRoot: string): void;
  /** GitLab as an OpenID provider for the proxy's approver sign-in (test/support/standin-oidc.ts). */
  oidc: StandInOidc;
}

// ---------------------------------------------------------------- fixtures
type Json = Record<string, unknown>;
interface Project { id: number; path: string; namespace: string; fullPath: string }
interface Group { id: number; name: string; fullPath: string; parentId: number | null }

const GROUPS: readonly Group[] = [
  { id: 100, name: 'acme', fullPath: 'acme', parentId: null },
  { id: 101, name: 'platform', fullPath: 'acme/platform', parentId: 100 },
  { id: 102, name: 'other', fullPath: 'other', parentId: null },
];
const NAMED_PROJECTS: Record<number, string> = {
  1: 'acme/platform/api', 2: 'acme/platform/web', 3: 'acme/docs', 4: 'other/secret',
};
/** Old full path → current full path (GitLab keeps redirect routes after a rename). */
const RENAMED: Record<string, string> = { 'acme/old-docs': 'acme/docs' };
const BOT = { id: 1, username: 'proxy-bot', name: 'Proxy Bot', state: 'active' };
const CHUNK = 64 * 1024;
/** 128 KiB of i % 256; chunk k of the archive is the 64 KiB window starting at k % 256. */
const PATTERN = Buffer.from(Array.from({ length: 2 * CHUNK }, (_, i) => i % 256));
/** End-of-central-directory record only: the smallest valid zip file. */
const EMPTY_ZIP = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]);

/** The exact bytes `GET .../repository/archive?bytes=n` streams: byte o is (o + floor(o / 65536)) % 256. */
export function archiveBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let o = 0; o < n; o += CHUNK) PATTERN.copy(out, o, (o / CHUNK) % 256, (o / CHUNK) % 256 + Math.min(CHUNK, n - o));
  return out;
}

function buildProjects(count: number): Project[] {
  return Array.from({ length: count }, (_, i) => {
    const id = i + 1;
    const fullPath = NAMED_PROJECTS[id] ?? `acme/app-${id}`;
    const cut = fullPath.lastIndexOf('/');
    return { id, path: fullPath.slice(cut + 1), namespace: fullPath.slice(0, cut), fullPath };
  });
}
const day = (n: number): string => new Date(Date.UTC(2024, 0, 1) + n * 86_400_000).toISOString();
const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');
const groupByPath = (fullPath: string): Group | undefined => GROUPS.find((g) => g.fullPath === fullPath);

function repoFiles(p: Project): Map<string, string> {
  return new Map([
    ['README.md', `# ${p.path}\n\nStand-in repository for ${p.fullPath}.\n`],
    ['package.json', `{"name":"${p.path}","version":"1.0.0"}\n`],
    ['src/main.ts', 'export const answer = 42;\n'],
  ]);
}

// ---------------------------------------------------------------- plumbing
interface State {
  origin: string;
  base: string; // origin + relativeRoot
  tokens: Set<string>;
  projects: Project[];
  notes: Map<string, Json[]>;
  hooks: Map<number, Json[]>;
  nextId: number;
  gitRoot?: string;
  oidc: StandInOidc;
}
interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  rec: RecordedRequest;
  state: State;
  query: URLSearchParams;
  params: Json; // query string merged with the parsed body, like Grape's params
  segments: string[]; // raw path segments after /api/v4
  route: Record<string, string>; // raw (still encoded) :name → segment
}
type Handler = (ctx: Ctx) => void | Promise<void>;
type ProjectHandler = (ctx: Ctx, p: Project) => void | Promise<void>;
interface Route { method: string; pattern: string[]; handle: Handler }

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(payload.length) });
  res.end(payload);
}
function sendText(res: ServerResponse, status: number, text: string | Buffer, type = 'text/plain; charset=utf-8'): void {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(payload.length) });
  res.end(payload);
}
/** `{"message": ...}` errors, as lib/api/helpers.rb's render_api_error! produces. */
const fail = (ctx: Ctx, status: number, message: string): void => sendJson(ctx.res, status, { message });
/** `{"error": ...}` errors, as Grape parameter validation produces. */
const invalid = (ctx: Ctx, error: string): void => sendJson(ctx.res, 400, { error });

function decodeOnce(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  try { return decodeURIComponent(raw); } catch { return undefined; }
}
function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}
function bool(v: unknown, fallback: boolean): boolean {
  const s = str(v);
  return s === undefined ? fallback : s === 'true' || s === '1';
}
/** Integer param: undefined → fallback, not an integer → null (caller answers 400). */
function int(v: unknown, fallback: number): number | null {
  const s = str(v);
  if (s === undefined) return fallback;
  return /^-?\d+$/.test(s.trim()) ? Number(s) : null;
}

function parseBody(rec: RecordedRequest): Json | null {
  const contentType = rec.headers['content-type'] ?? '';
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  const text = rec.body.toString('utf8');
  if (type === 'application/json') {
    if (text.trim() === '') return {};
    try {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
    } catch { return null; }
  }
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (type === 'multipart/form-data') {
    const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
    return parseMultipart(text, m?.[1] ?? m?.[2] ?? '');
  }
  return {};
}
/** Enough multipart/form-data for simple text fields. */
function parseMultipart(text: string, boundary: string): Json {
  const out: Json = {};
  if (boundary === '') return out;
  for (const part of text.split(`--${boundary}`).slice(1)) {
    if (part.startsWith('--')) break;
    const sep = part.indexOf('\r\n\r\n');
    const name = /;\s*name="([^"]*)"/i.exec(part.slice(0, Math.max(sep, 0)))?.[1];
    if (sep >= 0 && name !== undefined) out[name] = part.slice(sep + 4).replace(/\r\n$/, '');
  }
  return out;
}

// ---------------------------------------------------------------- pagination
/** Ruby's CGI.escape, which Rails' Hash#to_query uses. */
const cgiEscape = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');

/**
 * The request's query parameters with `overrides` applied, serialised like Rails' to_query
 * (sorted by key, CGI-escaped). Repeated plain keys keep the last value, as Rack does.
 */
function pageUrl(ctx: Ctx, overrides: Record<string, string>): string {
  const pairs = new Map<string, string[]>();
  for (const [k, v] of ctx.query) {
    if (k.endsWith('[]')) pairs.set(k, [...(pairs.get(k) ?? []), v]);
    else pairs.set(k, [v]);
  }
  for (const [k, v] of Object.entries(overrides)) pairs.set(k, [v]);
  const encoded = [...pairs].map(([k, vs]) => ({ key: `${cgiEscape(k)}=`, parts: vs.map((v) => `${cgiEscape(k)}=${cgiEscape(v)}`) }));
  encoded.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return `${ctx.state.origin}${ctx.rec.path}?${encoded.flatMap((e) => e.parts).join('&')}`;
}

/**
 * Offset pagination with the headers of GitLab lib/gitlab/pagination/offset_header_builder.rb
 * and Kaminari's page arithmetic. Returns the page slice, or undefined after answering 400.
 */
function paginate<T>(ctx: Ctx, items: readonly T[]): T[] | undefined {
  const page = int(ctx.params.page, 1);
  const requestedPerPage = int(ctx.params.per_page, 20);
  if (page === null) return void invalid(ctx, 'page is invalid');
  if (requestedPerPage === null) return void invalid(ctx, 'per_page is invalid');
  const current = Math.max(page, 1);
  const perPage = Math.min(Math.max(requestedPerPage, 1), 100);
  const totalPages = Math.max(1, Math.ceil(items.length / perPage));
  const outOfRange = current > totalPages;
  const next = current < totalPages ? current + 1 : null;
  const prev = current > 1 && !outOfRange ? current - 1 : null;
  const perPageParam = str(ctx.params.per_page) ?? '20';
  const link = (p: number, rel: string): string => `<${pageUrl(ctx, { page: String(p), per_page: perPageParam })}>; rel="${rel}"`;
  const links = [
    ...(prev !== null ? [link(prev, 'prev')] : []),
    ...(next !== null ? [link(next, 'next')] : []),
    link(1, 'first'),
    link(totalPages, 'last'),
  ];
  const headers: Record<string, string> = {
    'X-Per-Page': String(perPage), 'X-Page': String(current),
    'X-Next-Page': next === null ? '' : String(next), 'X-Prev-Page': prev === null ? '' : String(prev),
    Link: links.join(', '), 'X-Total': String(items.length), 'X-Total-Pages': String(totalPages),
  };
  for (const [k, v] of Object.entries(headers)) ctx.res.setHeader(k, v);
  return items.slice((current - 1) * perPage, current * perPage);
}

/** Keyset pagination on `id` (GitLab lib/gitlab/pagination/keyset): only a rel="next" Link, no totals. */
function keysetProjects(ctx: Ctx, projects: Project[]): Project[] | undefined {
  if (str(ctx.params.order_by) !== 'id') {
    return void sendJson(ctx.res, 405, { error: 'Keyset pagination is not yet available for this type of request' });
  }
  const perPage = int(ctx.params.per_page, 20);
  const after = int(ctx.params.id_after, 0);
  const before = int(ctx.params.id_before, Number.MAX_SAFE_INTEGER);
  if (perPage === null) return void invalid(ctx, 'per_page is invalid');
  if (after === null || before === null) return void invalid(ctx, 'id_after is invalid');
  const desc = str(ctx.params.sort) === 'desc';
  const rows = projects.filter((p) => (desc ? p.id < before : p.id > after)).sort((a, b) => (desc ? b.id - a.id : a.id - b.id));
  const limit = Math.min(Math.max(perPage, 1), 100);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  if (rows.length > limit && last !== undefined) {
    const cursor: Record<string, string> = desc ? { id_before: String(last.id) } : { id_after: String(last.id) };
    ctx.res.setHeader('Link', `<${pageUrl(ctx, { per_page: String(limit), ...cursor })}>; rel="next"`);
  }
  return page;
}

// ---------------------------------------------------------------- resources
function projectJson(state: State, p: Project): Json {
  const web = `${state.base}/${p.fullPath}`;
  const group = groupByPath(p.namespace);
  return {
    id: p.id, name: p.path, name_with_namespace: p.fullPath.split('/').join(' / '), path: p.path,
    path_with_namespace: p.fullPath, description: null, default_branch: 'main',
    visibility: p.namespace === 'other' ? 'private' : 'internal',
    namespace: { id: group?.id ?? null, name: group?.name ?? p.namespace, path: p.namespace.split('/').at(-1), kind: 'group', full_path: p.namespace },
    web_url: web, http_url_to_repo: `${web}.git`, ssh_url_to_repo: `git@127.0.0.1:${p.fullPath}.git`,
    created_at: day(p.id), last_activity_at: day(p.id + 1), archived: false,
  };
}
function groupJson(state: State, g: Group): Json {
  return {
    id: g.id, name: g.name, path: g.name, full_name: g.fullPath.split('/').join(' / '), full_path: g.fullPath,
    parent_id: g.parentId, visibility: 'internal', web_url: `${state.base}/groups/${g.fullPath}`,
  };
}
function commits(state: State, p: Project): Json[] {
  return [3, 2, 1].map((n) => {
    const id = sha1(`${p.id}:${n}`);
    return {
      id, short_id: id.slice(0, 8), title: `Change ${n}`, message: `Change ${n}\n`, parent_ids: n > 1 ? [sha1(`${p.id}:${n - 1}`)] : [],
      author_name: BOT.name, author_email: 'proxy-bot@example.com', authored_date: day(n), created_at: day(n),
      committer_name: BOT.name, committer_email: 'proxy-bot@example.com', committed_date: day(n),
      web_url: `${state.base}/${p.fullPath}/-/commit/${id}`,
    };
  });
}
function mergeRequests(state: State, p: Project): Json[] {
  return [3, 2, 1].map((iid) => ({
    id: p.id * 1000 + iid, iid, project_id: p.id, title: `Change ${iid} for ${p.path}`, description: '',
    state: iid === 1 ? 'merged' : 'opened', source_branch: `feature-${iid}`, target_branch: 'main',
    author: BOT, sha: sha1(`${p.id}:mr:${iid}`), created_at: day(iid), updated_at: day(iid + 1),
    web_url: `${state.base}/${p.fullPath}/-/merge_requests/${iid}`,
  }));
}
const ORDER_BY = ['id', 'created_at', 'updated_at', 'last_activity_at', 'name', 'path'];
function sortProjects(ctx: Ctx, list: Project[]): Project[] | undefined {
  const orderBy = str(ctx.params.order_by) ?? 'created_at';
  const sort = str(ctx.params.sort) ?? 'desc';
  if (!ORDER_BY.includes(orderBy)) return void invalid(ctx, 'order_by does not have a valid value');
  if (sort !== 'asc' && sort !== 'desc') return void invalid(ctx, 'sort does not have a valid value');
  const byName = orderBy === 'name' || orderBy === 'path';
  const sorted = [...list].sort((a, b) => (byName ? a.path.localeCompare(b.path) || a.id - b.id : a.id - b.id));
  return sort === 'desc' ? sorted.reverse() : sorted;
}
function searchProjects(ctx: Ctx, list: Project[]): Project[] {
  const q = str(ctx.params.search)?.toLowerCase();
  return q ? list.filter((p) => p.fullPath.toLowerCase().includes(q)) : list;
}

type Lookup = { project: Project } | { movedTo: string } | undefined;
/** Numeric id, or the full path URL-encoded once; paths match case-insensitively (Routable). */
function findProject(state: State, raw: string | undefined): Lookup {
  const id = decodeOnce(raw);
  if (id === undefined || id === '') return undefined;
  if (/^\d+$/.test(id)) {
    const p = state.projects.find((x) => x.id === Number(id));
    return p && { project: p };
  }
  const wanted = id.toLowerCase();
  const p = state.projects.find((x) => x.fullPath.toLowerCase() === wanted);
  if (p) return { project: p };
  const movedTo = RENAMED[wanted];
  return movedTo !== undefined && state.projects.some((x) => x.fullPath === movedTo) ? { movedTo } : undefined;
}
function withProject(handle: ProjectHandler): Handler {
  return (ctx) => {
    const found = findProject(ctx.state, ctx.route.id);
    if (found === undefined) return fail(ctx, 404, '404 Project Not Found');
    if ('movedTo' in found) return redirectMoved(ctx, found.movedTo);
    return handle(ctx, found.project);
  };
}
/** GET on an old path → 301 to the same URL with the current path; other methods → 405. */
function redirectMoved(ctx: Ctx, fullPath: string): void {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') return fail(ctx, 405, '405 Method Not Allowed');
  const segments = ctx.segments.map((s, i) => (i === 1 ? encodeURIComponent(fullPath) : s));
  const query = ctx.rec.query === '' ? '' : `?${ctx.rec.query}`;
  sendJson(ctx.res, 301, { message: '301 Moved Permanently' }, { Location: `${ctx.state.base}/api/v4/${segments.join('/')}${query}` });
}
function withGroup(handle: (ctx: Ctx, g: Group) => void | Promise<void>): Handler {
  return (ctx) => {
    const g = findGroup(ctx.route.id);
    return g ? handle(ctx, g) : fail(ctx, 404, '404 Group Not Found');
  };
}
/** A project's or a group's webhooks (GitLab's Hooks API), kept under `key` in state.hooks
 *  (a project's id, or minus a group's). */
function hookRoutes<T>(
  kind: 'projects' | 'groups',
  within: (handle: (ctx: Ctx, owner: T) => void) => Handler,
  owner: (o: T) => { key: number; owner: Json },
): Route[] {
  const hooks = (ctx: Ctx, o: T): Json[] => ctx.state.hooks.get(owner(o).key) ?? [];
  const withHook = (handle: (ctx: Ctx, o: T, hook: Json) => void) => within((ctx, o) => {
    const hook = hooks(ctx, o).find((h) => String(h.id) === decodeOnce(ctx.route.hook_id));
    return hook ? handle(ctx, o, hook) : fail(ctx, 404, '404 Not found');
  });
  return [
    route('GET', `/${kind}/:id/hooks`, within((ctx, o) => paged(ctx, hooks(ctx, o)))),
    route('POST', `/${kind}/:id/hooks`, within((ctx, o) => createHook(ctx, owner(o)))),
    route('GET', `/${kind}/:id/hooks/:hook_id`, withHook((ctx, _o, hook) => sendJson(ctx.res, 200, hook))),
    route('PUT', `/${kind}/:id/hooks/:hook_id`, withHook((ctx, _o, hook) => {
      if (typeof ctx.params.url === 'string') hook.url = ctx.params.url;
      sendJson(ctx.res, 200, hook);
    })),
    route('DELETE', `/${kind}/:id/hooks/:hook_id`, withHook((ctx, o, hook) => {
      ctx.state.hooks.set(owner(o).key, hooks(ctx, o).filter((h) => h !== hook));
      ctx.res.writeHead(204).end();
    })),
  ];
}
function withMergeRequest(handle: (ctx: Ctx, p: Project, mr: Json) => void): ProjectHandler {
  return (ctx, p) => {
    const iid = decodeOnce(ctx.route.iid) ?? '';
    if (!/^\d+$/.test(iid)) return invalid(ctx, 'merge_request_iid is invalid');
    const mr = mergeRequests(ctx.state, p).find((m) => m.iid === Number(iid));
    return mr ? handle(ctx, p, mr) : fail(ctx, 404, '404 Merge Request Not Found');
  };
}
function noteJson(id: number, body: string, mr: Json, createdAt: string): Json {
  return { id, body, author: BOT, system: false, noteable_type: 'MergeRequest', noteable_iid: mr.iid, created_at: createdAt };
}
function notesFor(ctx: Ctx, p: Project, mr: Json): Json[] {
  const key = `${p.id}:${String(mr.iid)}`;
  let notes = ctx.state.notes.get(key);
  if (!notes) {
    notes = [noteJson(p.id * 10_000 + Number(mr.iid), 'Looks good to me', mr, day(5))];
    ctx.state.notes.set(key, notes);
  }
  return notes;
}
const paged = <T>(ctx: Ctx, items: readonly T[]): void => {
  const page = paginate(ctx, items);
  if (page) sendJson(ctx.res, 200, page);
};

// ---------------------------------------------------------------- handlers
const getUser: Handler = (ctx) => {
  ctx.res.setHeader('Set-Cookie', `_gitlab_session=${randomBytes(16).toString('hex')}; path=/; HttpOnly`);
  sendJson(ctx.res, 200, BOT);
};
const listProjects: Handler = (ctx) => {
  const list = searchProjects(ctx, ctx.state.projects);
  if (str(ctx.params.pagination) === 'keyset') {
    const page = keysetProjects(ctx, list);
    return page && sendJson(ctx.res, 200, page.map((p) => projectJson(ctx.state, p)));
  }
  const sorted = sortProjects(ctx, list);
  const page = sorted && paginate(ctx, sorted);
  if (page) sendJson(ctx.res, 200, page.map((p) => projectJson(ctx.state, p)));
};
function findGroup(raw: string | undefined): Group | undefined {
  const id = decodeOnce(raw)?.toLowerCase();
  return GROUPS.find((g) => String(g.id) === id || g.fullPath === id);
}
const getGroup: Handler = (ctx) => {
  const g = findGroup(ctx.route.id);
  return g ? sendJson(ctx.res, 200, groupJson(ctx.state, g)) : fail(ctx, 404, '404 Group Not Found');
};
const listGroupProjects: Handler = (ctx) => {
  const g = findGroup(ctx.route.id);
  if (!g) return fail(ctx, 404, '404 Group Not Found');
  const deep = bool(ctx.params.include_subgroups, false);
  const inGroup = ctx.state.projects.filter((p) => p.namespace === g.fullPath || (deep && p.namespace.startsWith(`${g.fullPath}/`)));
  const sorted = sortProjects(ctx, searchProjects(ctx, inGroup));
  const page = sorted && paginate(ctx, sorted);
  if (page) sendJson(ctx.res, 200, page.map((p) => projectJson(ctx.state, p)));
};
const updateProject: ProjectHandler = (ctx, p) => {
  const changes: Json = { ...ctx.params };
  delete changes.id;
  sendJson(ctx.res, 200, { ...projectJson(ctx.state, p), ...changes });
};
const createNote = withMergeRequest((ctx, p, mr) => {
  const body = str(ctx.params.body);
  if (body === undefined) return invalid(ctx, 'body is missing');
  if (body.trim() === '') return sendJson(ctx.res, 400, { message: { note: ["can't be blank"] } });
  const note = noteJson(ctx.state.nextId++, body, mr, new Date().toISOString());
  notesFor(ctx, p, mr).unshift(note);
  sendJson(ctx.res, 201, note);
});
const STATUS_STATES = ['pending', 'running', 'success', 'failed', 'canceled'];
const createStatus: ProjectHandler = (ctx) => {
  const state = str(ctx.params.state);
  if (state === undefined || !STATUS_STATES.includes(state)) return invalid(ctx, 'state does not have a valid value');
  sendJson(ctx.res, 201, {
    id: ctx.state.nextId++, sha: decodeOnce(ctx.route.sha), ref: str(ctx.params.ref) ?? null, status: state,
    name: str(ctx.params.name) ?? str(ctx.params.context) ?? 'default', target_url: str(ctx.params.target_url) ?? null,
    description: str(ctx.params.description) ?? null, allow_failure: false, created_at: new Date().toISOString(), author: BOT,
  });
};
function fileFor(ctx: Ctx, p: Project): { path: string; content: string; ref: string } | undefined {
  const ref = str(ctx.params.ref);
  if (ref === undefined || ref === '') return void invalid(ctx, 'ref is missing');
  const path = decodeOnce(ctx.route.file_path) ?? '';
  const content = repoFiles(p).get(path);
  if (content === undefined) return void fail(ctx, 404, '404 File Not Found');
  return { path, content, ref };
}
const getFile: ProjectHandler = (ctx, p) => {
  const f = fileFor(ctx, p);
  if (!f) return;
  const head = String(commits(ctx.state, p)[0]?.id);
  sendJson(ctx.res, 200, {
    file_name: f.path.split('/').at(-1), file_path: f.path, size: Buffer.byteLength(f.content), encoding: 'base64',
    content_sha256: createHash('sha256').update(f.content).digest('hex'), ref: f.ref, blob_id: sha1(f.content),
    commit_id: head, last_commit_id: head, content: Buffer.from(f.content).toString('base64'),
  });
};
const getRawFile: ProjectHandler = (ctx, p) => {
  const f = fileFor(ctx, p);
  if (f) sendText(ctx.res, 200, f.content);
};
const getTree: ProjectHandler = (ctx, p) => {
  const dir = (str(ctx.params.path) ?? '').replace(/^\/+|\/+$/g, '');
  const recursive = bool(ctx.params.recursive, false);
  const paths = [...repoFiles(p).keys(), 'src'];
  const entries = paths
    .filter((x) => (dir === '' ? recursive || !x.includes('/') : x.startsWith(`${dir}/`) && (recursive || !x.slice(dir.length + 1).includes('/'))))
    .sort()
    .map((x) => ({ id: sha1(x), name: x.split('/').at(-1), type: x === 'src' ? 'tree' : 'blob', path: x, mode: x === 'src' ? '040000' : '100644' }));
  if (dir !== '' && !paths.includes(dir)) return fail(ctx, 404, '404 Tree Not Found');
  paged(ctx, entries);
};
const getCommit: ProjectHandler = (ctx, p) => {
  const sha = decodeOnce(ctx.route.sha) ?? '';
  const all = commits(ctx.state, p);
  const c = sha === 'main' ? all[0] : all.find((x) => sha.length >= 7 && String(x.id).startsWith(sha));
  return c ? sendJson(ctx.res, 200, c) : fail(ctx, 404, '404 Commit Not Found');
};
const streamArchive: ProjectHandler = async (ctx, p) => {
  const total = int(ctx.params.bytes, 1024 * 1024);
  const delayMs = int(ctx.params.delay_ms, 0);
  if (total === null || total < 0) return invalid(ctx, 'bytes is invalid');
  if (delayMs === null || delayMs < 0) return invalid(ctx, 'delay_ms is invalid');
  const { res } = ctx;
  // Workhorse streams `git archive` output, so no Content-Length (chunked).
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Disposition': `attachment; filename="${p.path}-main.tar.gz"` });
  const closed = new AbortController();
  res.once('close', () => closed.abort());
  for (let sent = 0, k = 0; sent < total && !res.destroyed; k++) {
    const n = Math.min(CHUNK, total - sent);
    sent += n;
    if (!res.write(PATTERN.subarray(k % 256, (k % 256) + n))) await once(res, 'drain', { signal: closed.signal }).catch(() => undefined);
    if (delayMs > 0 && sent < total) await sleep(delayMs, undefined, { signal: closed.signal }).catch(() => undefined);
  }
  if (!res.destroyed) res.end();
};
const getArtifacts: ProjectHandler = (ctx) => {
  const job = decodeOnce(ctx.route.job_id) ?? '';
  if (!/^\d+$/.test(job)) return invalid(ctx, 'job_id is invalid');
  ctx.res.writeHead(302, { Location: `${ctx.state.base}/-/object-storage/artifacts/${job}.zip?X-Amz-Signature=abc`, 'Content-Length': '0' });
  ctx.res.end();
};
const createHook = (ctx: Ctx, o: { key: number; owner: Json }): void => {
  const url = str(ctx.params.url);
  if (url === undefined || url === '') return invalid(ctx, 'url is missing');
  const events: Json = {
    push_events: true, tag_push_events: false, merge_requests_events: false, issues_events: false,
    note_events: false, job_events: false, pipeline_events: false,
  };
  for (const [k, v] of Object.entries(ctx.params)) if (k.endsWith('_events')) events[k] = bool(v, false);
  // The secret token is write-only in GitLab: it is never returned.
  const hook = {
    id: ctx.state.nextId++, url, ...o.owner, ...events,
    enable_ssl_verification: bool(ctx.params.enable_ssl_verification, true), created_at: new Date().toISOString(),
  };
  ctx.state.hooks.set(o.key, [...(ctx.state.hooks.get(o.key) ?? []), hook]);
  sendJson(ctx.res, 201, hook);
};
const addMember: ProjectHandler = (ctx) => {
  const level = int(ctx.params.access_level, -1);
  const user = str(ctx.params.user_id) ?? str(ctx.params.username);
  if (level === -1) return invalid(ctx, 'access_level is missing');
  if (level === null) return invalid(ctx, 'access_level is invalid');
  if (user === undefined) return invalid(ctx, 'user_id, username are missing, exactly one parameter must be provided');
  const numeric = /^\d+$/.test(user);
  sendJson(ctx.res, 201, {
    id: numeric ? Number(user) : 2, username: numeric ? `user-${user}` : user, state: 'active',
    access_level: level, expires_at: str(ctx.params.expires_at) ?? null,
  });
};
const TOKEN_INFO = {
  id: 7, name: 'proxy-bot token', revoked: false, scopes: ['api'], user_id: 1, active: true,
  created_at: day(0), last_used_at: day(30), expires_at: '2099-12-31',
};
const rotateToken: Handler = (ctx) => sendJson(ctx.res, 200, {
  ...TOKEN_INFO, id: ctx.state.nextId++, created_at: new Date().toISOString(), last_used_at: null,
  expires_at: str(ctx.params.expires_at) ?? TOKEN_INFO.expires_at, token: `glpat-rotated-${randomBytes(10).toString('hex')}`,
});

/** A project list, sorted and paginated like GET /projects (with X-Total). */
const listOf = (ctx: Ctx, projects: Project[]): void => {
  const sorted = sortProjects(ctx, projects);
  const page = sorted && paginate(ctx, sorted);
  if (page) sendJson(ctx.res, 200, page.map((p) => projectJson(ctx.state, p)));
};
/** Answers with the parameters GitLab received (and the project of the path, if any). */
const echo = (status: number) => (ctx: Ctx, p?: Project): void => {
  sendJson(ctx.res, status, { id: ctx.state.nextId++, ...(p ? { project_id: p.id } : {}), params: ctx.params });
};

// ---------------------------------------------------------------- routes
function route(method: string, pattern: string, handle: Handler): Route {
  return { method, pattern: pattern.split('/').slice(1), handle };
}
const ROUTES: readonly Route[] = [
  route('GET', '/user', getUser),
  route('GET', '/version', (ctx) => sendJson(ctx.res, 200, { version: '17.5.0', revision: 'abc' })),
  route('GET', '/projects', listProjects),
  route('GET', '/projects/:id', withProject((ctx, p) => sendJson(ctx.res, 200, projectJson(ctx.state, p)))),
  route('PUT', '/projects/:id', withProject(updateProject)),
  route('DELETE', '/projects/:id', withProject((ctx) => sendJson(ctx.res, 202, { message: '202 Accepted' }))),
  route('GET', '/projects/:id/merge_requests', withProject((ctx, p) => {
    const state = str(ctx.params.state) ?? 'all';
    paged(ctx, mergeRequests(ctx.state, p).filter((m) => state === 'all' || m.state === state));
  })),
  route('GET', '/projects/:id/merge_requests/:iid', withProject(withMergeRequest((ctx, _p, mr) => sendJson(ctx.res, 200, mr)))),
  route('GET', '/projects/:id/merge_requests/:iid/notes', withProject(withMergeRequest((ctx, p, mr) => paged(ctx, notesFor(ctx, p, mr))))),
  route('POST', '/projects/:id/merge_requests/:iid/notes', withProject(createNote)),
  route('POST', '/projects/:id/statuses/:sha', withProject(createStatus)),
  route('GET', '/projects/:id/repository/files/:file_path', withProject(getFile)),
  route('GET', '/projects/:id/repository/files/:file_path/raw', withProject(getRawFile)),
  route('GET', '/projects/:id/repository/tree', withProject(getTree)),
  route('GET', '/projects/:id/repository/commits', withProject((ctx, p) => paged(ctx, commits(ctx.state, p)))),
  route('GET', '/projects/:id/repository/commits/:sha', withProject(getCommit)),
  route('GET', '/projects/:id/repository/archive', withProject(streamArchive)),
  route('GET', '/projects/:id/jobs/:job_id/artifacts', withProject(getArtifacts)),
  ...hookRoutes('projects', withProject, (p) => ({ key: p.id, owner: { project_id: p.id } })),
  ...hookRoutes('groups', withGroup, (g) => ({ key: -g.id, owner: { group_id: g.id } })),
  route('POST', '/projects/:id/members', withProject(addMember)),
  route('GET', '/groups', (ctx) => paged(ctx, [...GROUPS].sort((a, b) => a.name.localeCompare(b.name)).map((g) => groupJson(ctx.state, g)))),
  route('GET', '/groups/:id', getGroup),
  route('GET', '/groups/:id/projects', listGroupProjects),
  route('GET', '/projects/:id/forks', withProject((ctx, p) => listOf(ctx, ctx.state.projects.filter((x) => x.id !== p.id)))),
  route('GET', '/users/:id/projects', (ctx) => listOf(ctx, ctx.state.projects)),
  // Endpoints whose parameters name another project, group or namespace, and endpoints
  // that run quick actions: answered with what GitLab was asked to do.
  route('GET', '/projects/:id/repository/compare', withProject(echo(200))),
  route('POST', '/projects/:id/merge_requests', withProject(echo(201))),
  route('PUT', '/projects/:id/merge_requests/:iid', withProject(echo(200))),
  route('POST', '/projects/:id/issues', withProject(echo(201))),
  route('PUT', '/projects/:id/issues/:iid', withProject(echo(200))),
  route('POST', '/projects/:id/issues/:iid/notes', withProject(echo(201))),
  route('POST', '/projects/:id/issues/:iid/move', withProject(echo(201))),
  route('POST', '/projects/:id/fork', withProject(echo(201))),
  route('POST', '/projects/:id/share', withProject(echo(201))),
  route('PUT', '/projects/:id/transfer', withProject(echo(200))),
  route('POST', '/groups', echo(201)),
  route('GET', '/personal_access_tokens/self', (ctx) => sendJson(ctx.res, 200, TOKEN_INFO)),
  route('POST', '/personal_access_tokens/self/rotate', rotateToken),
];

/**
 * Literal segments compare after percent-decoding (Grape/Mustermann match `%75ser` as `user`);
 * `%2F` never splits a segment. Params stay raw. HEAD is served by GET routes.
 */
function matchRoute(method: string, segments: string[]): { route: Route; params: Record<string, string> } | undefined {
  const wanted = method === 'HEAD' ? 'GET' : method;
  for (const r of ROUTES) {
    if (r.method !== wanted || r.pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const ok = r.pattern.every((lit, i) => {
      const seg = segments[i] ?? '';
      if (lit.startsWith(':')) params[lit.slice(1)] = seg;
      if (lit.startsWith(':')) return seg !== '';
      // Grape's "(.:format)" suffix: a last literal may carry any ".ext" (also "%2E"-spelled).
      const decoded = decodeOnce(seg);
      return decoded === lit || (i === r.pattern.length - 1 && decoded !== undefined && decoded.startsWith(`${lit}.`) && /^[^./]+$/.test(decoded.slice(lit.length + 1)));
    });
    if (ok) return { route: r, params };
  }
  return undefined;
}

function authenticated(state: State, rec: RecordedRequest): boolean {
  const token = rec.headers['private-token'];
  return typeof token === 'string' && state.tokens.has(token);
}

async function dispatch(state: State, root: string, rec: RecordedRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const requestId = rec.headers['x-request-id'];
  if (typeof requestId === 'string') res.setHeader('X-Request-Id', requestId);
  if (rec.path !== root && !rec.path.startsWith(`${root}/`)) return sendText(res, 404, '404 page not found\n');
  if (state.oidc.handle(rec, res, root, state.tokens)) return;
  const rel = rec.path.slice(root.length).split('/').slice(1);
  const query = new URLSearchParams(rec.query);
  if (rel[0] === '-' && rel[1] === 'object-storage') {
    return query.has('X-Amz-Signature') ? sendText(res, 200, EMPTY_ZIP, 'application/zip')
      : sendText(res, 403, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>', 'application/xml');
  }
  const git = /^\/(.+)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/.exec(rec.path.slice(root.length));
  if (git && state.gitRoot !== undefined) return serveGit(state, rec, req, res, git[1]!, git[2]!);
  if (decodeOnce(rel[0]) !== 'api') return sendText(res, 404, '404 page not found\n');
  res.setHeader('Cache-Control', 'max-age=0, private, must-revalidate');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'SAMEORIGIN');
  if (rel.length === 2 && decodeOnce(rel[1]) === 'graphql' && req.method === 'POST') {
    if (!authenticated(state, rec)) return sendJson(res, 401, { errors: [{ message: 'Invalid token' }] });
    return sendJson(res, 200, { data: { echo: true } });
  }
  if (decodeOnce(rel[1]) !== 'v4') return sendJson(res, 404, { message: '404 Not Found' });
  if (!authenticated(state, rec)) return sendJson(res, 401, { message: '401 Unauthorized' });
  const segments = rel.slice(2);
  const match = matchRoute(req.method ?? 'GET', segments);
  if (!match) return sendJson(res, 404, { message: '404 Not Found' });
  const body = parseBody(rec);
  if (body === null) return sendJson(res, 400, { error: 'message body does not match declared format' });
  const params: Json = { ...Object.fromEntries(query), ...body };
  await match.route.handle({ req, res, rec, state, query, params, segments, route: match.params });
}

/** Git over HTTP: a PAT as the Basic password with any user name (lib/gitlab/auth.rb
 *  find_for_git_client), the project found as the API finds it (any case, renamed paths),
 *  answered by `git http-backend`. */
function serveGit(state: State, rec: RecordedRequest, req: IncomingMessage, res: ServerResponse, fullPath: string, tail: string): void {
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(rec.headers.authorization ?? '');
  const pair = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : '';
  if (!pair.includes(':') || !state.tokens.has(pair.slice(pair.indexOf(':') + 1))) {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="GitLab"', 'Content-Type': 'text/plain' });
    res.end('HTTP Basic: Access denied\n');
    return;
  }
  const found = findProject(state, encodeURIComponent(fullPath));
  if (found === undefined) return sendText(res, 404, 'The project you were looking for could not be found.\n');
  const current = 'movedTo' in found ? found.movedTo : found.project.fullPath;
  runHttpBackend({ req, res, body: rec.body, projectRoot: state.gitRoot!, pathInfo: `/${current}.git/${tail}`, query: rec.query, remoteUser: BOT.username });
}

function normaliseRoot(root: string | undefined): string {
  const trimmed = (root ?? '').replace(/\/+$/, '');
  return trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

export async function startGitLabStandIn(opts: StandInOptions): Promise<StandIn> {
  const root = normaliseRoot(opts.relativeRoot);
  const requests: RecordedRequest[] = [];
  const changes = new Changes();
  const forbidden = new Set<{ why: string; match: (r: RecordedRequest) => boolean }>();
  const violations: string[] = [];
  const state: State = {
    origin: '', base: '', tokens: new Set(opts.validTokens), projects: buildProjects(opts.projectCount ?? 45),
    notes: new Map(), hooks: new Map(), nextId: 1000, oidc: createStandInOidc(),
  };

  const server = createServer({ keepAlive: true }, (req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const rec: RecordedRequest = {
        method: req.method ?? '', url, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1),
        headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks),
      };
      requests.push(rec);
      const ban = [...forbidden].find((f) => f.match(rec));
      if (ban) violations.push(`${ban.why}: ${rec.method} ${rec.url}`);
      changes.notify();
      if (ban) return sendJson(res, 500, { message: '500 forbidden in this test: it must never reach GitLab' });
      await dispatch(state, root, rec, req, res);
    })().catch(() => {
      if (!res.headersSent) sendJson(res, 500, { message: '500 Internal Server Error' });
      else res.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  state.origin = `http://127.0.0.1:${port}`;
  state.base = state.origin + root;

  let closing: Promise<void> | undefined;
  return {
    origin: state.origin,
    url: state.base,
    requests,
    reset: () => { requests.length = 0; },
    serveGitFrom: (projectRoot) => { state.gitRoot = projectRoot; },
    oidc: state.oidc,
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
    changes,
    waitForRequests: async (n, timeoutMs) => {
      await until(changes, () => requests.length >= n, `${n} requests at the GitLab stand-in`, timeoutMs).catch(() => {
        throw new Error(`GitLab stand-in: expected ${n} requests, got ${requests.length}`);
      });
    },
    waitForRequest: (match, what, timeoutMs) => until(changes, () => requests.find(match), what, timeoutMs),
    forbid: (why, match = () => true) => {
      const ban = { why, match };
      forbidden.add(ban);
      return () => void forbidden.delete(ban);
    },
    takeViolations: () => violations.splice(0),
  };
}
