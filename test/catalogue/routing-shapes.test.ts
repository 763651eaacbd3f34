// Request shapes GitLab routes that the proxy used to refuse, decided as GitLab routes them:
// a top-level group by bare path, encoded unreserved characters inside an encoded full path,
// ".json" on ids and sub-resources, and the one route whose literal path ends in ".json".
// And the shapes still refused because GitLab would read them differently.
import { describe, expect, it } from 'vitest';
import { auditLine, bearer, expectRefused, forwarded, send, useAttackHarness } from '../security/support.ts';
import type { Harness } from '../support/harness.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/groups/:id/projects
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/merge_requests/:iid
      - GET /api/v4/projects/:id/merge_requests/:iid/notes
      - GET /api/v4/projects/:id/packages/cargo/config.json
  scoped:
    groups: [other]
    allow:
      - GET /api/v4/groups/:id/projects
`;

let h: Harness;
let jwt: string;
useAttackHarness(POLICY, (harness, token) => {
  h = harness;
  jwt = token;
});

const get = (path: string, token = jwt) => send(h.url, { path, headers: [bearer(token)] });

describe('decided as GitLab routes them', () => {
  it.each([
    ['a top-level group by bare path', '/api/v4/groups/acme/projects'],
    ['%2E inside an encoded full path', '/api/v4/projects/acme%2Fmy%2Eapp'],
    ['%2D and %5F inside an encoded full path', '/api/v4/projects/acme%2Fmy%2Dapp%5Fx'],
    ['.json on a numeric id', '/api/v4/projects/5.json'],
    ['.json on a merge request iid', '/api/v4/projects/5/merge_requests/3.json'],
    ['.json on a sub-resource', '/api/v4/projects/5/merge_requests/3/notes.json'],
    ['the cargo config.json route, under its own rule', '/api/v4/projects/5/packages/cargo/config.json'],
  ])('forwards %s', async (_why, path) => {
    const rec = await forwarded(h, await get(path));
    expect(rec.url).toBe(path);
  });

  it('names the GitLab route in the audit line', async () => {
    const sent = await get('/api/v4/projects/5/merge_requests/3/notes.json');
    await forwarded(h, sent);
    expect(h.audit.find((l) => l.reqId === sent.reqId)?.route).toBe('GET /api/v4/projects/:id/merge_requests/:noteable_id/notes (Notes)');
  });
});

describe('still refused', () => {
  it.each([
    ['a numeric group id with leading zeros', '/api/v4/groups/0005/projects', /^bad-identifier/],
    ['a project by bare path (GitLab needs its namespace)', '/api/v4/projects/acme', /^bad-identifier/],
    ['an encoded path starting with a dot', '/api/v4/projects/%2Eacme%2Fx', /^bad-identifier/],
    ['an encoded letter in a route word', '/api/v4/projects/5/merge_requests/3/%6Eotes', /^encoded-unreserved/],
    ['an encoded letter in a bare group path', '/api/v4/groups/%61cme/projects', /^encoded-unreserved/],
    ['cargo config without its .json', '/api/v4/projects/5/packages/cargo/config', /^no-rule/],
  ])('%s', async (_why, path, reason) => {
    await expectRefused(h, await get(path), reason);
  });

  it('keeps a bare group path inside the client\'s groups: scope', async () => {
    const scoped = await h.token('scoped');
    const refused = await get('/api/v4/groups/acme/projects', scoped);
    expect(refused.status).toBe(403);
    // The proxy looks the group up with its own token; the call itself never reaches GitLab.
    expect(h.standin.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /api/v4/groups/acme']);
    expect(await auditLine(h, refused.reqId)).toMatchObject({ reason: 'scope', detail: expect.stringMatching(/^group acme not in groups/) as unknown });
    h.standin.reset();
    const allowed = await get('/api/v4/groups/other/projects', scoped);
    expect(allowed.status).toBe(200);
    expect(h.standin.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /api/v4/groups/other', 'GET /api/v4/groups/other/projects']);
  });
});
