// HEAD, OPTIONS and method spelling (reference item 5): Grape adds HEAD for every GET route and
// OPTIONS for every route; Workhorse accepts only exact upper-case names. The proxy admits
// HEAD only where GET is allowed, answers OPTIONS itself, and refuses every other method.
import { describe, expect, it } from 'vitest';
import { rawRequest, statuses, type Harness } from '../support/harness.ts';
import { auditLine, bearer, expectRefused, forbidForRestOfTest, forbidForwarding, forwarded, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
`;
const NOTES = '/api/v4/projects/1/merge_requests/1/notes';

let h: Harness;
let jwt: string;
let host: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
    host = new URL(h.url).host;
  },
);

describe('HEAD', () => {
  it('is forwarded as HEAD where GET is allowed', async () => {
    const sent = await send(h.url, { method: 'HEAD', path: '/api/v4/projects/1', headers: [bearer(jwt)] });
    expect(sent.status).toBe(200);
    const rec = await forwarded(h, sent);
    expect(rec.method).toBe('HEAD');
  });

  it('is refused where only POST is allowed', async () => {
    const sent = await send(h.url, { method: 'HEAD', path: NOTES, headers: [bearer(jwt)] });
    expect(sent.status).toBe(403);
    forbidForwarding(h, sent.reqId);
    expect(h.standin.requests).toEqual([]);
    const line = await auditLine(h, sent.reqId);
    expect(line).toMatchObject({ decision: 'deny', reason: expect.stringMatching(/^method-not-allowed/) as unknown });
  });

  it('and GET are refused where only POST is allowed, POST where only GET is', async () => {
    await expectRefused(h, await send(h.url, { path: NOTES, headers: [bearer(jwt)] }), /^method-not-allowed/, 403);
    await expectRefused(h, await send(h.url, { method: 'DELETE', path: '/api/v4/projects/1', headers: [bearer(jwt)] }), /^method-not-allowed/, 403);
    await expectRefused(h, await send(h.url, { method: 'PUT', path: '/api/v4/projects/1', headers: [bearer(jwt)] }), /^method-not-allowed/, 403);
  });
});

describe('OPTIONS', () => {
  it('is answered by the proxy, with or without a token, and never reaches GitLab', async () => {
    forbidForRestOfTest(h, 'OPTIONS is answered by the proxy');
    for (const headers of [[bearer(jwt)], []] as [string, string][][]) {
      const before = h.audit.length;
      const sent = await send(h.url, { method: 'OPTIONS', path: '/api/v4/projects/1', headers });
      expect(sent.status).toBe(204);
      expect(sent.headers.allow).toBe('GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      await h.waitForAudit(before + 1);
      expect(h.audit[before]).toMatchObject({ method: 'OPTIONS', decision: 'local', reason: 'options' });
    }
    expect(h.standin.requests).toEqual([]);
  });

  it('is still canonicalized first: a bad path is refused', async () => {
    await expectRefused(h, await send(h.url, { method: 'OPTIONS', path: '/api/v4/projects/%2e%2e', headers: [bearer(jwt)] }), 'dot-segment', 400);
  });
});

describe('other methods', () => {
  it.each(['TRACE', 'PROPFIND', 'PURGE', 'MKCOL', 'LINK'])('refuses %s with 405', async (method) => {
    const sent = await send(h.url, { method, path: '/api/v4/projects/1', headers: [bearer(jwt)] });
    await expectRefused(h, sent, 'method', 405);
  });

  it.each(['get', 'Get', 'pOST', 'GETX'])('refuses the spelling %s before it is parsed as a request', async (method) => {
    const before = h.audit.length;
    forbidForRestOfTest(h, `${method} is not a method`);
    const raw = await rawRequest(h.url, `${method} /api/v4/projects/1 HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${jwt}\r\n\r\n`);
    expect(statuses(raw.text)).toEqual([400]);
    expect(raw.closed).toBe(true);
    await h.waitForAudit(before + 1);
    expect(h.audit[before]).toMatchObject({ decision: 'deny', reason: 'unparseable', detail: expect.stringMatching(/^HPE_/) as unknown });
    expect(h.standin.requests).toEqual([]);
  });

  it('closes a CONNECT tunnel attempt without forwarding anything', async () => {
    forbidForRestOfTest(h, 'sent through a CONNECT tunnel');
    const raw = await rawRequest(h.url, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /api/v4/projects/1 HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${jwt}\r\n\r\n`);
    expect(raw.closed).toBe(true);
    expect(statuses(raw.text).filter((s) => s < 400)).toEqual([]);
    expect(h.standin.requests).toEqual([]);
  });
});
