// A real OAuth client library (oauth4webapi) plays Zoom against the proxy as its GitLab:
// discovery, authorization URL, the approver's sign-in and consent, code exchange, refresh,
// then API calls with the access token; and every way it must fail, per RFC 6749.
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveInBrowser, auditLine, startOAuthProxy, ZOOM_REDIRECT, type OAuthProxy } from './support.ts';

let p: OAuthProxy;
let as: oauth.AuthorizationServer;
let client: oauth.Client;
const insecure = { [oauth.allowInsecureRequests]: true };

beforeAll(async () => {
  p = await startOAuthProxy();
  const issuer = new URL(p.url);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  client = { client_id: p.clientId };
});
afterAll(async () => {
  await p.close();
});

/** Zoom's side: an authorization URL with state and PKCE. */
async function authorizationUrl(extra: Record<string, string> = {}): Promise<{ url: string; state: string; verifier: string }> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: p.clientId, redirect_uri: ZOOM_REDIRECT, response_type: 'code', scope: 'api read_user', state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  }).toString();
  return { url: url.toString(), state, verifier };
}

async function exchange(location: string, state: string, verifier: string, auth = oauth.ClientSecretBasic(p.clientSecret)): Promise<oauth.TokenEndpointResponse> {
  const params = oauth.validateAuthResponse(as, client, new URL(location), state);
  const res = await oauth.authorizationCodeGrantRequest(as, client, auth, params, ZOOM_REDIRECT, verifier, insecure);
  return oauth.processAuthorizationCodeResponse(as, client, res);
}

async function oauthError(promise: Promise<unknown>): Promise<{ error: string; status: number }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return { error: err.error, status: err.status };
    // A 401 with a Basic challenge (RFC 6749 5.2): the library hands over the response itself.
    if (err instanceof oauth.WWWAuthenticateChallengeError) return { error: ((await err.response.json()) as { error: string }).error, status: err.status };
    throw err;
  }
  throw new Error('expected an OAuth error');
}

/** API requests the stand-in received from the proxy with the real token. */
const apiCalls = (): string[] => p.h.standin.requests.filter((r) => r.path.startsWith('/api/v4/') && !r.path.includes('/members/all/')).map((r) => `${r.method} ${r.path}`);

