// Format aliases of a path reach the same scope check and list filter as the plain path.
// Grape routes "/projects.json", "/projects%2Ejson" and "/projects.xml" to GET /projects
// (its "(.:format)" suffix, grape lib/grape/path.rb), so each must come back filtered to the
// client's projects, without X-Total, and every spelling of an out-of-scope group or project
// must be refused. The GitLab stand-in routes the same spellings (test/support/gitlab-standin.ts).
import { describe, expect, it } from 'vitest';
import type { Harness } from '../support/harness.ts';
import { bearer, send } from './support.ts';
import { expectScopeRefused, forwardedOnce, useScopeHarness } from './scope-support.ts';

const POLICY = `
clients:
  vendor:
    projects: ["acme/platform/*", "acme/docs", 42]
    groups: ["acme/platform"]
    scopes: [read_api]
  broad:
    allow:
      - "* /api/v4/**"
`;

let h: Harness;
let jwt: string;
useScopeHarness(POLICY, (harness, token) => {
  h = harness;
  jwt = token;
});

const get = (path: string, token = jwt) => send(h.url, { path, headers: [bearer(token)] });

/** The ids of a list answer, after checking it went to GitLab as sent and came back filtered. */
async function filteredIds(path: string): Promise<number[]> {
  h.standin.reset();
  const sent = await get(path);
  expect(sent.status, sent.body).toBe(200);
  const rec = await forwardedOnce(h, sent);
  expect(rec.url).toBe(path);
  expect(sent.headers['x-total'], 'X-Total counts items the client may not see').toBeUndefined();
  expect(sent.headers['x-total-pages']).toBeUndefined();
  return (JSON.parse(sent.body) as { id: number }[]).map((p) => p.id).sort((a, b) => a - b);
}

describe('format aliases of list endpoints are filtered like the plain path', () => {
  for (const suffix of ['', '.json', '%2Ejson', '%2ejson', '.xml', '.txt', '%2Exml']) {
    it(`GET /projects${suffix}`, async () => {
      expect(await filteredIds(`/api/v4/projects${suffix}?per_page=100`)).toEqual([1, 2, 3, 42]);
    });
  }

  it('GET /groups.json', async () => {
    const sent = await get('/api/v4/groups.json');
    await forwardedOnce(h, sent);
    expect((JSON.parse(sent.body) as { full_path: string }[]).map((g) => g.full_path)).toEqual(['acme/platform']);
    expect(sent.headers['x-total']).toBeUndefined();
  });

  it('GET /groups/:id/projects.json', async () => {
    expect(await filteredIds('/api/v4/groups/acme%2Fplatform/projects.json')).toEqual([1, 2]);
    expect(await filteredIds('/api/v4/groups/101/projects%2Ejson')).toEqual([1, 2]);
  });

  it('GET /projects/:id/forks.json', async () => {
    expect(await filteredIds('/api/v4/projects/1/forks.json?per_page=100')).toEqual([2, 3, 42]);
  });

  it('GET /users/:id/projects.json', async () => {
    expect(await filteredIds('/api/v4/users/1/projects.json?per_page=100')).toEqual([1, 2, 3, 42]);
  });
});

describe('format aliases of out-of-scope projects and groups are refused', () => {
  for (const path of [
    '/api/v4/groups/100/projects.json',
    '/api/v4/groups/other/projects%2Ejson',
    '/api/v4/projects/4/forks.json',
    '/api/v4/projects/4/forks.xml',
    '/api/v4/projects/4.json',
    '/api/v4/projects/other%2Fsecret.json',
    '/api/v4/projects/other%2Fsecret%2Ejson',
    '/api/v4/groups/100.json',
  ]) {
    it(path, async () => {
      await expectScopeRefused(h, await get(path), /^scope(-unresolved)?: /, 403);
    });
  }
});

describe('format aliases of fixed denials', () => {
  for (const [method, path] of [
    ['GET', '/api/v4/personal_access_tokens.xml'],
    ['GET', '/api/v4/personal_access_tokens%2Ejson'],
    ['POST', '/api/v4/user/personal_access_tokens.txt'],
  ] as const) {
    it(`${method} ${path} is refused under "* /api/v4/**"`, async () => {
      const sent = await send(h.url, { method, path, headers: [bearer(await h.token('broad'))] });
      await expectScopeRefused(h, sent, /^token-self: .*\(read without its (format|\.json) suffix\)$/, 403);
    });
  }
});
