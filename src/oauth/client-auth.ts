// Client authentication at the token and revocation endpoints (RFC 6749 2.3.1): HTTP Basic
// (client_secret_basic; id and secret are form-urlencoded before base64) or client_id and
// client_secret in the body (client_secret_post), never both at once. The secret is compared
// by its SHA-256 in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Client, Policy } from '../types.ts';
import type { OAuthRegistration } from '../types.ts';
import { OAuthError } from './errors.ts';

export type OAuthClient = Client & { oauth: OAuthRegistration };

/** The policy client whose oauth.client_id is `clientId` (a disabled client is none). */
export function findOAuthClient(policy: Policy, clientId: string): OAuthClient | undefined {
  for (const client of policy.clients.values()) {
    if (client.oauth?.clientId === clientId) return client.disabled ? undefined : (client as OAuthClient);
  }
  return undefined;
}

export interface ClientCredentials {
  clientId: string;
  secret: string;
  method: 'client_secret_basic' | 'client_secret_post';
}

/** Reads the credentials; throws invalid_request for two methods at once, invalid_client for none. */
export function clientCredentials(authorization: string | undefined, form: URLSearchParams): ClientCredentials {
  const inBody = form.has('client_secret');
  if (authorization !== undefined) {
    if (inBody) throw new OAuthError('invalid_request', 'use one client authentication method, not two');
    const m = /^Basic ([A-Za-z0-9+/]+=*)$/i.exec(authorization.trim());
    if (!m) throw new OAuthError('invalid_client', 'client authentication failed');
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) throw new OAuthError('invalid_client', 'client authentication failed');
    let clientId: string;
    let secret: string;
    try {
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    } catch {
      throw new OAuthError('invalid_client', 'client authentication failed');
    }
    if (form.has('client_id') && form.get('client_id') !== clientId) throw new OAuthError('invalid_request', 'client_id differs from the authenticated client');
    return { clientId, secret, method: 'client_secret_basic' };
  }
  const clientId = form.get('client_id');
  const secret = form.get('client_secret');
  if (!clientId || !secret) throw new OAuthError('invalid_client', 'client authentication failed');
  return { clientId, secret, method: 'client_secret_post' };
}

export function authenticateClient(policy: Policy, creds: ClientCredentials): OAuthClient {
  const client = findOAuthClient(policy, creds.clientId);
  const presented = createHash('sha256').update(creds.secret).digest();
  // Compare even when the client is unknown, so timing does not tell which ids exist.
  const expected = client?.oauth.secretSha256 ?? Buffer.alloc(32);
  if (!timingSafeEqual(presented, expected) || !client) throw new OAuthError('invalid_client', 'client authentication failed');
  return client;
}