describe('Zoom over OAuth through the proxy', () => {
  it('publishes GitLab\'s endpoints at GitLab\'s paths', async () => {
    expect(as).toMatchObject({
      issuer: p.url, authorization_endpoint: `${p.url}/oauth/authorize`, token_endpoint: `${p.url}/oauth/token`, revocation_endpoint: `${p.url}/oauth/revoke`,
      code_challenge_methods_supported: ['S256'],
    });
    const oidc = await (await fetch(`${p.url}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    expect(oidc.token_endpoint).toBe(`${p.url}/oauth/token`);
  });

  it('signs in, approves, exchanges the code, refreshes, and then calls the API as the zoom client', async () => {
    const { url, state, verifier } = await authorizationUrl();
    const { location, consent } = await approveInBrowser(url, 'alice');
    expect(location.startsWith(`${ZOOM_REDIRECT}?code=`)).toBe(true);
    // The consent page: vendor, description, redirect host, what it reaches; strict CSP, no script.
    expect(consent!.html).toContain('zoom');
    expect(consent!.html).toContain('Zoom GitLab chatbot');
    expect(consent!.html).toContain('applications.zoom.us');
    expect(consent!.html).toContain('POST /projects/:id/hooks');
    expect(consent!.html).toContain('GitLab routes it reaches, by risk');
    expect(consent!.html).not.toContain('<script');
    expect(consent!.headers.get('content-security-policy')).toMatch(/default-src 'none'.*form-action 'self' https:\/\/applications\.zoom\.us.*frame-ancestors 'none'/);

    const tokens = await exchange(location, state, verifier);
    expect(tokens).toMatchObject({ token_type: 'bearer', expires_in: 7200, scope: 'api read_user' });
    const refreshed = await oauth.processRefreshTokenResponse(as, client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretPost(p.clientSecret), tokens.refresh_token!, insecure));
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

    p.h.standin.reset();
    const auth = { authorization: `Bearer ${refreshed.access_token}` };
    const projects = await fetch(`${p.url}/api/v4/projects?membership=true`, { headers: auth });
    expect(projects.status).toBe(200);
    const hook = await fetch(`${p.url}/api/v4/projects/3/hooks`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'https://hooks.zoom.example/gitlab/acme', push_events: true }),
    });
    expect(hook.status).toBe(201);
    // Zoom's policy holds: no member management.
    expect((await fetch(`${p.url}/api/v4/projects/3/members`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"user_id":1}' })).status).toBe(403);
    expect(apiCalls()).toEqual(['GET /api/v4/projects', 'POST /api/v4/projects/3/hooks']);
    const received = p.h.standin.requests.find((r) => r.path === '/api/v4/projects/3/hooks')!;
    expect(received.headers['private-token']).toBe(p.h.realToken);
    expect(JSON.parse(received.body.toString())).toEqual({ url: 'https://hooks.zoom.example/gitlab/acme', push_events: true });

    // token/info describes it, as GitLab's does.
    const info = await (await fetch(`${p.url}/oauth/token/info`, { headers: auth })).json() as Record<string, unknown>;
    expect(info).toMatchObject({ resource_owner_id: 7, scope: ['api', 'read_user'], application: { uid: p.clientId } });

    // Audit: approval, token issue and refresh name the client and the approver; no secret anywhere.
    await auditLine(p, (l) => l.reason === 'oauth-refreshed');
    const reasons = p.h.audit.filter((l) => l.client === 'zoom').map((l) => `${l.reason}:${l.oauth?.approver ?? ''}`);
    expect(reasons).toEqual(expect.arrayContaining(['oauth-authorize:', 'oauth-approved:alice', 'oauth-token-issued:alice', 'oauth-refreshed:alice']));
    for (const secret of [tokens.access_token, tokens.refresh_token!, refreshed.access_token, p.clientSecret, new URL(location).searchParams.get('code')!]) {
      expect(p.h.auditText()).not.toContain(secret);
    }
  });

  it('refuses a replayed code (invalid_grant) and revokes the tokens its first use produced', async () => {
    const { url, state, verifier } = await authorizationUrl();
    const { location } = await approveInBrowser(url, 'alice');
    const first = await exchange(location, state, verifier);
    expect(await oauthError(exchange(location, state, verifier))).toEqual({ error: 'invalid_grant', status: 400 });
    p.h.standin.reset();
    expect((await fetch(`${p.url}/api/v4/projects`, { headers: { authorization: `Bearer ${first.access_token}` } })).status).toBe(401);
    expect(apiCalls()).toEqual([]);
    await auditLine(p, (l) => l.reason === 'oauth-code-replay' && l.client === 'zoom');
  });

  it('revokes the whole grant when a rotated refresh token comes back', async () => {
    const { url, state, verifier } = await authorizationUrl();
    const tokens = await exchange((await approveInBrowser(url, 'alice')).location, state, verifier);
    const basic = oauth.ClientSecretBasic(p.clientSecret);
    const second = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, basic, tokens.refresh_token!, insecure));
    expect(await oauthError(oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, basic, tokens.refresh_token!, insecure))))
      .toEqual({ error: 'invalid_grant', status: 400 });
    // The newest refresh token and access token die with the grant.
    expect(await oauthError(oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, basic, second.refresh_token!, insecure))))
      .toEqual({ error: 'invalid_grant', status: 400 });
    p.h.standin.reset();
    expect((await fetch(`${p.url}/api/v4/projects`, { headers: { authorization: `Bearer ${second.access_token}` } })).status).toBe(401);
    expect(apiCalls()).toEqual([]);
    await auditLine(p, (l) => l.reason === 'oauth-refresh-reuse' && l.oauth?.approver === 'alice');
  });

  it('refuses a wrong client secret with invalid_client (401), by Basic and by post', async () => {
    const { url, state, verifier } = await authorizationUrl();
    const { location } = await approveInBrowser(url, 'alice');
    p.h.standin.reset();
    expect(await oauthError(exchange(location, state, verifier, oauth.ClientSecretBasic('wrong-secret-wrong-secret-wrong-secret')))).toEqual({ error: 'invalid_client', status: 401 });
    const res = await fetch(`${p.url}/oauth/token`, {
      method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', client_id: p.clientId, client_secret: 'nope' }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
    expect(apiCalls()).toEqual([]);
  });

  it('refuses a token request with a parameter twice, or not as a form (invalid_request)', async () => {
    const basic = `Basic ${Buffer.from(`${p.clientId}:${p.clientSecret}`).toString('base64')}`;
    const twice = await fetch(`${p.url}/oauth/token`, {
      method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=a&refresh_token=b',
    });
    expect([twice.status, ((await twice.json()) as { error: string }).error]).toEqual([400, 'invalid_request']);
    const json = await fetch(`${p.url}/oauth/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/json' }, body: '{"grant_type":"refresh_token"}' });
    expect([json.status, ((await json.json()) as { error: string }).error]).toEqual([400, 'invalid_request']);
    expect(json.headers.get('cache-control')).toBe('no-store');
  });

  it('answers a foreign redirect_uri with an error page, never a redirect', async () => {
    p.h.standin.reset();
    const { url } = await authorizationUrl({ redirect_uri: 'https://attacker.example/cb' });
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('not registered');
    // Unknown client_id: the same.
    const unknown = await fetch(`${p.url}/oauth/authorize?client_id=nobody&redirect_uri=${encodeURIComponent(ZOOM_REDIRECT)}&response_type=code`, { redirect: 'manual' });
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('location')).toBeNull();
    // Not even the approver sign-in started.
    expect(p.h.standin.requests).toEqual([]);
  });

  it('redirects other request errors to the vendor with error and state', async () => {
    const { url, state } = await authorizationUrl({ response_type: 'token' });
    const res = await fetch(url, { redirect: 'manual' });
    const to = new URL(res.headers.get('location')!);
    expect(`${to.origin}${to.pathname}`).toBe(ZOOM_REDIRECT);
    expect(Object.fromEntries(to.searchParams)).toMatchObject({ error: 'unsupported_response_type', state });
  });

  it('refuses an approver outside OAUTH_APPROVERS with access_denied, and admits a group maintainer', async () => {
    const { url, state } = await authorizationUrl();
    const { location } = await approveInBrowser(url, 'mallory');
    expect(Object.fromEntries(new URL(location).searchParams)).toMatchObject({ error: 'access_denied', state });
    await auditLine(p, (l) => l.reason === 'oauth-approver-refused' && l.oauth?.approver === 'mallory');
    const bob = await authorizationUrl();
    expect((await approveInBrowser(bob.url, 'bob')).location).toContain('code=');
    await auditLine(p, (l) => l.reason === 'oauth-approved' && l.oauth?.approverRule === 'group:acme/platform:40');
  });

  it('refuses a consent form without the page\'s CSRF token or from another site', async () => {
    for (const tamper of ['wrong-csrf', 'cross-site'] as const) {
      const { url } = await authorizationUrl();
      expect((await approveInBrowser(url, 'alice', 'approve', tamper)).location).toBe('status 403');
    }
    await auditLine(p, (l) => l.reason === 'oauth-csrf');
  });

  it('sends access_denied when the approver denies', async () => {
    const { url, state } = await authorizationUrl();
    const { location } = await approveInBrowser(url, 'alice', 'deny');
    expect(Object.fromEntries(new URL(location).searchParams)).toMatchObject({ error: 'access_denied', state });
    await auditLine(p, (l) => l.reason === 'oauth-denied' && l.oauth?.approver === 'alice');
  });

  it('checks PKCE: a wrong verifier fails with invalid_grant', async () => {
    const { url, state } = await authorizationUrl();
    const { location } = await approveInBrowser(url, 'alice');
    expect(await oauthError(exchange(location, state, oauth.generateRandomCodeVerifier()))).toEqual({ error: 'invalid_grant', status: 400 });
  });

  it('revokes by RFC 7009: the access token stops working at once', async () => {
    const { url, state, verifier } = await authorizationUrl();
    const tokens = await exchange((await approveInBrowser(url, 'alice')).location, state, verifier);
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    expect((await fetch(`${p.url}/api/v4/user`, { headers: auth })).status).toBe(200);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(p.clientSecret), tokens.access_token, insecure));
    p.h.standin.reset();
    expect((await fetch(`${p.url}/api/v4/user`, { headers: auth })).status).toBe(401);
    expect(apiCalls()).toEqual([]);
    await auditLine(p, (l) => l.reason === 'oauth-revoked' && l.client === 'zoom');
  });
});
