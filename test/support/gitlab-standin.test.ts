import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveBytes, startGitLabStandIn } from './gitlab-standin.ts';
import type { StandIn } from './gitlab-standin.ts';

const token = `test-${randomBytes(12).toString('hex')}`;
let gitlab: StandIn;
let api: string;

function get(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${api}${path}`, { ...init, headers: { 'PRIVATE-TOKEN': token, ...init.headers } });
}
function parseLink(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(', ')) {
    const m = /^<([^>]+)>; rel="(\w+)"$/.exec(part);
    if (m?.[1] && m[2]) out[m[2]] = m[1];
  }
  return out;
}
async function ids(res: Response): Promise<number[]> {
  return ((await res.json()) as { id: number }[]).map((p) => p.id);
}

beforeEach(async () => {
  gitlab = await startGitLabStandIn({ relativeRoot: '/gitlab', validTokens: [token] });
  api = `${gitlab.url}/api/v4`;
});
afterEach(async () => {
  await gitlab.close();
});

describe('authentication', () => {
  it('answers 401 without a token and with a wrong token, and records both', async () => {
    const none = await fetch(`${api}/user`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toBe('application/json');
    expect(await none.json()).toEqual({ message: '401 Unauthorized' });

    const wrong = await fetch(`${api}/user`, { headers: { 'PRIVATE-TOKEN': randomBytes(12).toString('hex') } });
    expect(wrong.status).toBe(401);

    const ok = await get('/user');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ id: 1, username: 'proxy-bot' });
    expect(ok.headers.get('set-cookie')).toMatch(/^_gitlab_session=[0-9a-f]+; path=\/; HttpOnly$/);
    expect(gitlab.requests.map((r) => r.headers['private-token'] === token)).toEqual([false, false, true]);
  });

  it('serves 404 text outside the relative root and JSON 404 for unknown API routes', async () => {
    const outside = await fetch(`${gitlab.origin}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': token } });
    expect(outside.status).toBe(404);
    expect(await outside.text()).toBe('404 page not found\n');
    const unknown = await get('/projects/1/secrets');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: '404 Not Found' });
  });
});

describe('offset pagination', () => {
  it('sets GitLab headers and Link on the first, middle and last page', async () => {
    const first = await get('/projects?order_by=id&sort=asc&simple=true');
    expect(await ids(first)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const h = first.headers;
    expect([h.get('x-page'), h.get('x-per-page'), h.get('x-total'), h.get('x-total-pages')]).toEqual(['1', '20', '45', '3']);
    expect([h.get('x-next-page'), h.get('x-prev-page')]).toEqual(['2', '']);
    const base = `${gitlab.origin}/gitlab/api/v4/projects`;
    expect(parseLink(h.get('link'))).toEqual({
      next: `${base}?order_by=id&page=2&per_page=20&simple=true&sort=asc`,
      first: `${base}?order_by=id&page=1&per_page=20&simple=true&sort=asc`,
      last: `${base}?order_by=id&page=3&per_page=20&simple=true&sort=asc`,
    });

    const middle = await fetch(parseLink(h.get('link')).next ?? '', { headers: { 'PRIVATE-TOKEN': token } });
    expect((await ids(middle))[0]).toBe(21);
    expect(Object.keys(parseLink(middle.headers.get('link')))).toEqual(['prev', 'next', 'first', 'last']);
    expect(middle.headers.get('x-prev-page')).toBe('1');

    const last = await get('/projects?order_by=id&sort=asc&page=3&search=acme%2Fapp');
    expect(last.headers.get('x-total')).toBe('41');
    expect(await ids(last)).toEqual([45]);
    expect(last.headers.get('x-next-page')).toBe('');
    const links = parseLink(last.headers.get('link'));
    expect(Object.keys(links)).toEqual(['prev', 'first', 'last']);
    expect(links.prev).toBe(`${base}?order_by=id&page=2&per_page=20&search=acme%2Fapp&sort=asc`);
  });

  it('defaults to created_at desc, clamps per_page to 100 and rejects a bad page', async () => {
    const res = await get('/groups/acme%2Fplatform/projects?per_page=500');
    expect(await ids(res)).toEqual([2, 1]);
    expect(res.headers.get('x-per-page')).toBe('100');
    expect(parseLink(res.headers.get('link')).first).toContain('/groups/acme%2Fplatform/projects?page=1&per_page=500');
    const bad = await get('/projects?page=abc');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'page is invalid' });
  });

  it('supports keyset pagination on /projects', async () => {
    const first = await get('/projects?pagination=keyset&order_by=id&sort=asc&per_page=40');
    expect(await ids(first)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(first.headers.get('x-total')).toBeNull();
    const next = parseLink(first.headers.get('link')).next ?? '';
    expect(next).toBe(`${gitlab.url}/api/v4/projects?id_after=40&order_by=id&pagination=keyset&per_page=40&sort=asc`);
    const second = await fetch(next, { headers: { 'PRIVATE-TOKEN': token } });
    expect(await ids(second)).toEqual([41, 42, 43, 44, 45]);
    expect(second.headers.get('link')).toBeNull();
    expect((await get('/projects?pagination=keyset')).status).toBe(405);
  });
});

