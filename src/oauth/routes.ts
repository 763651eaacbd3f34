// The OAuth endpoints at GitLab's paths, as a small hono app mounted by src/app.ts:
//   GET  /.well-known/oauth-authorization-server, /.well-known/openid-configuration
//   GET  /oauth/authorize            the vendor's request; sends the approver to GitLab to sign in
//   GET  /oauth/approver/callback    back from GitLab: who signed in, may they approve?
//   GET  /oauth/consent              the consent page;  POST: approve or deny
//   POST /oauth/token                authorization_code and refresh_token grants
//   POST /oauth/revoke               RFC 7009
//   GET  /oauth/token/info           what an access token is (GitLab's Doorkeeper endpoint)
// Each request leaves its one audit line (server.ts) with the client, the event as `reason`
// and, in `oauth`, the grant and the approver; never a code, token or secret.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { contextOf, type RequestContext } from '../context.ts';
import { ProxyError } from '../errors.ts';
import type { Policy } from '../types.ts';
import type { Store } from '../store/store.ts';
import type { Reason } from '../types.ts';
import { accessSummary } from './access-summary.ts';
import { approverRule } from './approvers.ts';
import { checkAuthorizationRequest, redirectWith } from './authorize-request.ts';
import { authenticateClient, clientCredentials, findOAuthClient, type OAuthClient } from './client-auth.ts';
import type { ApproverRule } from '../config/oauth.ts';
import { OAuthError } from './errors.ts';
import type { GitLabSignIn } from './gitlab-signin.ts';
import { exchangeCode, issueCode, refreshGrant, revokeToken, type GrantDeps } from './grant.ts';
import type { GrantCheckingVerifier } from './grant-check.ts';
import { authorizationServerMetadata } from './metadata.ts';
import { consentPage, errorPage, pageHeaders } from './pages.ts';
import { challengeOf, newVerifier } from './pkce.ts';
import { COOKIE, cookieLifetimeS, type FlowCookies, type FlowState } from './session.ts';

export interface OAuthAppDeps {
  policy: () => Policy;
  store: Store;
  verifier: GrantCheckingVerifier;
  signIn: GitLabSignIn;
  approvers: readonly ApproverRule[];
  cookies: FlowCookies;
  mint: GrantDeps['mint'];
  /** PUBLIC_URL without a trailing slash: the issuer. */
  publicBase: string;
  onError: (err: unknown, ctx: RequestContext) => void;
  now?: () => number;
}

type Env = { Bindings: HttpBindings };
const MAX_FORM_BYTES = 16 * 1024;

