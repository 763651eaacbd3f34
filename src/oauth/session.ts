// The browser's place in an authorization, kept in one signed cookie instead of server state,
// so any replica can continue a flow another one started. The cookie is a JWS (HS256) with a
// key derived from PROXY_JWT_SECRET for this purpose only, lives 10 minutes, is HttpOnly,
// SameSite=Lax (the sign-in comes back from GitLab as a top-level navigation) and Secure
// behind https. It holds no token: the vendor's request, the sign-in's state and PKCE
// verifier, and once signed in the approver and the CSRF token of the consent form.
import { createHmac } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { Approver } from '../store/store.ts';

export const COOKIE = 'gsp_oauth';
const LIFETIME_S = 600;

export interface FlowState {
  /** The vendor's request, checked (src/oauth/authorize-request.ts). */
  clientId: string;
  redirectUri: string;
  redirectUriSent: boolean;
  state: string | undefined;
  scope: string;
  codeChallenge: string | undefined;
  /** The approver sign-in at GitLab. */
  signInState: string;
  signInVerifier: string;
  /** Set once the approver signed in and is allowed to approve. */
  approver?: Approver;
  approverRule?: string;
  csrf?: string;
}

export class FlowCookies {
  readonly #key: Uint8Array;

  constructor(jwtSecret: Uint8Array) {
    this.#key = createHmac('sha256', jwtSecret).update('gitlab-scope-proxy oauth flow cookie').digest();
  }

  async seal(flow: FlowState): Promise<string> {
    return new SignJWT({ flow }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(`${LIFETIME_S}s`).sign(this.#key);
  }

  /** The flow, or undefined when the cookie is missing, forged or expired. */
  async open(value: string | undefined): Promise<FlowState | undefined> {
    if (!value) return undefined;
    try {
      const { payload } = await jwtVerify(value, this.#key, { algorithms: ['HS256'] });
      return payload.flow as FlowState;
    } catch {
      return undefined;
    }
  }
}

export const cookieLifetimeS = LIFETIME_S;
