// End-to-end forwarding through the proxy to the GitLab stand-in: what is forwarded, with
// which credential, how responses are rewritten, and the audit line each call leaves.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  packit:
    description: Packit CI service
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
      - POST /api/v4/projects/:id/statuses/:sha
      - GET /api/v4/projects/:id/repository/**
      - GET /api/v4/projects/:id/jobs/:job_id/artifacts
  other:
    allow:
      - GET /api/v4/user
`;

describe('forwarding', () => {
  let h: Harness;
  let jwt: string;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'clients.yaml': POLICY } });
    jwt = await h.token('packit');
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  it('forwards an allowed call with the real token and never the client JWT', async () => {
    const res = await fetch(`${h.url}/api/v4/projects/3`, { headers: { 'PRIVATE-TOKEN': jwt } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { path_with_namespace: string }).path_with_namespace).toBe('acme/docs');
    expect(h.standin.requests).toHaveLength(1);
    const got = h.standin.requests[0]!;
    expect(got.url).toBe('/api/v4/projects/3');
    expect(got.headers['private-token']).toBe(h.realToken);
    expect(JSON.stringify(got.rawHeaders)).not.toContain(jwt);
    expect(got.rawHeaders.filter((n, i) => i % 2 === 0 && /authorization|private-token/i.test(n))).toEqual(['private-token']);
  });

  it('accepts the JWT as Bearer, Basic password and private_token/access_token, and strips them', async () => {
    const basic = Buffer.from(`vendor:${jwt}`).toString('base64');
    const calls: [string, RequestInit][] = [
      ['/api/v4/projects/1', { headers: { Authorization: `Bearer ${jwt}` } }],
      ['/api/v4/projects/1', { headers: { Authorization: `Basic ${basic}` } }],
      [`/api/v4/projects/1?private_token=${jwt}`, {}],
      [`/api/v4/projects?access_token=${jwt}&per_page=5`, {}],
    ];
    for (const [path, init] of calls) expect((await fetch(h.url + path, init)).status).toBe(200);
    expect(h.standin.requests.map((r) => r.url)).toEqual([
      '/api/v4/projects/1', '/api/v4/projects/1', '/api/v4/projects/1', '/api/v4/projects?per_page=5',
    ]);
    for (const r of h.standin.requests) {
      expect(r.headers['private-token']).toBe(h.realToken);
      expect(r.headers.authorization).toBeUndefined();
      expect(JSON.stringify(r)).not.toContain(jwt);
    }
  });

  it('refuses what the allowlist does not name with 403 in GitLab JSON, and GitLab never sees it', async () => {
    const denied: [string, string][] = [
      ['DELETE', '/api/v4/projects/3'],
      ['PUT', '/api/v4/projects/3'],
      ['GET', '/api/v4/user'],
      ['GET', '/api/v4/projects/3/hooks'],
      ['GET', '/users/sign_in'],
      ['GET', '/'],
    ];
    for (const [method, path] of denied) {
      const res = await fetch(h.url + path, { method, headers: { 'PRIVATE-TOKEN': jwt } });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(((await res.json()) as { message: string }).message).toMatch(/^403 Forbidden/);
    }
    expect(h.standin.requests).toHaveLength(0);
  });

  it('forwards request bodies byte for byte (JSON, form, multipart)', async () => {
    const json = JSON.stringify({ body: 'LGTM from CI' });
    const r1 = await fetch(`${h.url}/api/v4/projects/1/merge_requests/2/notes`, {
      method: 'POST', headers: { 'PRIVATE-TOKEN': jwt, 'Content-Type': 'application/json' }, body: json,
    });
    expect(r1.status).toBe(201);
    const r2 = await fetch(`${h.url}/api/v4/projects/1/statuses/0123456789abcdef0123456789abcdef01234567`, {
      method: 'POST', headers: { 'PRIVATE-TOKEN': jwt }, body: new URLSearchParams({ state: 'success', name: 'packit' }),
    });
    expect(r2.status).toBe(201);
    const form = new FormData();
    form.append('body', 'multipart note');
    const r3 = await fetch(`${h.url}/api/v4/projects/1/merge_requests/2/notes`, { method: 'POST', headers: { 'PRIVATE-TOKEN': jwt }, body: form });
    expect(r3.status).toBe(201);
    const [a, b, c] = h.standin.requests;
    expect(a!.body.toString()).toBe(json);
    expect(a!.headers['content-length']).toBe(String(Buffer.byteLength(json)));
    expect(b!.body.toString()).toBe('state=success&name=packit');
    expect(c!.body.toString()).toContain('multipart note');
    expect(c!.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
  });

  it('rewrites pagination Link headers to the proxy and keeps the totals', async () => {
    const res = await fetch(`${h.url}/api/v4/projects?per_page=10&order_by=id&sort=asc`, { headers: { 'PRIVATE-TOKEN': jwt } });
    expect(res.status).toBe(200);
    const link = res.headers.get('link')!;
    expect(link).toContain(`<${h.url}/api/v4/projects?`);
    expect(link).not.toContain(h.standin.origin);
    expect(link).not.toContain(jwt);
    expect(res.headers.get('x-total')).toBe('45');
    expect(res.headers.get('x-next-page')).toBe('2');
    // Following the rewritten link works through the proxy.
    const next = /<([^>]+)>; rel="next"/.exec(link)![1]!;
    const page2 = await fetch(next, { headers: { 'PRIVATE-TOKEN': jwt } });
    expect(((await page2.json()) as { id: number }[]).map((p) => p.id)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  });

  it('drops Set-Cookie from GitLab answers', async () => {
    const other = await h.token('other');
    const res = await fetch(`${h.url}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': other } });
    expect(res.status).toBe(200);
    expect(h.standin.requests).toHaveLength(1);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('hands redirects back unfollowed; a redirect into GitLab outside the allowlist loses its Location', async () => {
    const res = await fetch(`${h.url}/api/v4/projects/1/jobs/7/artifacts`, { headers: { 'PRIVATE-TOKEN': jwt }, redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBeNull();
    expect(h.standin.requests).toHaveLength(1);
    const moved = await fetch(`${h.url}/api/v4/projects/acme%2Fold-docs`, { headers: { 'PRIVATE-TOKEN': jwt }, redirect: 'manual' });
    expect(moved.status).toBe(301);
    expect(moved.headers.get('location')).toBe(`${h.url}/api/v4/projects/acme%2Fdocs`);
  });

  it('streams a large response whole', async () => {
    const bytes = 8 * 1024 * 1024;
    const res = await fetch(`${h.url}/api/v4/projects/1/repository/archive?bytes=${bytes}`, { headers: { 'PRIVATE-TOKEN': jwt } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(bytes);
  });

  it('answers OPTIONS itself and serves /healthz and /readyz', async () => {
    const opt = await fetch(`${h.url}/api/v4/projects/1`, { method: 'OPTIONS' });
    expect(opt.status).toBe(204);
    expect(opt.headers.get('allow')).toContain('GET');
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${h.url}/readyz`)).json()).toEqual({ status: 'ready' });
    expect(h.standin.requests.filter((r) => !r.url.endsWith('/api/v4/version'))).toHaveLength(0);
  });
});

describe('audit log', () => {
  it('writes exactly one line per call, allowed or not, with the documented fields and no secret', async () => {
    const h = await startHarness({ policies: { 'a.yaml': POLICY } });
    try {
      const jwt = await h.token('packit', { jti: 'audit-test-jti' });
      await fetch(`${h.url}/api/v4/projects/2?private_token=${jwt}&statistics=true`);
      await fetch(`${h.url}/api/v4/projects/2`, { method: 'DELETE', headers: { 'PRIVATE-TOKEN': jwt } });
      await fetch(`${h.url}/api/v4/projects/2`);
      await fetch(`${h.url}/api/v4/projects/2`, { headers: { 'PRIVATE-TOKEN': h.realToken } });
      await fetch(`${h.url}/healthz`);
      // A last audited call after /healthz: its line is the fifth, so /healthz wrote none.
      await fetch(`${h.url}/api/v4/projects/3`);
      await h.waitForAudit(5);
      expect(h.audit.map((l) => l.path)).toEqual(['/api/v4/projects/2', '/api/v4/projects/2', '/api/v4/projects/2', '/api/v4/projects/2', '/api/v4/projects/3']);
      const [ok, forbidden, anonymous, realToken] = h.audit;
      expect(ok).toMatchObject({
        client: 'packit', jti: 'audit-test-jti', method: 'GET', path: '/api/v4/projects/2', queryKeys: ['private_token', 'statistics'],
        decision: 'allow', reason: null, status: 200, bytesIn: 0, ip: '127.0.0.1',
      });
      expect(ok!.rule).toMatch(/^GET \/api\/v4\/projects\/:id \(.*a\.yaml:7\)$/);
      expect(ok!.bytesOut).toBeGreaterThan(100);
      expect(ok!.upstreamMs).toBeGreaterThanOrEqual(0);
      expect(ok!.durationMs).toBeGreaterThanOrEqual(ok!.upstreamMs!);
      for (const key of ['time', 'reqId', 'userAgent']) expect(ok).toHaveProperty(key);
      expect(forbidden).toMatchObject({ client: 'packit', decision: 'deny', status: 403, upstreamMs: null });
      expect(forbidden!.reason).toMatch(/^method-not-allowed/);
      expect(anonymous).toMatchObject({ client: null, decision: 'deny', reason: 'no-token', status: 401 });
      expect(realToken).toMatchObject({ client: null, decision: 'deny', reason: 'not-a-jwt', status: 401 });
      const text = h.auditText();
      expect(text).not.toContain(jwt);
      expect(text).not.toContain(h.realToken);
      expect(text).not.toContain(h.jwtSecret);
      expect(text.trim().split('\n')).toHaveLength(5);
    } finally {
      await h.close();
    }
  });
});

describe('audit attribution', () => {
  it('names the client of a request refused before authentication, without changing the answer', async () => {
    const h = await startHarness({ policies: { 'a.yaml': POLICY } });
    try {
      const jwt = await h.token('packit');
      const res = await fetch(`${h.url}/api/v4/projects/2?sudo=root`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(res.status).toBe(403);
      const bad = await fetch(`${h.url}/api/v4/projects/2?sudo=root`, { headers: { 'PRIVATE-TOKEN': 'not-a-token' } });
      expect(bad.status).toBe(403);
      await h.waitForAudit(2);
      expect(h.audit[0]).toMatchObject({ client: 'packit', decision: 'deny', reason: 'sudo' });
      expect(h.audit[1]).toMatchObject({ client: null, decision: 'deny', reason: 'sudo' });
      expect(h.standin.requests).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});

describe('GitLab errors', () => {
  // (504 when GitLab is too slow: the next test.) No short response timeout here: the call that
  // must succeed first may not race one on a loaded machine.
  it('answers 502 in GitLab JSON when GitLab is unreachable', async () => {
    const h = await startHarness({ policies: { 'a.yaml': POLICY } });
    try {
      const jwt = await h.token('packit');
      const slow = await fetch(`${h.url}/api/v4/projects/1/repository/archive?bytes=1024`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(slow.status).toBe(200);
      await h.standin.close();
      const down = await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(down.status).toBe(502);
      expect(await down.json()).toEqual({ message: '502 Bad Gateway' });
    } finally {
      await h.proxy.close();
    }
  });

  it('answers 504 when GitLab accepts the connection but does not answer in time', async () => {
    const { createServer } = await import('node:http');
    const hang = createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const port = (hang.address() as import('node:net').AddressInfo).port;
    const h = await startHarness({ policies: { 'a.yaml': POLICY }, env: { GITLAB_URL: `http://127.0.0.1:${port}`, UPSTREAM_RESPONSE_TIMEOUT_MS: '200' } });
    try {
      const res = await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await h.token('packit') } });
      expect(res.status).toBe(504);
      expect(await res.json()).toEqual({ message: '504 Gateway Timeout' });
      await h.waitForAudit(1);
      expect(h.audit[0]).toMatchObject({ decision: 'allow', status: 504, reason: 'upstream-timeout' });
    } finally {
      await h.close();
      hang.closeAllConnections();
      hang.close();
    }
  });
});

describe('relative URL root and PUBLIC_URL', () => {
  it('forwards under GitLab\'s relative root and rewrites links to the public URL', async () => {
    const h = await startHarness({ policies: { 'a.yaml': POLICY }, relativeRoot: '/gitlab', env: { PUBLIC_URL: 'https://proxy.example.test/scoped' } });
    try {
      const jwt = await h.token('packit');
      const res = await fetch(`${h.url}/scoped/api/v4/projects?per_page=2`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(res.status).toBe(200);
      expect(h.standin.requests[0]!.url).toBe('/gitlab/api/v4/projects?per_page=2');
      expect(res.headers.get('link')).toContain('<https://proxy.example.test/scoped/api/v4/projects?');
      const outside = await fetch(`${h.url}/api/v4/projects`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(outside.status).toBe(403);
      expect(h.standin.requests).toHaveLength(1);
    } finally {
      await h.close();
    }
  });
});
