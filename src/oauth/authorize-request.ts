// GET /oauth/authorize, checked as RFC 6749 4.1.1 and 4.1.2.1 say, without HTTP:
// - an unknown client_id or a redirect_uri that is missing (with several registered), not
//   registered, or sent twice is answered with an error page, never a redirect (3.1.2.4, 10.15:
//   an open redirector);
// - every other problem is redirected to the (now trusted) redirect URI with error and state.
// redirect_uri is compared as an exact string, as GitLab's Doorkeeper does.
import type { Policy } from '../types.ts';
import { findOAuthClient, type OAuthClient } from './client-auth.ts';
import type { OAuthErrorCode } from './errors.ts';
import { validChallenge } from './pkce.ts';

export interface AuthorizationRequest {
  client: OAuthClient;
  redirectUri: string;
  redirectUriSent: boolean;
  state: string | undefined;
  scope: string;
  codeChallenge: string | undefined;
}

export type AuthorizeCheck =
  | { kind: 'ok'; request: AuthorizationRequest }
  | { kind: 'page'; reason: string; message: string }
  | { kind: 'redirect'; redirectUri: string; state: string | undefined; error: OAuthErrorCode; description: string; client: OAuthClient };

/** GitLab's token scopes a vendor may ask for (doc/integration/oauth_provider.md); what the
 *  vendor can really do is the client's policy. sudo and admin_mode are never granted. */
export const GRANTABLE_SCOPES = new Set([
  'api', 'read_api', 'read_user', 'read_repository', 'write_repository', 'read_registry', 'write_registry',
  'openid', 'profile', 'email', 'read_observability', 'write_observability', 'ai_features',
]);
const MAX_STATE = 2048;

export function checkAuthorizationRequest(policy: Policy, rawQuery: string): AuthorizeCheck {
  const q = new URLSearchParams(rawQuery);
  const once = (name: string): string | undefined | null => {
    const all = q.getAll(name);
    return all.length > 1 ? null : all[0];
  };
  const clientId = once('client_id');
  if (clientId === null) return page('duplicate-parameter', 'client_id is sent more than once.');
  const client = clientId ? findOAuthClient(policy, clientId) : undefined;
  if (!client) return page('unknown-client', 'This application is not registered with the proxy (unknown client_id).');
  const sentUri = once('redirect_uri');
  if (sentUri === null) return page('duplicate-parameter', 'redirect_uri is sent more than once.');
  const registered = client.oauth.redirectUris;
  if (sentUri === undefined && registered.length !== 1) return page('redirect-uri-missing', 'The request names no redirect_uri and the application registers several.');
  if (sentUri !== undefined && !registered.includes(sentUri)) return page('redirect-uri-unregistered', 'The redirect URI is not registered for this application.');
  const redirectUri = sentUri ?? registered[0]!;

  const state = once('state');
  const fail = (error: OAuthErrorCode, description: string): AuthorizeCheck =>
    ({ kind: 'redirect', redirectUri, state: typeof state === 'string' ? state : undefined, error, description, client });
  for (const name of ['response_type', 'state', 'scope', 'code_challenge', 'code_challenge_method']) {
    if (once(name) === null) return fail('invalid_request', `${name} is sent more than once`);
  }
  if (state !== undefined && state !== null && state.length > MAX_STATE) return fail('invalid_request', 'state is too long');
  const responseType = once('response_type');
  if (!responseType) return fail('invalid_request', 'response_type is required');
  if (responseType !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported');
  const scopes = (once('scope') ?? 'api').split(' ').filter(Boolean);
  if (scopes.length === 0 || scopes.some((s) => !GRANTABLE_SCOPES.has(s))) return fail('invalid_scope', 'a requested scope is unknown or never granted');
  const challenge = once('code_challenge');
  const method = once('code_challenge_method');
  if (challenge !== undefined) {
    // RFC 7636 4.3: "plain" is the default when no method is sent; only S256 is accepted here.
    if (method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');
    if (!validChallenge(challenge!)) return fail('invalid_request', 'code_challenge is malformed');
  } else if (method !== undefined) {
    return fail('invalid_request', 'code_challenge_method without code_challenge');
  } else if (client.oauth.requirePkce) {
    return fail('invalid_request', 'this application must use PKCE (code_challenge with S256)');
  }
  return {
    kind: 'ok',
    request: { client, redirectUri, redirectUriSent: sentUri !== undefined, state: state ?? undefined, scope: [...new Set(scopes)].join(' '), codeChallenge: challenge ?? undefined },
  };
}

const page = (reason: string, message: string): AuthorizeCheck => ({ kind: 'page', reason, message });

/** The vendor's redirect URI with the response parameters appended (3.1.2: keep its query). */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.toString();
}
