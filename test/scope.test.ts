// Project and group scope (`projects:` / `groups:`), with a real GitLab client
// (@gitbeaker/rest) and raw fetches, asserting on what the GitLab stand-in received.
import { Gitlab } from '@gitbeaker/rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseScopePattern } from '../src/policy/scope-pattern.ts';
import { GitLabScopeResolver, matchesScope } from '../src/scope/scope.ts';
import { startHarness, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  vendor:
    projects: ["acme/platform/*", "acme/docs", 42]
    groups: ["acme/platform"]
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/merge_requests
      - GET /api/v4/groups
      - GET /api/v4/groups/:id
      - GET /api/v4/groups/:id/projects
  narrow:
    allow:
      - GET /api/v4/projects/:id
      - method: GET
        path: /api/v4/projects/:id/merge_requests
        projects: [acme/docs]
  reader:
    projects: ["acme/**"]
    scopes: [read_api]
`;

/** Requests the proxy forwarded for a vendor (they carry X-Request-Id); the scope resolver's
 *  own look-ups do not. */
const forwarded = (h: Harness) => h.standin.requests.filter((r) => typeof r.headers['x-request-id'] === 'string');
const lookups = (h: Harness) => h.standin.requests.filter((r) => r.headers['x-request-id'] === undefined);

describe('project and group scope', () => {
  let h: Harness;
  let api: InstanceType<typeof Gitlab>;
  let vendorToken: string;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'clients.yaml': POLICY } });
    vendorToken = await h.token('vendor');
    api = new Gitlab({ host: h.url, token: vendorToken });
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  const get = (path: string, client = vendorToken, headers: Record<string, string> = {}) =>
    fetch(h.url + path, { headers: { authorization: `Bearer ${client}`, ...headers }, redirect: 'manual' });

  it('lets an in-scope project through, by id and by path, and asks GitLab once per project', async () => {
    expect((await api.Projects.show(1)).path_with_namespace).toBe('acme/platform/api');
    expect((await api.Projects.show('acme/docs')).id).toBe(3);
    expect((await api.Projects.show(42)).path_with_namespace).toBe('acme/app-42');
    expect(forwarded(h).map((r) => r.path)).toEqual(['/api/v4/projects/1', '/api/v4/projects/acme%2Fdocs', '/api/v4/projects/42']);
    for (const r of lookups(h)) expect(r.headers['private-token']).toBe(h.realToken);
    const before = lookups(h).length;
    await api.MergeRequests.all({ projectId: 1 });
    await api.Projects.show(1);
    expect(lookups(h).length).toBe(before); // cached
  });

  it('compares paths case-insensitively', async () => {
    const res = await get('/api/v4/projects/ACME%2FDocs');
    expect(res.status).toBe(200);
    expect(forwarded(h).map((r) => r.path)).toEqual(['/api/v4/projects/ACME%2FDocs']);
  });

  it('refuses an out-of-scope project and forwards nothing', async () => {
    await expect(api.Projects.show(4)).rejects.toThrow(/Forbidden/);
    await expect(api.Projects.show('other/secret')).rejects.toThrow(/Forbidden/);
    await expect(api.MergeRequests.all({ projectId: 5 })).rejects.toThrow(/Forbidden/);
    expect(forwarded(h)).toEqual([]);
    // other/secret is project 4: known by its path from the first answer, not asked again.
    expect(lookups(h).map((r) => r.path)).toEqual(['/api/v4/projects/4', '/api/v4/projects/5']);
    await h.waitForAudit(1);
    const line = h.audit.findLast((l) => l.path === '/api/v4/projects/4')!;
    expect(line.decision).toBe('deny');
    expect(line).toMatchObject({ reason: 'scope', detail: 'project other/secret not in projects' });
    expect(line.rule).toMatch(/^GET \/api\/v4\/projects\/:id \(.*clients\.yaml:\d+\)$/);
  });

  it('refuses an id GitLab does not know (scope-unresolved)', async () => {
    const res = await get('/api/v4/projects/999');
    expect(res.status).toBe(403);
    expect(forwarded(h)).toEqual([]);
    expect(lookups(h).map((r) => r.path)).toEqual(['/api/v4/projects/999']);
    const n = h.audit.length;
    await get('/api/v4/projects/acme%2Fnope');
    await h.waitForAudit(n + 1);
    expect(h.audit.at(-1)).toMatchObject({ reason: 'scope-unresolved', detail: 'project acme/nope cannot be resolved' });
  });

  it('judges a renamed project by its current path', async () => {
    // acme/old-docs was renamed to acme/docs: GitLab answers the old path with a 301.
    const res = await get('/api/v4/projects/acme%2Fold-docs');
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe(`${h.url}/api/v4/projects/acme%2Fdocs`);
    expect(forwarded(h).map((r) => r.path)).toEqual(['/api/v4/projects/acme%2Fold-docs']);
    expect(lookups(h).map((r) => r.path)).toEqual(['/api/v4/projects/acme%2Fold-docs', '/api/v4/projects/acme%2Fdocs']);
  });

  it('holds groups to the groups list (a group does not bring its projects, nor projects their group)', async () => {
    expect((await api.Groups.show('acme/platform')).id).toBe(101);
    await expect(api.Groups.show(100)).rejects.toThrow(/Forbidden/);
    await expect(api.Groups.show('other')).rejects.toThrow(/Forbidden/);
    expect(forwarded(h).map((r) => r.path)).toEqual(['/api/v4/groups/acme%2Fplatform']);
  });

  it('filters GET /projects page by page: only in-scope ids, no totals, Link rewritten', async () => {
    const seen: number[] = [];
    for (let page = 1; page <= 5; page++) {
      const res = await get(`/api/v4/projects?order_by=id&sort=asc&per_page=10&page=${page}`, vendorToken, { 'accept-encoding': 'gzip, br' });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
      const ids = (JSON.parse(text) as { id: number }[]).map((p) => p.id);
      seen.push(...ids);
      expect(ids.every((id) => [1, 2, 3, 42].includes(id))).toBe(true);
      expect(res.headers.get('x-total')).toBeNull();
      expect(res.headers.get('x-total-pages')).toBeNull();
      expect(res.headers.get('x-page')).toBe(String(page));
      expect(res.headers.get('x-per-page')).toBe('10');
      expect(res.headers.get('x-next-page')).toBe(page < 5 ? String(page + 1) : '');
      const link = res.headers.get('link')!;
      expect(link).toContain(`<${h.url}/api/v4/projects?`);
      expect(link).not.toContain(h.standin.url);
    }
    expect(seen).toEqual([1, 2, 3, 42]);
    // Each page went to GitLab uncompressed, so it could be read.
    expect(forwarded(h)).toHaveLength(5);
    for (const r of forwarded(h)) expect(r.headers['accept-encoding']).toBeUndefined();
  });

  it('filters through a real client following the pages', async () => {
    const projects = await api.Projects.all({ perPage: 10, orderBy: 'id', sort: 'asc' });
    expect(projects.map((p) => p.id)).toEqual([1, 2, 3, 42]);
    expect(forwarded(h).length).toBe(5);
  });

  it('filters group lists and the projects of a group', async () => {
    const groups = await api.Groups.all();
    expect(groups.map((g) => g.full_path)).toEqual(['acme/platform']);
    const inPlatform = await api.Groups.allProjects('acme/platform');
    expect(inPlatform.map((p) => p.id).sort()).toEqual([1, 2]);
    await expect(api.Groups.allProjects('acme')).rejects.toThrow(/Forbidden/);
  });

  it('narrows a single rule with its own projects', async () => {
    const t = await h.token('narrow');
    expect((await get('/api/v4/projects/1', t)).status).toBe(200); // the plain rule: no scope
    expect((await get('/api/v4/projects/3/merge_requests', t)).status).toBe(200);
    const res = await get('/api/v4/projects/1/merge_requests', t);
    expect(res.status).toBe(403);
    expect(forwarded(h).map((r) => r.path)).toEqual(['/api/v4/projects/1', '/api/v4/projects/3/merge_requests']);
    await h.waitForAudit(h.audit.length);
    const line = h.audit.findLast((l) => l.path === '/api/v4/projects/1/merge_requests')!;
    expect(line).toMatchObject({ reason: 'scope', detail: 'project acme/platform/api not in the rule\'s projects' });
  });

  it('holds scopes: read_api to the projects list too', async () => {
    const t = await h.token('reader');
    expect((await get('/api/v4/projects/5/merge_requests', t)).status).toBe(200);
    expect((await get('/api/v4/projects/4/merge_requests', t)).status).toBe(403);
    expect(forwarded(h).map((r) => r.path)).toEqual(['/api/v4/projects/5/merge_requests']);
    const list = await get('/api/v4/projects?per_page=100', t);
    const ids = ((await list.json()) as { id: number }[]).map((p) => p.id);
    expect(ids).not.toContain(4);
    expect(ids).toHaveLength(44);
  });

  it('writes the scope that decided into the audit line of an allowed request', async () => {
    await get('/api/v4/projects/2');
    await h.waitForAudit(h.audit.length);
    const line = h.audit.findLast((l) => l.path === '/api/v4/projects/2')!;
    expect(line.decision).toBe('allow');
    expect(line).toMatchObject({ reason: 'scope-checked', detail: 'project acme/platform/web in scope' });
  });
});

describe('scope patterns', () => {
  const t = (id: number, fullPath: string) => ({ id, fullPath });
  const m = (patterns: (string | number)[], target: { id: number; fullPath: string }) => matchesScope(patterns.map(parseScopePattern), target);
  it('matches * as one level, ** as any depth, ids, and ignores case', () => {
    expect(m(['acme/platform/*'], t(1, 'acme/platform/api'))).toBe(true);
    expect(m(['acme/platform/*'], t(1, 'acme/platform/sub/api'))).toBe(false);
    expect(m(['acme/platform/*'], t(1, 'acme/platform'))).toBe(false);
    expect(m(['acme/**'], t(1, 'acme/platform/sub/api'))).toBe(true);
    expect(m(['acme/**'], t(1, 'acme'))).toBe(true);
    expect(m(['acme/**'], t(1, 'acmex/a'))).toBe(false);
    expect(m(['acme/*/api'], t(1, 'ACME/Platform/API'))).toBe(true);
    expect(m([42], t(42, 'x/y'))).toBe(true);
    expect(m(['42'], t(41, 'x/y'))).toBe(false);
  });
  it('refuses malformed patterns', () => {
    for (const bad of ['', '/acme', 'acme/', 'acme//x', '*', '**/x', 'acme/p*', 'ac me', 0, -1, 1.5]) {
      expect(() => parseScopePattern(bad), String(bad)).toThrow();
    }
  });
});

describe('ScopeResolver cache', () => {
  const answer = (id: number) => ({ status: 200, body: { id, path_with_namespace: `acme/p${id}`, full_path: `acme/g${id}` } });
  it('caches within the TTL, shares concurrent look-ups, and evicts the least recently used', async () => {
    let now = 0;
    const asked: string[] = [];
    const r = new GitLabScopeResolver({
      lookup: (path) => {
        asked.push(path);
        return Promise.resolve(answer(Number(path.split('/').at(-1)!.replace(/\D/g, '')) || 9));
      },
      ttlMs: 1000,
      maxEntries: 4,
      now: () => now,
    });
    const [a, b] = await Promise.all([r.resolve('project', '1'), r.resolve('project', '1')]);
    expect(a).toEqual({ id: 1, fullPath: 'acme/p1' });
    expect(b).toEqual(a);
    expect(asked).toEqual(['/api/v4/projects/1']);
    expect(await r.resolve('project', 'ACME/p1')).toEqual(a); // known by its path too
    expect(asked).toHaveLength(1);
    now = 1001;
    await r.resolve('project', '1');
    expect(asked).toHaveLength(2);
    for (const id of [2, 3, 4, 5]) await r.resolve('group', String(id));
    expect(r.size).toBeLessThanOrEqual(4);
  });
  it('does not cache a failure to reach GitLab, and caches a 404', async () => {
    let calls = 0;
    let fail = true;
    const r = new GitLabScopeResolver({
      lookup: () => {
        calls++;
        if (fail) return Promise.reject(new Error('down'));
        return Promise.resolve({ status: 404, body: undefined });
      },
      ttlMs: 60_000,
      maxEntries: 10,
    });
    expect(await r.resolve('project', '7')).toBeNull();
    fail = false;
    expect(await r.resolve('project', '7')).toBeNull();
    expect(await r.resolve('project', '7')).toBeNull();
    expect(calls).toBe(2);
  });
});
