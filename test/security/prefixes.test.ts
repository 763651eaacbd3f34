// Prefixes and internal routes (reference items 11, 13): only /api/v4 is served, under GitLab's
// relative URL root, which the proxy adds itself; /api/v4/internal (shared-secret routes),
// the retired /api/v3 and GraphQL (/api/graphql, /api/glql) are refused for now, whatever
// the rules say.
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';
import { bearer, expectRefused, expectStillServes, forwarded, json, send } from './support.ts';

const POLICY = `
clients:
  broad:
    allow:
      - GET,POST /api/v4/**
`;

let h: Harness;
let jwt: string;
beforeAll(async () => {
  h = await startHarness({ policies: { 'broad.yaml': POLICY }, relativeRoot: '/gitlab' });
  jwt = await h.token('broad');
});
afterAll(() => h.close());
beforeEach(() => h.standin.reset());
afterEach(() => expectStillServes(h, jwt));

const get = (path: string) => send(h.url, { path, headers: [bearer(jwt)] });

it('serves /api/v4 under GitLab\'s relative root, which the client never names', async () => {
  expect(h.url).not.toMatch(/\/gitlab$/);
  const rec = await forwarded(h, await get('/api/v4/projects/1?statistics=true'));
  expect(rec.url).toBe('/gitlab/api/v4/projects/1?statistics=true');
});

it.each([
  '/gitlab/api/v4/projects/1',
  '/api/v3/projects',
  '/api/v3',
  '/api',
  '/api/graphql',
  '/api/glql',
  '/api/v4.json/projects',
  '/API/v4/projects/1',
  '/-/object-storage/artifacts/1.zip',
  '/acme/docs.git/info/refs?service=git-upload-pack',
  '/users/sign_in',
  '/',
])('refuses %s', async (path) => {
  await expectRefused(h, await get(path), /^not-api/, 403);
});

it('refuses GraphQL mutations sent by POST', async () => {
  const { headers, body } = json({ query: 'mutation { x }' });
  await expectRefused(h, await send(h.url, { method: 'POST', path: '/api/graphql', headers: [bearer(jwt), ...headers], body }), /^not-api/, 403);
});

it.each(['/api/v4/internal', '/api/v4/internal/check', '/api/v4/internal/allowed', '/api/v4/internal/kubernetes/agent_info', '/api/v4/internal.json', '/api/v4/internal/check.json'])(
  'refuses %s even with a rule for /api/v4/**', async (path) => {
    await expectRefused(h, await get(path), /internal-api/, 403);
  });

it('refuses an encoded spelling of internal', async () => {
  await expectRefused(h, await get('/api/v4/%69nternal/check'), 'encoded-unreserved', 400);
});
