// Mints client tokens for `gitlab-scope-proxy token`.
import { randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

export interface MintOptions {
  client: string;
  audience: string;
  issuer: string | undefined;
  expiresInSeconds: number;
  jti?: string;
  key: { kind: 'secret'; secret: Uint8Array } | { kind: 'private'; key: KeyObject; alg: string };
  now?: number;
  /** Further claims, e.g. the OAuth grant id "gid" (src/oauth/). */
  claims?: Record<string, string | number>;
}

export async function mintToken(opts: MintOptions): Promise<string> {
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const alg = opts.key.kind === 'secret' ? 'HS256' : opts.key.alg;
  let jwt = new SignJWT({ ...opts.claims })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setSubject(opts.client)
    .setAudience(opts.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + opts.expiresInSeconds)
    .setJti(opts.jti ?? randomUUID());
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  return jwt.sign(opts.key.kind === 'secret' ? opts.key.secret : opts.key.key);
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
