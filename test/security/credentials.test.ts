// Credentials the client adds itself (reference item 1, 3): GitLab tries deploy tokens, OAuth
// and personal access tokens from headers, query and body, job tokens, feed and static-object
// tokens, Basic auth and the session cookie. Exactly one credential may reach GitLab: the
// real token, injected by the proxy.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';
import { bearer, expectOnlyRealToken, expectRefused, expectStillServes, forwarded, json, send } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
      - POST /api/v4/projects/:id/hooks
`;
const NOTES = '/api/v4/projects/1/merge_requests/1/notes';
const secret = (): string => randomBytes(12).toString('hex');

let h: Harness;
let jwt: string;
beforeAll(async () => {
  h = await startHarness({ policies: { 'vendor.yaml': POLICY } });
  jwt = await h.token('vendor');
});
afterAll(() => h.close());
beforeEach(() => h.standin.reset());
afterEach(async () => {
  await expectStillServes(h, jwt);
  // No secret of either side ever reaches the audit log.
  expect(h.auditText()).not.toContain(jwt);
  expect(h.auditText()).not.toContain(h.realToken);
});

describe('credential headers the client adds', () => {
  it('strips every other credential header and injects exactly the real token', async () => {
    const sent = await send(h.url, {
      path: '/api/v4/projects/1',
      headers: [
        bearer(jwt),
        ['Cookie', `_gitlab_session=${secret()}`],
        ['JOB-TOKEN', secret()],
        ['Deploy-Token', secret()],
        ['X-Gitlab-Static-Object-Token', secret()],
        ['DPoP', secret()],
        ['Gitlab-Agent-Api-Request', secret()],
        ['Gitlab-Agentk-Api-Request', secret()],
        ['Proxy-Authorization', `Basic ${secret()}`],
      ],
    });
    expect(sent.status).toBe(200);
    const rec = await forwarded(h, sent);
    expectOnlyRealToken(h, rec);
    expect(rec.rawHeaders.map((s) => s.toLowerCase())).not.toContain('proxy-authorization');
    expect(JSON.stringify(rec)).not.toContain(jwt);
  });

  it.each([
    ['PRIVATE-TOKEN', (t: string) => [['PRIVATE-TOKEN', t]] as [string, string][]],
    ['Bearer', (t: string) => [bearer(t)]],
    ['Basic password', (t: string) => [['Authorization', `Basic ${Buffer.from(`anyone:${t}`).toString('base64')}`]] as [string, string][]],
  ])('takes the JWT from %s and forwards the real token only', async (_name, headers) => {
    const rec = await forwarded(h, await send(h.url, { path: '/api/v4/projects/1', headers: headers(jwt) }));
    expectOnlyRealToken(h, rec);
    expect(JSON.stringify(rec)).not.toContain(jwt);
  });

  it('refuses a cookie or a job token as the only credential, without forwarding', async () => {
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects/1', headers: [['Cookie', `_gitlab_session=${secret()}`]] }), 'no-token', 401);
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects/1', headers: [['JOB-TOKEN', secret()]] }), 'no-token', 401);
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects/1', headers: [['Authorization', `Token ${jwt}`]] }), 'unsupported-authorization', 401);
  });

  it('refuses two credentials at once', async () => {
    const both = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), ['PRIVATE-TOKEN', jwt]] });
    await expectRefused(h, both, 'ambiguous-credentials', 401);
    const headerAndQuery = await send(h.url, { path: `/api/v4/projects/1?private_token=${jwt}`, headers: [bearer(jwt)] });
    await expectRefused(h, headerAndQuery, 'ambiguous-credentials', 401);
    const twoParams = await send(h.url, { path: `/api/v4/projects/1?private_token=${jwt}&access_token=${jwt}` });
    await expectRefused(h, twoParams, 'ambiguous-credentials', 401);
  });

  it.each(['Private_Token', 'PRIVATE_TOKEN', 'Job_Token', 'HTTP_PRIVATE_TOKEN', 'X_Forwarded_Host'])(
    'refuses the underscore spelling %s, which Puma folds into a dash', async (name) => {
      const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), [name, secret()]] });
      await expectRefused(h, sent, 'underscore-header', 400);
    });

  it.each(['Authorization', 'PRIVATE-TOKEN', 'Job-Token', 'Deploy-Token', 'Cookie', 'X-Gitlab-Static-Object-Token'])(
    'refuses a duplicated %s header', async (name) => {
      const value = name === 'Authorization' ? `Bearer ${jwt}` : name === 'PRIVATE-TOKEN' ? jwt : secret();
      const extra: [string, string][] = name === 'Authorization' || name === 'PRIVATE-TOKEN' ? [] : [bearer(jwt)];
      const sent = await send(h.url, { path: '/api/v4/projects/1', headers: [...extra, [name, value], [name.toLowerCase(), value]] });
      await expectRefused(h, sent, 'duplicate-header', 400);
    });
});

describe('credentials in the query', () => {
  it.each(['private_token', 'access_token'])('takes the JWT from ?%s and removes it from the forwarded query', async (key) => {
    const rec = await forwarded(h, await send(h.url, { path: `/api/v4/projects?per_page=2&${key}=${jwt}&page=1` }));
    expect(rec.url).toBe('/api/v4/projects?per_page=2&page=1');
    expectOnlyRealToken(h, rec);
    expect(JSON.stringify(rec)).not.toContain(jwt);
  });

  it.each([
    'bearer_token', 'job_token', 'token', 'feed_token', 'rss_token',
    'job%5Ftoken', 'JOB_TOKEN', 'Feed_Token', 'token[]', 'job_token[x]', '%74oken',
  ])('refuses ?%s=…', async (key) => {
    const sent = await send(h.url, { path: `/api/v4/projects/1?${key}=${secret()}`, headers: [bearer(jwt)] });
    await expectRefused(h, sent, 'credential-parameter', 400);
  });

  it.each(['PRIVATE_TOKEN', 'Access_Token', 'private_token[]', 'access_token[x]'])('refuses the variant ?%s=…', async (key) => {
    const sent = await send(h.url, { path: `/api/v4/projects/1?${key}=${jwt}`, headers: [bearer(jwt)] });
    await expectRefused(h, sent, 'ambiguous-credentials', 401);
  });
});

describe('credentials in the body', () => {
  const cases: [string, () => { headers: [string, string][]; body: string }][] = [
    ['JSON private_token', () => json({ body: 'x', private_token: secret() })],
    ['JSON access_token', () => json({ body: 'x', access_token: secret() })],
    ['JSON job_token', () => json({ body: 'x', job_token: secret() })],
    ['JSON bracketed [token]', () => json({ body: 'x', '[token]': secret() })],
    ['JSON Feed_Token', () => json({ body: 'x', Feed_Token: secret() })],
    ['form bearer_token', () => ({ headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: `body=x&bearer_token=${secret()}` })],
    ['form rss_token', () => ({ headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: `body=x&rss_token=${secret()}` })],
    ['form encoded key', () => ({ headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: `body=x&private%5Ftoken=${secret()}` })],
  ];
  it.each(cases)('refuses %s', async (_name, make) => {
    const { headers, body } = make();
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ...headers], body });
    await expectRefused(h, sent, 'forbidden-body-key', 400);
  });

  it('refuses a credential field in a multipart body', async () => {
    const boundary = `b${secret()}`;
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="body"\r\n\r\nx\r\n--${boundary}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${secret()}\r\n--${boundary}--\r\n`;
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', `multipart/form-data; boundary=${boundary}`]], body });
    await expectRefused(h, sent, 'forbidden-body-key', 400);
  });

  it('lets a webhook secret named token through on the hooks endpoint only', async () => {
    const hookSecret = secret();
    const { headers, body } = json({ url: 'https://vendor.example/hook', token: hookSecret });
    const rec = await forwarded(h, await send(h.url, { method: 'POST', path: '/api/v4/projects/1/hooks', headers: [bearer(jwt), ...headers], body }));
    expect(rec.body.toString()).toBe(body);
    expectOnlyRealToken(h, rec);
    h.standin.reset();
    const elsewhere = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ...headers], body });
    await expectRefused(h, elsewhere, 'forbidden-body-key', 400);
  });
});