describe('project lookup', () => {
  it('finds projects by id and by URL-encoded path, case-insensitively, decoding once', async () => {
    const byPath = await get('/projects/ACME%2FDocs');
    expect(await byPath.json()).toMatchObject({
      id: 3, path_with_namespace: 'acme/docs', namespace: { id: 100, full_path: 'acme' }, web_url: `${gitlab.url}/acme/docs`,
    });
    expect(await (await get('/projects/4')).json()).toMatchObject({ path_with_namespace: 'other/secret' });
    const twice = await get('/projects/acme%252Fdocs');
    expect(twice.status).toBe(404);
    expect(await twice.json()).toEqual({ message: '404 Project Not Found' });
    expect((await get('/projects/46')).status).toBe(404);
  });

  it('redirects GETs on a renamed path with 301 and refuses other methods with 405', async () => {
    const moved = await get('/projects/acme%2Fold-docs/merge_requests?state=opened', { redirect: 'manual' });
    expect(moved.status).toBe(301);
    expect(moved.headers.get('location')).toBe(`${gitlab.url}/api/v4/projects/acme%2Fdocs/merge_requests?state=opened`);
    const post = await get('/projects/acme%2Fold-docs/merge_requests/1/notes', { method: 'POST', body: new URLSearchParams({ body: 'x' }) });
    expect(post.status).toBe(405);
  });
});

describe('notes', () => {
  const notes = '/projects/acme%2Fplatform%2Fapi/merge_requests/2/notes';

  it('accepts the body as JSON, urlencoded and multipart form', async () => {
    const json = await get(notes, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ body: 'from json' }) });
    expect(json.status).toBe(201);
    expect(await json.json()).toMatchObject({ body: 'from json', author: { username: 'proxy-bot' }, noteable_iid: 2 });
    const form = await get(notes, { method: 'POST', body: new URLSearchParams({ body: 'from form & more' }) });
    expect(await form.json()).toMatchObject({ body: 'from form & more' });
    const data = new FormData();
    data.set('body', 'from multipart');
    const multi = await get(notes, { method: 'POST', body: data });
    expect(multi.status).toBe(201);
    expect(await multi.json()).toMatchObject({ body: 'from multipart' });

    const list = (await (await get(notes)).json()) as { body: string }[];
    expect(list.map((n) => n.body).slice(0, 3)).toEqual(['from multipart', 'from form & more', 'from json']);
  });

  it('answers 400 when body is missing and 404 for an unknown merge request', async () => {
    const missing = await get(notes, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"note":"x"}' });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: 'body is missing' });
    expect((await get('/projects/1/merge_requests/9/notes')).status).toBe(404);
  });
});

