// Mints client tokens for `gitlab-scope-proxy token`.
import { randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

export interface MintOptions {
  client: string;
  audience: string;
  issuer: string | undefined;
  expiresInSeconds: number;
  jti?: string;
  /** Names the signing key in the token's header, so that a verifier holding several keys picks it. */
  kid?: string | undefined;
  key: { kind: 'secret'; secret: Uint8Array } | { kind: 'private'; key: KeyObject; alg: string };
  now?: number;
  /** Further claims, e.g. the OAuth grant id "gid" (src/oauth/). */
  claims?: Record<string, string | number>;
}

export interface Minted {
  token: string;
  client: string;
  jti: string;
  kid: string | undefined;
  /** Unix seconds. */
  iat: number;
  exp: number;
}

export async function mintToken(opts: MintOptions): Promise<string> {
  return (await mint(opts)).token;
}

/** The token and what a revocation list or an inventory needs about it. */
export async function mint(opts: MintOptions): Promise<Minted> {
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const exp = iat + opts.expiresInSeconds;
  const jti = opts.jti ?? randomUUID();
  const alg = opts.key.kind === 'secret' ? 'HS256' : opts.key.alg;
  let jwt = new SignJWT({ ...opts.claims })
    .setProtectedHeader({ alg, typ: 'JWT', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setSubject(opts.client)
    .setAudience(opts.audience)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti);
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  const token = await jwt.sign(opts.key.kind === 'secret' ? opts.key.secret : opts.key.key);
  return { token, client: opts.client, jti, kid: opts.kid, iat, exp };
}

/** "90d", "12h", "30m", "3600s" or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+)([smhdw]?)$/.exec(text);
  if (!m) throw new Error(`bad duration ${JSON.stringify(text)} (use e.g. 90d, 12h, 30m)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  const seconds = Number(m[1]) * unit;
  if (seconds <= 0) throw new Error('duration must be positive');
  return seconds;
}