export function createOAuthApp(deps: OAuthAppDeps): Hono<Env> {
  const app = new Hono<Env>();
  const now = deps.now ?? Date.now;
  const grantDeps: GrantDeps = { store: deps.store, mint: deps.mint, now };
  const base = deps.publicBase;
  const publicUrl = new URL(base);
  const cookiePath = `${publicUrl.pathname.replace(/\/+$/, '')}/oauth`;
  const secure = publicUrl.protocol === 'https:';

  const metadata = (c: Context<Env>): Response => {
    local(c, 'oauth-metadata');
    return c.json(authorizationServerMetadata(base), 200, { 'cache-control': 'public, max-age=3600' });
  };
  app.get('/.well-known/oauth-authorization-server', metadata);
  app.get('/.well-known/openid-configuration', metadata);

  app.get('/oauth/authorize', async (c) => {
    const ctx = audit(c);
    const check = checkAuthorizationRequest(deps.policy(), rawQuery(c));
    if (check.kind === 'page') return page(c, ctx, 400, 'Authorization request refused', check.message, 'oauth-request-refused', check.reason);
    if (check.kind === 'redirect') {
      ctx.client = check.client.name;
      deny(ctx, 'oauth-error', check.error);
      return c.redirect(redirectWith(check.redirectUri, { error: check.error, error_description: check.description, state: check.state }), 302);
    }
    const req = check.request;
    ctx.client = req.client.name;
    const verifier = newVerifier();
    const flow: FlowState = {
      clientId: req.client.oauth.clientId, redirectUri: req.redirectUri, redirectUriSent: req.redirectUriSent, state: req.state,
      scope: req.scope, codeChallenge: req.codeChallenge, signInState: randomBytes(24).toString('base64url'), signInVerifier: verifier,
    };
    await setFlow(c, flow);
    ctx.decision = 'local';
    ctx.reason = 'oauth-authorize';
    return c.redirect(deps.signIn.authorizeUrl(flow.signInState, challengeOf(verifier), randomBytes(16).toString('base64url')), 302);
  });

  app.get('/oauth/approver/callback', async (c) => {
    const ctx = audit(c);
    const flow = await deps.cookies.open(readCookie(c));
    const q = new URLSearchParams(rawQuery(c));
    const stateOk = flow !== undefined && q.getAll('state').length === 1 && same(q.get('state')!, flow.signInState);
    if (!flow || !stateOk) return page(c, ctx, 400, 'Sign-in expired', 'This sign-in is unknown or took longer than 10 minutes. Start again from the application.', 'oauth-flow-expired', 'signin-state');
    const client = flowClient(flow);
    if (!client) return page(c, ctx, 400, 'Application unknown', 'This application or its redirect URI is no longer registered with the proxy.', 'oauth-request-refused', 'unknown-client');
    ctx.client = client.name;
    const code = q.get('code');
    if (!code || q.getAll('code').length !== 1) {
      // The person declined at GitLab (error=access_denied) or GitLab failed: the vendor hears access_denied.
      return vendorError(c, ctx, flow, 'access_denied', 'the approver did not sign in', 'oauth-denied', 'at-gitlab');
    }
    let user;
    let rule;
    try {
      user = await deps.signIn.signedInUser(code, flow.signInVerifier);
      rule = await approverRule(user, deps.approvers, deps.signIn.membership);
    } catch (err) {
      deps.onError(err, ctx);
      return page(c, ctx, 502, 'GitLab sign-in failed', 'GitLab did not confirm the sign-in. Try again in a moment.', 'oauth-signin-failed');
    }
    ctx.oauth = { approver: user.username };
    if (!rule) return vendorError(c, ctx, flow, 'access_denied', 'the signed-in user may not approve applications', 'oauth-approver-refused');
    await setFlow(c, { ...flow, approver: { username: user.username, id: user.id }, approverRule: rule, csrf: randomBytes(24).toString('base64url') });
    ctx.decision = 'local';
    ctx.reason = 'oauth-signed-in';
    return c.redirect(`${cookiePath}/consent`, 303);
  });

  app.get('/oauth/consent', async (c) => {
    const ctx = audit(c);
    const flow = await deps.cookies.open(readCookie(c));
    const client = flow?.approver ? flowClient(flow) : undefined;
    if (!flow?.approver || !flow.csrf || !client) return page(c, ctx, 400, 'Sign-in expired', 'Start again from the application.', 'oauth-flow-expired', 'no-flow');
    ctx.client = client.name;
    ctx.oauth = { approver: flow.approver.username };
    ctx.decision = 'local';
    ctx.reason = 'oauth-consent-shown';
    const nonce = randomBytes(16).toString('base64url');
    const body = consentPage({
      vendor: client.name, description: client.description, redirectHost: new URL(flow.redirectUri).host, scope: flow.scope,
      sections: accessSummary(client), approver: flow.approver.username, csrf: flow.csrf, action: `${cookiePath}/consent`, nonce,
    });
    return c.body(body, 200, pageHeaders(nonce, [new URL(flow.redirectUri).origin]));
  });

  app.post('/oauth/consent', async (c) => {
    const ctx = audit(c);
    const flow = await deps.cookies.open(readCookie(c));
    const client = flow?.approver ? flowClient(flow) : undefined;
    if (!flow?.approver || !flow.csrf || !client) return page(c, ctx, 400, 'Sign-in expired', 'Start again from the application.', 'oauth-flow-expired', 'no-flow');
    ctx.client = client.name;
    ctx.oauth = { approver: flow.approver.username };
    const form = await readForm(c);
    const site = c.req.header('sec-fetch-site');
    const origin = c.req.header('origin');
    const csrf = form?.getAll('csrf');
    if (!form || csrf?.length !== 1 || !same(csrf[0]!, flow.csrf) || (origin !== undefined && origin !== publicUrl.origin) || (site !== undefined && site !== 'same-origin')) {
      return page(c, ctx, 403, 'Request refused', 'This form did not come from the proxy\'s own page.', 'oauth-csrf');
    }
    clearFlow(c);
    const decision = form.get('decision');
    if (decision !== 'approve') return vendorError(c, ctx, flow, 'access_denied', 'the approver denied the request', 'oauth-denied', 'on-consent', false);
    const { code, grantId } = await issueCode(grantDeps, {
      client, redirectUri: flow.redirectUri, redirectUriSent: flow.redirectUriSent, scope: flow.scope, codeChallenge: flow.codeChallenge, approver: flow.approver,
    });
    ctx.oauth = { approver: flow.approver.username, grant: grantId, ...(flow.approverRule ? { approverRule: flow.approverRule } : {}) };
    ctx.decision = 'local';
    ctx.reason = 'oauth-approved';
    return c.redirect(redirectWith(flow.redirectUri, { code, state: flow.state }), 302);
  });

  app.post('/oauth/token', (c) => tokenEndpoint(c, async (client, form) => {
    const grantType = form.get('grant_type');
    const ctx = contextOf(c.env.incoming);
    if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required');
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') throw new OAuthError('unsupported_grant_type', 'use authorization_code or refresh_token');
    const issued = grantType === 'authorization_code' ? await exchangeCode(grantDeps, client, form) : await refreshGrant(grantDeps, client, form);
    ctx.oauth = { grant: issued.grant.id, approver: issued.grant.approver.username };
    ctx.reason = grantType === 'authorization_code' ? 'oauth-token-issued' : 'oauth-refreshed';
    return c.json(issued.response, 200, NO_STORE);
  }));

  app.post('/oauth/revoke', (c) => tokenEndpoint(c, async (client, form) => {
    const ctx = contextOf(c.env.incoming);
    const token = form.get('token');
    if (!token) throw new OAuthError('invalid_request', 'token is required');
    const grant = await revokeToken(grantDeps, client, token, (t) => deps.verifier.accessTokenGrant(t, deps.policy()));
    ctx.reason = grant ? 'oauth-revoked' : 'oauth-revoke-unknown-token';
    if (grant) ctx.oauth = { grant: grant.id, approver: grant.approver.username };
    // RFC 7009 2.2: 200 whether or not the token was valid.
    return c.json({}, 200, NO_STORE);
  }));

  app.get('/oauth/token/info', async (c) => {
    const ctx = audit(c);
    const bearer = /^Bearer (\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    try {
      if (!bearer) throw new ProxyError('unauthorized', 'no-token');
      const identity = await deps.verifier.verify(bearer, deps.policy());
      ctx.client = identity.client.name;
      const grantOf = await deps.verifier.accessTokenGrant(bearer, deps.policy());
      const grant = grantOf ? await deps.store.getGrant(grantOf.gid) : undefined;
      if (!grant) throw new ProxyError('unauthorized', 'oauth-error', { detail: 'not-an-oauth-token' });
      const claims = JSON.parse(Buffer.from(bearer.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number; iat?: number };
      ctx.oauth = { grant: grant.id, approver: grant.approver.username };
      ctx.decision = 'local';
      ctx.reason = 'oauth-token-info';
      const expiresIn = Math.max(0, claims.exp - Math.floor(now() / 1000));
      const scopes = grant.scope.split(' ');
      return c.json({
        resource_owner_id: grant.approver.id, scope: scopes, scopes, expires_in: expiresIn, expires_in_seconds: expiresIn,
        application: { uid: grant.clientId }, created_at: claims.iat ?? null,
      }, 200, NO_STORE);
    } catch (err) {
      deny(ctx, err instanceof ProxyError ? err.reason : 'verification-failed', err instanceof ProxyError ? err.refusal.detail : undefined);
      // Doorkeeper's answer for a bad token at token/info.
      return c.json({ error: 'invalid_token', error_description: 'The access token is invalid' }, 401, { ...NO_STORE, 'www-authenticate': 'Bearer error="invalid_token"' });
    }
  });

  // ------------------------------------------------------------- helpers
  /** The flow's client, as long as it still registers the flow's redirect URI: the policy may
   *  have changed since the flow began, and nothing may redirect to a URI it no longer names. */
  function flowClient(flow: FlowState): OAuthClient | undefined {
    const client = findOAuthClient(deps.policy(), flow.clientId);
    return client?.oauth.redirectUris.includes(flow.redirectUri) ? client : undefined;
  }

  async function tokenEndpoint(c: Context<Env>, handle: (client: OAuthClient, form: URLSearchParams) => Promise<Response>): Promise<Response> {
    const ctx = audit(c);
    const authorization = c.req.header('authorization');
    try {
      const form = await readForm(c);
      if (!form) throw new OAuthError('invalid_request', 'the body must be application/x-www-form-urlencoded, at most 16 KiB, each parameter once');
      ctx.queryKeys = [...new Set(form.keys())];
      const client = authenticateClient(deps.policy(), clientCredentials(authorization, form));
      ctx.client = client.name;
      ctx.decision = 'local';
      return await handle(client, form);
    } catch (err) {
      if (!(err instanceof OAuthError)) deps.onError(err, ctx);
      const e = err instanceof OAuthError ? err : new OAuthError('server_error', 'the request could not be handled');
      deny(ctx, e.reason, e.code);
      if (e.grant) ctx.oauth = { grant: e.grant.id, approver: e.grant.approver };
      const headers: Record<string, string> = { ...NO_STORE };
      // A body left unread (too large) must not be parsed as the next request.
      if (!c.env.incoming.complete) headers.connection = 'close';
      // RFC 6749 5.2: a client that tried HTTP authentication gets the challenge back.
      if (e.code === 'invalid_client' && authorization !== undefined) headers['www-authenticate'] = 'Basic realm="gitlab-scope-proxy"';
      return c.json(e.body(), e.status as 400, headers);
    }
  }

  async function setFlow(c: Context<Env>, flow: FlowState): Promise<void> {
    c.header('set-cookie', `${COOKIE}=${await deps.cookies.seal(flow)}; Path=${cookiePath}; Max-Age=${cookieLifetimeS}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
  }
  function clearFlow(c: Context<Env>): void {
    c.header('set-cookie', `${COOKIE}=; Path=${cookiePath}; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
  }
  function vendorError(c: Context<Env>, ctx: RequestContext, flow: FlowState, error: 'access_denied', description: string, reason: Reason, detail?: string, clear = true): Response {
    if (clear) clearFlow(c);
    deny(ctx, reason, detail);
    return c.redirect(redirectWith(flow.redirectUri, { error, error_description: description, state: flow.state }), 302);
  }
  return app;
}

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

function audit(c: Context<Env>): RequestContext {
  const ctx = contextOf(c.env.incoming);
  ctx.queryKeys = [...new Set(new URLSearchParams(rawQuery(c)).keys())];
  return ctx;
}

function local(c: Context<Env>, reason: Reason): void {
  const ctx = contextOf(c.env.incoming);
  ctx.decision = 'local';
  ctx.reason = reason;
}

function deny(ctx: RequestContext, reason: Reason, detail?: string): void {
  ctx.decision = 'deny';
  ctx.reason = reason;
  ctx.detail = detail ?? null;
}

function page(c: Context<Env>, ctx: RequestContext, status: number, title: string, message: string, reason: Reason, detail?: string): Response {
  deny(ctx, reason, detail);
  const nonce = randomBytes(16).toString('base64url');
  return c.body(errorPage(title, message, nonce), status as 400, pageHeaders(nonce));
}

function rawQuery(c: Context<Env>): string {
  const url = c.env.incoming.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

/** Our flow cookie, when the request carries exactly one. */
function readCookie(c: Context<Env>): string | undefined {
  const found = (c.req.header('cookie') ?? '').split(';').map((p) => p.trim()).filter((p) => p.startsWith(`${COOKIE}=`));
  return found.length === 1 ? found[0]!.slice(COOKIE.length + 1) : undefined;
}

/** A form body: the right content type, small, every parameter once (RFC 6749 3.2). */
async function readForm(c: Context<Env>): Promise<URLSearchParams | undefined> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of c.env.incoming) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  contextOf(c.env.incoming).bytesIn = size;
  const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  const keys = [...form.keys()];
  return new Set(keys).size === keys.length ? form : undefined;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