describe('other endpoints', () => {
  it('creates commit statuses and validates state', async () => {
    const ok = await get('/projects/1/statuses/abc123', { method: 'POST', body: new URLSearchParams({ state: 'success', context: 'ci/vendor' }) });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({ sha: 'abc123', status: 'success', name: 'ci/vendor' });
    const bad = await get('/projects/1/statuses/abc123', { method: 'POST', body: new URLSearchParams({ state: 'done' }) });
    expect(await bad.json()).toEqual({ error: 'state does not have a valid value' });
  });

  it('serves repository files as JSON and raw', async () => {
    const file = (await (await get('/projects/3/repository/files/src%2Fmain.ts?ref=main')).json()) as Record<string, string>;
    expect(file).toMatchObject({ file_name: 'main.ts', file_path: 'src/main.ts', ref: 'main' });
    expect(Buffer.from(file.content ?? '', 'base64').toString()).toBe('export const answer = 42;\n');
    expect(await (await get('/projects/3/repository/files/src%2Fmain.ts/raw?ref=main')).text()).toBe('export const answer = 42;\n');
    expect((await get('/projects/3/repository/files/src/main.ts?ref=main')).status).toBe(404);
  });

  it('redirects artifacts to object storage, and never echoes a hook token', async () => {
    const art = await get('/projects/1/jobs/77/artifacts', { redirect: 'manual' });
    expect(art.status).toBe(302);
    const location = art.headers.get('location') ?? '';
    expect(location).toBe(`${gitlab.url}/-/object-storage/artifacts/77.zip?X-Amz-Signature=abc`);
    expect((await fetch(location)).headers.get('content-type')).toBe('application/zip');

    const hookBody = { url: 'https://vendor.example/hook', token: randomBytes(8).toString('hex'), merge_requests_events: true };
    const hook = await get('/projects/1/hooks', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(hookBody) });
    expect(hook.status).toBe(201);
    const created = (await hook.json()) as Record<string, unknown>;
    expect(created).toMatchObject({ url: hookBody.url, merge_requests_events: true, push_events: true });
    expect(JSON.stringify(created)).not.toContain(hookBody.token);
  });

  it('streams a 5 MiB archive whole', async () => {
    const size = 5 * 1024 * 1024 + 123;
    const res = await get(`/projects/1/repository/archive?bytes=${size}`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(size);
    expect(body.equals(archiveBytes(size))).toBe(true);
  });
});

describe('recording', () => {
  it('records the raw url, headers and body before answering', async () => {
    const payload = JSON.stringify({ body: 'héllo', n: randomBytes(4).toString('hex') });
    await get('/projects/acme%2Fdocs/merge_requests/1/notes?x=%41&y', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'req-1', 'X-Custom': 'Yes' }, body: payload,
    });
    await gitlab.waitForRequests(1);
    const [rec] = gitlab.requests;
    expect(rec).toMatchObject({
      method: 'POST', url: '/gitlab/api/v4/projects/acme%2Fdocs/merge_requests/1/notes?x=%41&y',
      path: '/gitlab/api/v4/projects/acme%2Fdocs/merge_requests/1/notes', query: 'x=%41&y',
    });
    expect(rec?.headers['x-custom']).toBe('Yes');
    expect(rec?.rawHeaders.map((h) => h.toLowerCase())).toContain('x-custom');
    expect(rec?.body.toString('utf8')).toBe(payload);
  });

  it('echoes X-Request-Id, resets, and times out waiting for requests that never come', async () => {
    const res = await get('/version', { headers: { 'X-Request-Id': 'abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(gitlab.requests).toHaveLength(1);
    gitlab.reset();
    expect(gitlab.requests).toHaveLength(0);
    await expect(gitlab.waitForRequests(1, 50)).rejects.toThrow(/expected 1 requests, got 0/);
    const pending = gitlab.waitForRequests(2);
    await get('/version');
    await get('/version');
    await expect(pending).resolves.toBeUndefined();
  });

  it('answers a forbidden request 500 and reports it once as a violation, until the ban is lifted', async () => {
    gitlab.reset();
    const lift = gitlab.forbid('never the version', (r) => r.path.endsWith('/version'));
    expect((await get('/version')).status).toBe(500);
    expect((await get('/user')).status).not.toBe(500);
    expect(gitlab.requests.map((r) => r.path)).toEqual(['/gitlab/api/v4/version', '/gitlab/api/v4/user']);
    expect(gitlab.takeViolations()).toEqual(['never the version: GET /gitlab/api/v4/version']);
    expect(gitlab.takeViolations()).toEqual([]);
    lift();
    expect((await get('/version')).status).toBe(200);
    expect(gitlab.takeViolations()).toEqual([]);
  });

  it('works without a relative root', async () => {
    const plain = await startGitLabStandIn({ validTokens: [token], projectCount: 3 });
    try {
      expect(plain.url).toBe(plain.origin);
      const res = await fetch(`${plain.url}/api/v4/projects`, { headers: { 'PRIVATE-TOKEN': token } });
      expect(res.headers.get('x-total')).toBe('3');
      expect(parseLink(res.headers.get('link')).first).toBe(`${plain.origin}/api/v4/projects?page=1&per_page=20`);
    } finally {
      await plain.close();
    }
  });
});
