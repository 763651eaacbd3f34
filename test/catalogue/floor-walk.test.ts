// The hard floor, end to end: a client allowed `* /api/v4/**` calls every route of GitLab's
// catalogue through a running proxy, on one keep-alive connection. The GitLab stand-in must
// receive no request that could reach a credential route, nor an admin route (the client has
// no `admin: true`), and must receive every other route: the floor refuses no more than it says.
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getCatalogue, CLASS_BITS, type Route } from '../../src/catalogue/catalogue.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let jwt: string;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  h = await startHarness({ policies: { 'broad.yaml': 'clients:\n  broad:\n    allow:\n      - "* /api/v4/**"\n' } });
  jwt = await h.token('broad');
});
afterAll(async () => {
  agent.destroy();
  await h.close();
});

/** A concrete request path for a route template: every parameter "1", a splat "a/b". */
function concrete(route: Route): string {
  return '/' + route.segments.map((s) => (s.kind === 'literal' ? s.value : s.kind === 'param' ? '1' : s.kind === 'splat' ? 'a/b' : `${s.prefix}x${s.suffix}`)).join('/');
}

function call(method: string, path: string): Promise<{ status: number; reqId: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: new URL(h.url).port, method, path, agent, headers: { authorization: `Bearer ${jwt}`, 'content-length': '0' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reqId: res.headers['x-request-id'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

it('forwards no credential or admin route and every other route of the catalogue', async () => {
  const api = getCatalogue().routes.filter((r) => r.template.startsWith('/api/v4/'));
  expect(api.length).toBeGreaterThan(1800);
  const refused: string[] = [];
  const sent: { route: Route; path: string; floor: boolean }[] = [];
  for (const route of api) {
    const path = concrete(route);
    const mask = getCatalogue().classesOf(route.method, path.slice(1).split('/'));
    sent.push({ route, path, floor: (mask & (CLASS_BITS.credential | CLASS_BITS.admin)) !== 0 });
  }
  for (const s of sent) {
    const res = await call(s.route.method, s.path);
    if (res.status === 403) refused.push(`${s.route.method} ${s.path}`);
  }
  await h.waitForAudit(api.length, 10_000);

  // Nothing the stand-in received can reach a credential or admin route.
  const received = h.standin.requests.map((r) => `${r.method} ${r.url}`);
  const leaked = h.standin.requests.filter((r) => getCatalogue().classesOf(r.method, r.url.split('?')[0]!.slice(1).split('/')) & (CLASS_BITS.credential | CLASS_BITS.admin));
  expect(leaked.map((r) => `${r.method} ${r.url}`)).toEqual([]);

  // Each floor route was refused with its reason; every other route was forwarded.
  const floorRoutes = sent.filter((s) => s.floor);
  expect(floorRoutes.length).toBeGreaterThan(300);
  expect(new Set(refused)).toEqual(new Set(floorRoutes.map((s) => `${s.route.method} ${s.path}`)));
  const reasons = new Map(h.audit.map((l) => [`${l.method} ${l.path}`, l.reason]));
  for (const s of floorRoutes) {
    expect(reasons.get(`${s.route.method} ${s.path}`), `${s.route.method} ${s.path}`).toMatch(/^(credential-route|admin-route|internal-api|token-self)$/);
  }
  expect(received.sort()).toEqual(sent.filter((s) => !s.floor).map((s) => `${s.route.method} ${s.path}`).sort());
  // The audit line names the GitLab route.
  const rotate = h.audit.find((l) => l.path === '/api/v4/projects/1/access_tokens/self/rotate');
  expect(rotate).toMatchObject({ decision: 'deny', route: 'POST /api/v4/projects/:id/access_tokens/self/rotate (Access tokens)' });
  expect(rotate!.reason).toBe('credential-route');
  expect(rotate!.detail).toMatch(/^POST \/api\/v4\/projects\/:id\/access_tokens\/self\/rotate creates or reveals a credential/);
});
