// PKCE (RFC 7636) with S256 only: "plain" gives no protection against a stolen code, and
// GitLab's Doorkeeper accepts S256 too. A verifier is 43-128 unreserved characters (4.1);
// the challenge is BASE64URL(SHA256(verifier)) (4.2), 43 characters.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export const validChallenge = (challenge: string): boolean => CHALLENGE.test(challenge);
export const challengeOf = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');
export const newVerifier = (): string => randomBytes(32).toString('base64url');

/** Does `verifier` answer `challenge`? Constant time; a malformed verifier never does. */
export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!VERIFIER.test(verifier) || !CHALLENGE.test(challenge)) return false;
  return timingSafeEqual(Buffer.from(challengeOf(verifier)), Buffer.from(challenge));
}
