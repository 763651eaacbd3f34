// Puts the OAuth provider together from the configuration: the store, the grant-checking
// verifier, the approver sign-in at GitLab and the endpoints. server.ts calls this once.
import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { mintToken } from '../auth/mint.ts';
import type { TokenVerifier } from '../auth/verify.ts';
import type { Config } from '../config/env.ts';
import type { RequestContext } from '../context.ts';
import type { Policy } from '../types.ts';
import { openConfiguredStore } from '../edge/store.ts';
import type { Store } from '../store/store.ts';
import { gitlabSignIn } from './gitlab-signin.ts';
import { GrantCheckingVerifier } from './grant-check.ts';
import { createOAuthApp } from './routes.ts';
import { FlowCookies } from './session.ts';

export interface OAuthProvider {
  app: Hono<{ Bindings: HttpBindings }>;
  /** Use instead of the plain verifier: OAuth access tokens die with their grant. */
  verifier: TokenVerifier;
  store: Store;
  close: () => Promise<void>;
}

export interface OAuthWiring {
  policy: () => Policy;
  verifier: TokenVerifier;
  gitlabToken: () => string;
  jwtSecret: () => Uint8Array;
  onError: (err: unknown, ctx: RequestContext) => void;
  /** The store, when the caller opened it (and closes it); else opened here. */
  store?: Store | undefined;
}

export async function startOAuth(config: Config, w: OAuthWiring): Promise<OAuthProvider | undefined> {
  const oauth = config.oauth;
  if (!oauth || !config.publicUrl) return undefined;
  const store = w.store ?? await openConfiguredStore(config);
  const verifier = new GrantCheckingVerifier(w.verifier, store);
  const publicBase = config.publicUrl.toString().replace(/\/+$/, '');
  const secret = w.jwtSecret();
  const app = createOAuthApp({
    policy: w.policy,
    store,
    verifier,
    signIn: gitlabSignIn({
      gitlabUrl: config.gitlabUrl, gitlabRoot: config.gitlabRoot, browserUrl: oauth.gitlabBrowserUrl,
      clientId: oauth.gitlabClientId, clientSecret: oauth.gitlabClientSecret, callbackUrl: `${publicBase}/oauth/approver/callback`,
      gitlabToken: w.gitlabToken, ca: config.gitlabCa, timeoutMs: config.limits.upstreamResponseTimeoutMs,
    }),
    approvers: oauth.approvers,
    cookies: new FlowCookies(secret),
    mint: (client, ttlS, claims) => mintToken({
      client, audience: config.jwt.audience, issuer: config.jwt.issuer, expiresInSeconds: ttlS, claims,
      key: { kind: 'secret', secret: w.jwtSecret() },
    }),
    publicBase,
    onError: w.onError,
  });
  return { app, verifier, store, close: () => (w.store ? Promise.resolve() : store.close()) };
}
