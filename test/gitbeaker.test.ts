// A real GitLab client, @gitbeaker/rest, configured with the proxy's URL and a client JWT as
// its "personal access token", exactly as a vendor would set it up.
import { Gitlab } from '@gitbeaker/rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  packit:
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
      - POST /api/v4/projects/:id/statuses/:sha
`;
const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

describe('@gitbeaker/rest through the proxy', () => {
  let h: Harness;
  let api: InstanceType<typeof Gitlab>;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'packit.yaml': POLICY } });
    api = new Gitlab({ host: h.url, token: await h.token('packit') });
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  it('lists every project over several pages', async () => {
    const projects = await api.Projects.all({ perPage: 10, orderBy: 'id', sort: 'asc' });
    expect(projects.map((p) => p.id)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    expect(h.standin.requests.length).toBeGreaterThanOrEqual(5);
    for (const r of h.standin.requests) {
      expect(r.method).toBe('GET');
      expect(r.path).toBe('/api/v4/projects');
      expect(r.headers['private-token']).toBe(h.realToken);
    }
  });

  it('paginates with keyset pagination', async () => {
    const projects = await api.Projects.all({ pagination: 'keyset', orderBy: 'id', sort: 'asc', perPage: 20 });
    expect(projects).toHaveLength(45);
    expect(h.standin.requests.map((r) => new URLSearchParams(r.query).get('id_after'))).toEqual([null, '20', '40']);
  });

  it('creates a merge request note', async () => {
    const note = await api.MergeRequestNotes.create('acme/docs', 2, 'Build passed');
    expect(note.body).toBe('Build passed');
    const got = h.standin.requests.at(-1)!;
    expect(got.method).toBe('POST');
    expect(got.path).toBe('/api/v4/projects/acme%2Fdocs/merge_requests/2/notes');
    expect(got.body.toString()).toContain('Build passed');
  });

  it('sets a commit status', async () => {
    const status = await api.Commits.editStatus(3, SHA, 'success', { name: 'packit/build', targetUrl: 'https://ci.example.test/1' });
    expect((status as unknown as { status: string }).status).toBe('success');
    const got = h.standin.requests.at(-1)!;
    expect(got.path).toBe(`/api/v4/projects/3/statuses/${SHA}`);
    expect(got.headers['private-token']).toBe(h.realToken);
  });

  it('gets a refusal, not a deletion, when it tries to delete a project', async () => {
    await expect(api.Projects.remove(3)).rejects.toMatchObject({ cause: { response: { status: 403 } } });
    expect(h.standin.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
    expect(h.standin.requests).toHaveLength(0);
  });
});
