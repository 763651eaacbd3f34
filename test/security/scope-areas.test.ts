// A scoped client reaches nothing outside its scope through paths that do not name a project
// or group under /projects or /groups: namespaces (a group or a user, lib/api/namespaces.rb),
// lists across every project (issues, merge requests, search, events...), and a group named
// by a client held to projects: only (GET /groups/:id lists its projects: docs "Groups API",
// with_projects defaults to true). Found by an outside review of the docs' "dashboards" example.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ policies: { 'v.yaml': `clients:
  dashboards:
    scopes: [read_api]
    projects: ["acme/**"]
    groups: ["acme"]
  projectsonly:
    scopes: [read_api]
    projects: ["acme/**"]
` } });
});
afterAll(async () => h?.close());

async function get(client: string, path: string): Promise<{ status: number; received: string[]; reason: string | null }> {
  const before = h.standin.requests.length;
  const auditBefore = h.audit.length;
  const res = await fetch(h.url + path, { headers: { authorization: `Bearer ${await h.token(client)}` } });
  await res.arrayBuffer();
  await h.waitForAudit(auditBefore + 1);
  // The proxy's own scope lookups (GET /groups/:id with its own token) are not the request.
  const received = h.standin.requests.slice(before).filter((r) => r.url === path && r.headers['x-request-id'] === res.headers.get('x-request-id')).map((r) => `${r.method} ${r.url}`);
  return { status: res.status, received, reason: h.audit[auditBefore]!.reason };
}

it.each([
  '/api/v4/namespaces/102',
  '/api/v4/namespaces/other',
  '/api/v4/namespaces?search=other',
  '/api/v4/issues?scope=all',
  '/api/v4/issues.json?scope=all',
  '/api/v4/merge_requests?scope=all',
  '/api/v4/search?scope=projects&search=secret',
  '/api/v4/events',
])('a groups: and projects: client reaches nothing outside acme: GET %s', async (path) => {
  expect(await get('dashboards', path)).toMatchObject({ status: 403, received: [], reason: expect.stringMatching(/^scope/) as unknown });
});

it('a namespace inside the groups: list passes', async () => {
  expect(await get('dashboards', '/api/v4/namespaces/acme')).toMatchObject({ received: ['GET /api/v4/namespaces/acme'], reason: 'scope-checked' });
});

it.each(['/api/v4/groups/other', '/api/v4/groups/102?with_projects=true', '/api/v4/groups/acme'])('a projects:-only client names no group: GET %s', async (path) => {
  expect(await get('projectsonly', path)).toMatchObject({ status: 403, received: [], reason: 'scope' });
});

it('a projects:-only client still lists a group\'s projects, filtered to its own', async () => {
  expect(await get('projectsonly', '/api/v4/groups/acme/projects')).toMatchObject({ status: 200, received: ['GET /api/v4/groups/acme/projects'] });
});
