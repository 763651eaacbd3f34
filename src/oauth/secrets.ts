// The opaque secrets the proxy hands out, and how they are stored: only their SHA-256.
//   authorization code   gspc_<43 random characters>
//   refresh token        gspr_<grant id>.<43 random characters>   (the grant id finds its family)
// 32 random bytes each (RFC 6749 10.10: the probability of guessing must be negligible).
import { createHash, randomBytes } from 'node:crypto';

const GRANT_ID = /^[a-f0-9]{32}$/;

export const sha256hex = (text: string): string => createHash('sha256').update(text).digest('hex');
export const newGrantId = (): string => randomBytes(16).toString('hex');
export const newCode = (): string => `gspc_${randomBytes(32).toString('base64url')}`;
export const newRefreshToken = (grantId: string): string => `gspr_${grantId}.${randomBytes(32).toString('base64url')}`;

/** The grant id a refresh token names, or undefined when it is not one of ours. */
export function refreshTokenGrant(token: string): string | undefined {
  const m = /^gspr_([a-f0-9]{32})\.[A-Za-z0-9_-]{43}$/.exec(token);
  return m && GRANT_ID.test(m[1]!) ? m[1] : undefined;
}
