// `scopes:` shorthands mirroring GitLab token scopes, through a real client and raw requests,
// asserting on what the GitLab stand-in received.
import { Gitlab } from '@gitbeaker/rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  reader:
    scopes: [read_api]
  profile:
    scopes: [read_user]
    allow:
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
  git-only:
    scopes: [read_repository, write_repository]
`;

describe('scopes: shorthands', () => {
  let h: Harness;
  let tokens: Record<string, string>;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'scopes.yaml': POLICY } });
    tokens = { reader: await h.token('reader'), profile: await h.token('profile'), git: await h.token('git-only') };
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  const send = (client: string, method: string, path: string, body?: string) =>
    fetch(h.url + path, {
      method,
      headers: { authorization: `Bearer ${tokens[client]!}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body,
    });

  it('read_api: every GET and HEAD under /api/v4, nothing else', async () => {
    const api = new Gitlab({ host: h.url, token: tokens.reader! });
    expect((await api.Projects.show(3)).path_with_namespace).toBe('acme/docs');
    expect((await api.MergeRequests.all({ projectId: 3 })).length).toBe(3);
    expect((await send('reader', 'HEAD', '/api/v4/projects/3')).status).toBe(200);
    await expect(api.MergeRequestNotes.create(3, 1, 'hi')).rejects.toThrow(/Forbidden/);
    expect((await send('reader', 'DELETE', '/api/v4/projects/3')).status).toBe(403);
    // Fixed denials stand: the proxy token's own endpoints.
    expect((await send('reader', 'GET', '/api/v4/personal_access_tokens/self')).status).toBe(403);
    expect(h.standin.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/v4/projects/3', 'GET /api/v4/projects/3/merge_requests', 'HEAD /api/v4/projects/3',
    ]);
    await h.waitForAudit(1);
    const line = h.audit.findLast((l) => l.path === '/api/v4/projects/3/merge_requests')!;
    expect(line.decision).toBe('allow');
    expect(line.rule).toMatch(/^scopes: read_api \(GET \/api\/v4\/\*\*\) \(.*scopes\.yaml:4\)$/);
  });

  it('read_user: /user and the Users API reads, combined with an allow rule', async () => {
    const api = new Gitlab({ host: h.url, token: tokens.profile! });
    expect((await api.Users.showCurrentUser()).username).toBe('proxy-bot');
    // The stand-in has no /users routes: what matters is that the proxy forwarded them.
    expect((await send('profile', 'GET', '/api/v4/users?username=proxy-bot')).status).toBe(404);
    expect((await send('profile', 'GET', '/api/v4/users/1')).status).toBe(404);
    expect((await send('profile', 'GET', '/api/v4/users/1/status')).status).toBe(404);
    // Not read_user: other APIs' endpoints under /users, project reads, writes.
    expect((await send('profile', 'GET', '/api/v4/users/1/projects')).status).toBe(403);
    expect((await send('profile', 'GET', '/api/v4/projects/3')).status).toBe(403);
    expect((await send('profile', 'PUT', '/api/v4/user/status', '{"emoji":"x"}')).status).toBe(403);
    // The allow rule beside the scope.
    const note = await api.MergeRequestNotes.create(3, 2, 'Looks fine');
    expect(note.body).toBe('Looks fine');
    expect(h.standin.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/v4/user', 'GET /api/v4/users', 'GET /api/v4/users/1', 'GET /api/v4/users/1/status',
      'POST /api/v4/projects/3/merge_requests/2/notes',
    ]);
  });

  it('read_repository and write_repository give no REST access', async () => {
    expect((await send('git', 'GET', '/api/v4/projects/3')).status).toBe(403);
    expect((await send('git', 'GET', '/api/v4/user')).status).toBe(403);
    expect(h.standin.requests).toEqual([]);
    expect([...h.proxy.policy().clients.get('git-only')!.scopes].sort()).toEqual(['read_repository', 'write_repository']);
  });
});
