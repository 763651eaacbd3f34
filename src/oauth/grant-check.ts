// An OAuth access token is the client's JWT with the grant id as "gid": it stays valid only
// while its grant does. This verifier checks the token as every client token is checked and
// then asks the store about the grant, so a revocation (RFC 7009, `grants revoke`, refresh
// reuse) stops the access token on every replica at once. Tokens without "gid" (minted by
// `gitlab-scope-proxy token`) are not affected.
import { decodeJwt } from 'jose';
import { TokenVerifier, type Identity } from '../auth/verify.ts';
import { ProxyError } from '../errors.ts';
import type { Policy } from '../types.ts';
import { grantActive, type Store } from '../store/store.ts';

export class GrantCheckingVerifier extends TokenVerifier {
  readonly #inner: TokenVerifier;
  readonly #store: Store;

  constructor(inner: TokenVerifier, store: Store) {
    // The base class's own keys are never used: verify() delegates.
    super({ secret: undefined, publicKeyPem: undefined, jwksUrl: undefined, audience: 'unused', issuer: undefined });
    this.#inner = inner;
    this.#store = store;
  }

  override async verify(token: string, policy: Policy, now = Date.now()): Promise<Identity> {
    const identity = await this.#inner.verify(token, policy, now);
    const gid = decodeJwt(token).gid;
    if (gid === undefined) return identity;
    if (typeof gid !== 'string') throw new ProxyError('unauthorized', 'oauth-grant-revoked');
    const grant = await this.#store.getGrant(gid);
    if (!grantActive(grant, now) || grant.client !== identity.client.name) throw new ProxyError('unauthorized', 'oauth-grant-revoked');
    return identity;
  }

  /** The grant an access token of ours belongs to, or undefined (RFC 7009 revocation). */
  async accessTokenGrant(token: string, policy: Policy): Promise<{ client: string; gid: string } | undefined> {
    try {
      const identity = await this.#inner.verify(token, policy);
      const gid = decodeJwt(token).gid;
      return typeof gid === 'string' ? { client: identity.client.name, gid } : undefined;
    } catch {
      return undefined;
    }
  }
}
