// Host, forwarding and hop-by-hop headers (reference items 15, 16): Rack builds URLs from
// X-Forwarded-Host and the scheme from X-Forwarded-Proto, Workhorse takes the client IP from
// X-Forwarded-For, Rails honours X-Sendfile-Type and X-Accel-Mapping, Go's reverse proxy
// deletes whatever the Connection header names (the injected PRIVATE-TOKEN, if it reached
// Workhorse). Outbound headers come from an allowlist: none of these reach GitLab.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Harness } from '../support/harness.ts';
import { bearer, expectOnlyRealToken, expectRefused, forwarded, receivedNames, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
`;

let h: Harness;
let jwt: string;
let standinHost: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
    standinHost = new URL(h.standin.origin).host;
  },
);

const DROPPED: [string, string][] = [
  ['X-Forwarded-For', '10.0.0.1'],
  ['X-Forwarded-Host', 'evil.example'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Port', '443'],
  ['X-Forwarded-Prefix', '/admin'],
  ['X-Forwarded-Ssl', 'on'],
  ['X-Forwarded-Scheme', 'https'],
  ['X-Forwarded-Server', 'evil.example'],
  ['Forwarded', 'for=10.0.0.1;host=evil.example;proto=https'],
  ['X-Real-IP', '10.0.0.1'],
  ['X-Client-IP', '10.0.0.1'],
  ['True-Client-IP', '10.0.0.1'],
  ['X-Sendfile-Type', 'X-Accel-Redirect'],
  ['X-Accel-Mapping', '/var/opt/gitlab/=/secret/'],
  ['X-Accel-Redirect', '/etc/passwd'],
  ['Gitlab-Workhorse', '1'],
  ['Gitlab-Workhorse-Api-Request', 'x'],
  ['Gitlab-Workhorse-Multipart-Fields', 'x'],
  ['Gitlab-Workhorse-Proxy-Start', '1'],
  ['Gitlab-Bypass-Rate-Limiting', '1'],
  ['Gitlab-Shell-Api-Request', 'x'],
  ['X-CSRF-Token', 'x'],
  ['X-Original-URL', '/api/v4/user'],
  ['X-Rewrite-URL', '/api/v4/user'],
  ['X-Request-Id', 'client-chosen-id'],
  ['TE', 'trailers'],
  ['Keep-Alive', 'timeout=5'],
  ['Proxy-Connection', 'keep-alive'],
  ['Referer', 'https://evil.example/'],
  ['Origin', 'https://evil.example'],
];

it('forwards none of the routing, forwarding, Workhorse or CSRF headers, and sets Host itself', async () => {
  const sent = await send(h.url, {
    path: '/api/v4/projects/1',
    headers: [bearer(jwt), ['Host', 'evil.example'], ['Accept', 'application/json'], ['User-Agent', 'vendor/1.0'], ...DROPPED],
  });
  const rec = await forwarded(h, sent);
  expectOnlyRealToken(h, rec);
  expect(rec.headers.host).toBe(standinHost);
  const names = receivedNames(rec);
  for (const [name] of DROPPED) {
    if (name === 'X-Request-Id') continue;
    expect(names, name).not.toContain(name.toLowerCase());
  }
  // The proxy sets its own request id, never the client's.
  expect(rec.headers['x-request-id']).toBe(sent.reqId);
  expect(rec.headers['x-request-id']).not.toBe('client-chosen-id');
  // Allowlisted headers pass.
  expect(rec.headers.accept).toBe('application/json');
  expect(rec.headers['user-agent']).toBe('vendor/1.0');
});

describe('Connection', () => {
  it('never names the injected credential towards GitLab', async () => {
    const rec = await forwarded(h, await send(h.url, {
      path: '/api/v4/projects/1', headers: [['PRIVATE-TOKEN', jwt], ['Connection', 'keep-alive, PRIVATE-TOKEN, Authorization, X-Request-Id']],
    }));
    expectOnlyRealToken(h, rec);
    expect(String(rec.headers.connection ?? '')).not.toMatch(/private-token|authorization|x-request-id/i);
    expect(rec.headers['x-request-id']).toBeDefined();
  });

  it('makes a header it names hop-by-hop, so it is not forwarded', async () => {
    const rec = await forwarded(h, await send(h.url, {
      path: '/api/v4/projects/1', headers: [bearer(jwt), ['Accept', 'application/json'], ['If-None-Match', '"x"'], ['Connection', 'accept, if-none-match']],
    }));
    expect(rec.headers.accept).toBeUndefined();
    expect(rec.headers['if-none-match']).toBeUndefined();
  });

  it.each(['content-type', 'Content-Length', 'transfer-encoding', 'keep-alive, Content-Type'])(
    'may not name %s: an untyped body would be read by Rack as a form', async (named) => {
      // Without its Content-Type this JSON body is the form "_method=DELETE&sudo=root" to Rack.
      const body = '{"body":"x","a":"&_method=DELETE&sudo=root&b="}';
      const sent = await send(h.url, {
        method: 'POST', path: '/api/v4/projects/1/merge_requests/1/notes',
        headers: [bearer(jwt), ['Content-Type', 'application/json'], ['Connection', named]], body,
      });
      await expectRefused(h, sent, 'hop-by-hop-body-header', 400);
    });

  it('is refused when sent twice', async () => {
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), ['Connection', 'keep-alive'], ['Connection', 'private-token']] }), 'duplicate-header', 400);
  });
});

describe('Host', () => {
  it.each(['evil.example/api', 'evil.example:80:80', 'evil example', 'user@evil.example'])('refuses the Host %s', async (value) => {
    const before = h.audit.length;
    const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), ['Host', value]] });
    expect(sent.status).toBe(400);
    await h.waitForAudit(before + 1);
    expect(h.audit[before]).toMatchObject({ decision: 'deny', status: 400 });
    expect(h.standin.requests).toEqual([]);
  });

  it('refuses two Host headers', async () => {
    const host = new URL(h.url).host;
    const before = h.audit.length;
    const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), ['Host', host], ['Host', 'evil.example']] });
    expect(sent.status).toBe(400);
    await h.waitForAudit(before + 1);
    expect(h.audit[before]).toMatchObject({ decision: 'deny', status: 400 });
    expect(h.standin.requests).toEqual([]);
  });
});

describe('header names with underscores', () => {
  it.each(['X_Forwarded_For', 'X_Forwarded_Host', 'Gitlab_Workhorse', 'X_CSRF_Token', 'Remote_Addr'])('refuses %s', async (name) => {
    const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), [name, randomBytes(4).toString('hex')]] });
    await expectRefused(h, sent, 'underscore-header', 400);
  });
});
