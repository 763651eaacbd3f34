// Identifier aliases (reference item 9): GitLab reads a project id as a number when it matches
// /^-?\d+$/ (line anchors: "5\nx" counts), as a full path otherwise, case-insensitively and
// following renames. A rule naming one project must not be reachable through another
// spelling, and an id placeholder accepts only a plain number or an encoded full path.
import { describe, expect, it } from 'vitest';
import { type Harness } from '../support/harness.ts';
import { bearer, expectRefused, forwarded, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/merge_requests/:iid
      - GET /api/v4/projects/3/merge_requests
      - GET /api/v4/groups/:group_id/projects
`;

let h: Harness;
let jwt: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
  },
);

const get = (path: string) => send(h.url, { path, headers: [bearer(jwt)] });

describe('an :id placeholder', () => {
  it.each([
    ['/api/v4/projects/0001', /^bad-identifier/],
    ['/api/v4/projects/0', /^bad-identifier/],
    ['/api/v4/projects/-1', /^bad-identifier/],
    ['/api/v4/projects/1+', /^bad-identifier/],
    ['/api/v4/projects/+1', /^bad-identifier/],
    ['/api/v4/projects/1%2B', /^bad-identifier/],
    ['/api/v4/projects/1%20', /^bad-identifier/],
    ['/api/v4/projects/1.0', /^bad-identifier/],
    ['/api/v4/projects/acme', /^bad-identifier/],
    ['/api/v4/projects/acme%2F%20app', /^bad-identifier/],
    ['/api/v4/groups/007/projects', /^bad-identifier/],
  ])('refuses %s', async (path, reason) => {
    await expectRefused(h, await get(path), reason, 403);
  });

  it.each([
    ['/api/v4/projects/1%0A', 'control-character'],
    ['/api/v4/projects/1%0Ax', 'control-character'],
    ['/api/v4/projects/x%0A1', 'control-character'],
    ['/api/v4/projects/acme%2F', 'empty-segment'],
    ['/api/v4/projects/1%25', 'double-encoding'],
    ['/api/v4/projects/acme%252Fdocs', 'double-encoding'],
  ])('refuses %s before matching (%s)', async (path, reason) => {
    await expectRefused(h, await get(path), reason, 400);
  });

  it.each(['/api/v4/projects/1', '/api/v4/projects/45', '/api/v4/projects/acme%2Fdocs', '/api/v4/projects/ACME%2fPlatform%2FAPI', '/api/v4/groups/acme%2Fplatform/projects'])(
    'forwards %s as sent', async (path) => {
      const rec = await forwarded(h, await get(path));
      expect(rec.url).toBe(path);
    });
});

describe('an :iid placeholder', () => {
  it.each(['01', '1+', '-1', '1e0', '0x1', '1%2E0'])('refuses merge request %s', async (iid) => {
    await expectRefused(h, await get(`/api/v4/projects/1/merge_requests/${iid}`), /^bad-identifier/, 403);
  });
});

describe('a rule naming one project', () => {
  it('forwards that project by its id', async () => {
    const rec = await forwarded(h, await get('/api/v4/projects/3/merge_requests'));
    expect(rec.url).toBe('/api/v4/projects/3/merge_requests');
  });

  it.each([
    '/api/v4/projects/03/merge_requests',
    '/api/v4/projects/3+/merge_requests',
    '/api/v4/projects/acme%2Fdocs/merge_requests',
    '/api/v4/projects/ACME%2FDOCS/merge_requests',
    '/api/v4/projects/acme%2Fold-docs/merge_requests',
    '/api/v4/projects/4/merge_requests',
  ])('does not reach it, or any other, as %s', async (path) => {
    await expectRefused(h, await get(path), /^no-rule/, 403);
  });
});
