// A TokenVerifier whose keys can be replaced at run time (PROXY_JWT_SECRET_FILE or
// PROXY_JWT_PUBLIC_KEY_FILE rotated): the app keeps one verifier object, and a reload swaps
// the one it delegates to. The new verifier starts with an empty cache, so tokens verified
// with the old key are checked again.
import type { JwtSettings } from '../config/env.ts';
import { TokenVerifier, type Identity } from '../auth/verify.ts';
import type { Policy } from '../types.ts';

export class SwappableVerifier extends TokenVerifier {
  #current: TokenVerifier;

  constructor(settings: JwtSettings) {
    super(settings);
    this.#current = new TokenVerifier(settings);
  }

  swap(settings: JwtSettings): void {
    this.#current = new TokenVerifier(settings);
  }

  override verify(token: string, policy: Policy, now?: number): Identity | Promise<Identity> {
    return this.#current.verify(token, policy, now);
  }
}
