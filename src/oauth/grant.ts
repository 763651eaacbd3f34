// What the token and revocation endpoints do, without HTTP: turn a one-time code into a grant
// with tokens, rotate a refresh token, revoke. The store decides every race (src/store/).
// Access tokens are the proxy's own JWTs for the client (src/auth/mint.ts) carrying the grant
// id as "gid", so the rest of the proxy treats them like any client token, and revoking the
// grant stops them at once (src/oauth/grant-check.ts).
import type { Approver, Grant, Store } from '../store/store.ts';
import type { OAuthClient } from './client-auth.ts';
import { OAuthError } from './errors.ts';
import { verifierMatches } from './pkce.ts';
import { newCode, newGrantId, newRefreshToken, refreshTokenGrant, sha256hex } from './secrets.ts';

/** RFC 6749 4.1.2 recommends at most 10 minutes; Doorkeeper's default is 10 minutes too. */
export const CODE_TTL_MS = 10 * 60_000;

export interface GrantDeps {
  store: Store;
  /** Mints the client's JWT with the given lifetime and claims. */
  mint: (client: string, ttlS: number, claims: Record<string, string | number>) => Promise<string>;
  now: () => number;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
  created_at: number;
}

export interface Issued {
  response: TokenResponse;
  grant: Grant;
}

export interface ApprovedRequest {
  client: OAuthClient;
  redirectUri: string;
  redirectUriSent: boolean;
  scope: string;
  codeChallenge: string | undefined;
  approver: Approver;
}

/** After approval: a fresh one-time code for the vendor's redirect. */
export async function issueCode(deps: GrantDeps, req: ApprovedRequest): Promise<{ code: string; grantId: string }> {
  const code = newCode();
  const grantId = newGrantId();
  await deps.store.putCode(sha256hex(code), {
    grantId, client: req.client.name, clientId: req.client.oauth.clientId, redirectUri: req.redirectUri, redirectUriSent: req.redirectUriSent,
    scope: req.scope, codeChallenge: req.codeChallenge, approver: req.approver, expiresAt: deps.now() + CODE_TTL_MS,
  });
  return { code, grantId };
}

/** grant_type=authorization_code (RFC 6749 4.1.3, RFC 7636 4.6). */
export async function exchangeCode(deps: GrantDeps, client: OAuthClient, form: URLSearchParams): Promise<Issued> {
  const code = form.get('code');
  if (!code) throw new OAuthError('invalid_request', 'code is required');
  const now = deps.now();
  const used = await deps.store.consumeCode(sha256hex(code), now);
  if (used.status === 'unknown') throw new OAuthError('invalid_grant', 'the authorization code is invalid or expired');
  const rec = used.record;
  if (used.status === 'replayed') {
    // RFC 6749 4.1.2: a code used twice revokes what its first use produced.
    await deps.store.revokeGrant(rec.grantId, 'code-replay', now);
    throw new OAuthError('invalid_grant', 'the authorization code was already used', { reason: 'oauth-code-replay', grant: { id: rec.grantId, approver: rec.approver.username } });
  }
  if (rec.clientId !== client.oauth.clientId) throw new OAuthError('invalid_grant', 'the authorization code was issued to another client');
  const redirectUri = form.get('redirect_uri');
  if ((rec.redirectUriSent || redirectUri !== null) && redirectUri !== rec.redirectUri) throw new OAuthError('invalid_grant', 'redirect_uri does not match the authorization request');
  const verifier = form.get('code_verifier');
  if (rec.codeChallenge !== undefined ? verifier === null || !verifierMatches(verifier, rec.codeChallenge) : verifier !== null) {
    throw new OAuthError('invalid_grant', 'PKCE verification failed');
  }
  const grant: Grant = {
    id: rec.grantId, client: client.name, clientId: rec.clientId, scope: rec.scope, approver: rec.approver, createdAt: now,
    refreshExpiresAt: now + client.oauth.refreshTokenTtlS * 1000, revokedAt: undefined, revokedReason: undefined,
  };
  const refreshToken = newRefreshToken(grant.id);
  await deps.store.createGrant(grant, sha256hex(refreshToken));
  return { grant, response: await tokenResponse(deps, client, grant, refreshToken, now) };
}

/** grant_type=refresh_token (RFC 6749 6): rotates; an old token revokes the grant. */
export async function refreshGrant(deps: GrantDeps, client: OAuthClient, form: URLSearchParams): Promise<Issued> {
  const presented = form.get('refresh_token');
  if (!presented) throw new OAuthError('invalid_request', 'refresh_token is required');
  const grantId = refreshTokenGrant(presented);
  const existing = grantId ? await deps.store.getGrant(grantId) : undefined;
  if (!grantId || !existing || existing.clientId !== client.oauth.clientId) throw new OAuthError('invalid_grant', 'the refresh token is invalid');
  const scope = form.get('scope');
  if (scope !== null && !scope.split(' ').every((s) => existing.scope.split(' ').includes(s))) throw new OAuthError('invalid_scope', 'a refresh cannot widen the scope');
  const now = deps.now();
  const next = newRefreshToken(grantId);
  const rotated = await deps.store.rotateRefresh(grantId, sha256hex(presented), sha256hex(next), now + client.oauth.refreshTokenTtlS * 1000, now);
  switch (rotated.status) {
    case 'ok':
      return { grant: rotated.grant, response: await tokenResponse(deps, client, rotated.grant, next, now) };
    case 'reused':
      throw new OAuthError('invalid_grant', 'the refresh token was already used; the grant is revoked', { reason: 'oauth-refresh-reuse', grant: { id: grantId, approver: rotated.grant.approver.username } });
    case 'revoked':
      throw new OAuthError('invalid_grant', 'the grant was revoked');
    case 'expired':
      throw new OAuthError('invalid_grant', 'the refresh token expired');
    default:
      throw new OAuthError('invalid_grant', 'the refresh token is invalid');
  }
}

/** RFC 7009: the grant behind a refresh token or access token of this client, revoked. Tokens
 *  that are not the client's are ignored (the endpoint answers 200 regardless, 2.2). */
export async function revokeToken(
  deps: GrantDeps, client: OAuthClient, token: string, accessTokenGrant: (token: string) => Promise<{ client: string; gid: string } | undefined>,
): Promise<Grant | undefined> {
  const fromRefresh = refreshTokenGrant(token);
  let grantId: string | undefined;
  if (fromRefresh) {
    const grant = await deps.store.getGrant(fromRefresh);
    if (grant?.clientId === client.oauth.clientId) grantId = grant.id;
  } else {
    const access = await accessTokenGrant(token);
    if (access?.client === client.name) grantId = access.gid;
  }
  return grantId ? deps.store.revokeGrant(grantId, 'revoked', deps.now()) : undefined;
}

async function tokenResponse(deps: GrantDeps, client: OAuthClient, grant: Grant, refreshToken: string, now: number): Promise<TokenResponse> {
  const ttl = client.oauth.accessTokenTtlS;
  return {
    access_token: await deps.mint(client.name, ttl, { gid: grant.id }),
    token_type: 'Bearer',
    expires_in: ttl,
    refresh_token: refreshToken,
    scope: grant.scope,
    // GitLab's token response carries created_at (Unix seconds), which some clients read.
    created_at: Math.floor(now / 1000),
  };
}
