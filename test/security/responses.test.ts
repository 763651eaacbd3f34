// What comes back (reference "Response rewrites"): Link echoes every request parameter and
// names GitLab's origin, Location leads into GitLab (renamed projects, object storage), GitLab
// sets a session cookie for the proxy's user, and an LFS batch answer carries an
// Authorization value for it. None of that may hand a client a credential or a way around
// its allowlist.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';
import { GUARD_MS } from '../support/wait.ts';
import { auditLine, bearer, expectStillServes, forwarded, send } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/merge_requests
      - GET /api/v4/projects/:id/jobs/:job_id/artifacts
      - GET /api/v4/user
  pinned:
    allow:
      - GET /api/v4/projects/1
      - GET /api/v4/projects/acme%2Fold-docs/merge_requests
`;

interface LinkEntry { url: string; rel: string }
const links = (header: string | string[] | undefined): LinkEntry[] =>
  [...String(header ?? '').matchAll(/<([^>]*)>; rel="(\w+)"/g)].map((m) => ({ url: m[1]!, rel: m[2]! }));

describe('through a GitLab under /gitlab', () => {
  let h: Harness;
  let vendor: string;
  let pinned: string;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'clients.yaml': POLICY }, relativeRoot: '/gitlab' });
    vendor = await h.token('vendor');
    pinned = await h.token('pinned');
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());
  afterEach(() => expectStillServes(h, vendor));

  describe('Link', () => {
    it.each([
      ['?private_token=', (jwt: string) => ({ path: `/api/v4/projects?per_page=10&private_token=${jwt}&order_by=id`, headers: [] as [string, string][] })],
      ['?access_token=', (jwt: string) => ({ path: `/api/v4/projects?access_token=${jwt}&per_page=10&order_by=id`, headers: [] as [string, string][] })],
      ['Bearer', (jwt: string) => ({ path: '/api/v4/projects?per_page=10&order_by=id', headers: [bearer(jwt)] })],
    ])('points at the proxy and never carries a credential (JWT by %s)', async (_how, make) => {
      const sent = await send(h.url, make(vendor));
      const rec = await forwarded(h, sent);
      expect(rec.url).toBe('/gitlab/api/v4/projects?per_page=10&order_by=id');
      const entries = links(sent.headers.link);
      expect(entries.map((e) => e.rel)).toEqual(['next', 'first', 'last']);
      for (const { url } of entries) {
        expect(url.startsWith(`${h.url}/api/v4/projects?`), url).toBe(true);
        expect(url).not.toContain(h.standin.origin);
        expect(url).not.toContain('/gitlab/');
        expect(url).not.toMatch(/private_token|access_token/);
      }
      const all = JSON.stringify(sent.headers);
      expect(all).not.toContain(vendor);
      expect(all).not.toContain(h.realToken);
      // Following the link works and stays inside the allowlist.
      h.standin.reset();
      const next = entries[0]!.url.slice(h.url.length);
      const page2 = await forwarded(h, await send(h.url, { path: next, headers: [bearer(vendor)] }));
      expect(page2.url).toBe(`/gitlab${next}`);
    });
  });

  describe('Location', () => {
    it('is rewritten to the proxy when it leads somewhere the client may go', async () => {
      const sent = await send(h.url, { path: '/api/v4/projects/acme%2Fold-docs/merge_requests?state=opened', headers: [bearer(vendor)] });
      expect(sent.status).toBe(301);
      expect(sent.headers.location).toBe(`${h.url}/api/v4/projects/acme%2Fdocs/merge_requests?state=opened`);
      await forwarded(h, sent);
    });

    it('is removed when it leads outside the client\'s allowlist', async () => {
      const sent = await send(h.url, { path: '/api/v4/projects/acme%2Fold-docs/merge_requests?state=opened', headers: [bearer(pinned)] });
      expect(sent.status).toBe(301);
      expect(sent.headers.location).toBeUndefined();
      expect(JSON.stringify(sent.headers)).not.toContain('acme%2Fdocs');
      await forwarded(h, sent);
      expect(await auditLine(h, sent.reqId)).toMatchObject({ client: 'pinned', decision: 'allow', reason: 'redirect-outside-allowlist' });
    });

    it('is removed when it leads into GitLab outside /api/v4', async () => {
      const sent = await send(h.url, { path: '/api/v4/projects/1/jobs/77/artifacts', headers: [bearer(vendor)] });
      expect(sent.status).toBe(302);
      expect(sent.headers.location).toBeUndefined();
      expect(JSON.stringify(sent.headers)).not.toContain(h.standin.origin);
      await forwarded(h, sent);
      expect(await auditLine(h, sent.reqId)).toMatchObject({ reason: 'redirect-outside-allowlist' });
    });
  });

  describe('Set-Cookie', () => {
    it('is dropped', async () => {
      const sent = await send(h.url, { path: '/api/v4/user', headers: [bearer(vendor)] });
      expect(sent.status).toBe(200);
      await forwarded(h, sent);
      expect(sent.headers['set-cookie']).toBeUndefined();
      // GitLab's other headers pass.
      expect(sent.headers['x-content-type-options']).toBe('nosniff');
    });
  });
});

/** A GitLab stand-in for answers the shared one does not give: LFS batches, odd redirects. */
async function startOddUpstream(): Promise<{ url: string; server: Server; seen: string[]; release: () => void }> {
  const seen: string[] = [];
  let held: ServerResponse | undefined;
  const release = (): void => {
    held?.end('second');
    held = undefined;
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(req.url ?? '');
    res.setHeader('X-Request-Id', String(req.headers['x-request-id'] ?? ''));
    const token = String(req.headers['private-token'] ?? '');
    const auth = `Basic ${Buffer.from(`proxy-bot:${token}`).toString('base64')}`;
    const batch = JSON.stringify({
      transfer: 'basic',
      objects: [{
        oid: 'a'.repeat(64), size: 3, authenticated: true,
        actions: {
          download: { href: 'https://lfs.example/objects/a', header: { Authorization: auth, 'Transfer-Encoding': 'chunked' }, expires_in: 3600 },
          upload: { href: 'https://lfs.example/objects/a', header: { authorization: auth, AUTHORIZATION: auth, 'X-Keep': 'yes' } },
        },
      }],
    });
    const lfs = 'application/vnd.git-lfs+json; charset=utf-8';
    switch (req.url) {
      case '/api/v4/projects/1/lfs':
        res.writeHead(200, { 'Content-Type': lfs });
        return void res.end(batch);
      case '/api/v4/projects/1/lfs-gzip':
        res.writeHead(200, { 'Content-Type': lfs, 'Content-Encoding': 'gzip' });
        return void res.end(gzipSync(batch));
      case '/api/v4/projects/1/lfs-huge':
        res.writeHead(200, { 'Content-Type': lfs });
        return void res.end(`{"objects":[],"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`);
      case '/api/v4/projects/1/lfs-broken':
        res.writeHead(200, { 'Content-Type': lfs });
        return void res.end(`{"objects":[{"header":{"Authorization":"${auth}"`);
      case '/api/v4/projects/1/to-project':
        res.writeHead(302, { Location: '/api/v4/projects/2', 'Content-Length': '0' });
        return void res.end();
      case '/api/v4/projects/1/to-user':
        res.writeHead(302, { Location: '/api/v4/user', 'Content-Length': '0' });
        return void res.end();
      case '/api/v4/projects/1/slow':
        // Half an answer, the rest only when the test has seen the first half.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('first');
        held = res;
        return;
      case '/api/v4/projects/1/to-storage':
        res.writeHead(302, { Location: 'https://objects.example/bucket/x?X-Amz-Signature=abc', 'Content-Length': '0' });
        return void res.end();
      default:
        res.writeHead(200, { 'Content-Type': 'application/json', 'Connection': 'X-Hop', 'X-Hop': 'drop-me', 'Keep-Alive': 'timeout=5' });
        return void res.end('{"ok":true}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen, release };
}

describe('answers the shared stand-in does not give', () => {
  let h: Harness;
  let jwt: string;
  let upstream: Awaited<ReturnType<typeof startOddUpstream>>;
  beforeAll(async () => {
    upstream = await startOddUpstream();
    h = await startHarness({
      policies: { 'v.yaml': 'clients:\n  vendor:\n    allow:\n      - GET /api/v4/projects/:id/**\n' },
      env: { GITLAB_URL: upstream.url },
    });
    jwt = await h.token('vendor');
  });
  afterAll(async () => {
    await h.close();
    upstream.server.closeAllConnections();
    await new Promise((r) => upstream.server.close(r));
  });
  beforeEach(() => {
    upstream.seen.length = 0;
  });
  afterEach(async () => {
    const ok = await send(h.url, { path: '/api/v4/projects/1/plain', headers: [bearer(jwt)] });
    expect(ok.status).toBe(200);
    expect(upstream.seen.at(-1)).toBe('/api/v4/projects/1/plain');
  });

  const get = (path: string) => send(h.url, { path, headers: [bearer(jwt)] });

  it('strips every Authorization from an LFS batch answer and keeps the rest', async () => {
    const sent = await get('/api/v4/projects/1/lfs');
    expect(sent.status).toBe(200);
    expect(upstream.seen).toEqual(['/api/v4/projects/1/lfs']);
    expect(sent.body).not.toContain(h.realToken);
    expect(sent.body).not.toContain(Buffer.from(`proxy-bot:${h.realToken}`).toString('base64'));
    expect(sent.body).not.toMatch(/authorization/i);
    const doc = JSON.parse(sent.body) as { objects: { actions: Record<string, { href: string; header: Record<string, string> }> }[] };
    expect(doc.objects[0]!.actions.upload!.header).toEqual({ 'X-Keep': 'yes' });
    expect(doc.objects[0]!.actions.download!.href).toBe('https://lfs.example/objects/a');
    expect(sent.headers['content-length']).toBe(String(Buffer.byteLength(sent.body)));
  });

  it.each(['lfs-gzip', 'lfs-huge', 'lfs-broken'])('refuses an LFS answer it cannot clean (%s) with 502', async (name) => {
    const sent = await get(`/api/v4/projects/1/${name}`);
    expect(sent.status).toBe(502);
    expect(sent.body).not.toContain(Buffer.from(`proxy-bot:${h.realToken}`).toString('base64'));
    expect(await auditLine(h, sent.reqId)).toMatchObject({ reason: 'upstream-response-unreadable' });
  });

  it('rewrites a relative Location into the allowlist and drops one outside it', async () => {
    const inside = await get('/api/v4/projects/1/to-project');
    expect(inside.status).toBe(302);
    expect(inside.headers.location).toBe(`${h.url}/api/v4/projects/2`);
    const outside = await get('/api/v4/projects/1/to-user');
    expect(outside.status).toBe(302);
    expect(outside.headers.location).toBeUndefined();
    expect(await auditLine(h, outside.reqId)).toMatchObject({ reason: 'redirect-outside-allowlist' });
  });

  it('leaves a Location to another origin (signed object storage) as it is', async () => {
    const sent = await get('/api/v4/projects/1/to-storage');
    expect(sent.headers.location).toBe('https://objects.example/bucket/x?X-Amz-Signature=abc');
  });

  it('drops hop-by-hop response headers, including those GitLab names in Connection', async () => {
    const sent = await get('/api/v4/projects/1/plain');
    expect(sent.status).toBe(200);
    expect(sent.body).toBe('{"ok":true}');
    expect(sent.headers['x-hop']).toBeUndefined();
    expect(sent.headers['keep-alive']).toBeUndefined();
  });

  it('streams other answers instead of reading them whole', async () => {
    const { hostname, port } = new URL(h.url);
    const chunks: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        upstream.release();
        req.destroy();
        reject(new Error('the first half never arrived: the answer was buffered'));
      }, GUARD_MS);
      const req = request({ hostname, port: Number(port), path: '/api/v4/projects/1/slow', headers: { Authorization: `Bearer ${jwt}` } }, (res) => {
        res.on('data', (c: Buffer) => {
          chunks.push(c.toString());
          if (chunks.length === 1) {
            clearTimeout(timer);
            upstream.release();
          }
        });
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    expect(chunks[0]).toBe('first');
    expect(chunks.join('')).toBe('firstsecond');
  });
});
