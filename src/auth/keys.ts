// Which algorithms each configured key may verify. Each key type gets its own algorithm so
// an HMAC secret can never verify an RS256 token or the other way round, and "none" is
// never accepted.
import { createPublicKey, createPrivateKey, type KeyObject } from 'node:crypto';

export type AsymmetricAlg = 'RS256' | 'ES256' | 'EdDSA';

export function algorithmFor(key: KeyObject): AsymmetricAlg {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error('RSA keys must be at least 2048 bits');
    return 'RS256';
  }
  if (type === 'ec') {
    if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('EC keys must use the P-256 curve (ES256)');
    return 'ES256';
  }
  if (type === 'ed25519') return 'EdDSA';
  throw new Error(`unsupported key type ${type ?? 'unknown'} (use RSA, EC P-256 or Ed25519)`);
}

export function publicKeyFromPem(pem: string): { key: KeyObject; alg: AsymmetricAlg } {
  const key = createPublicKey(pem);
  return { key, alg: algorithmFor(key) };
}

export function privateKeyFromPem(pem: string): { key: KeyObject; alg: AsymmetricAlg } {
  const key = createPrivateKey(pem);
  return { key, alg: algorithmFor(key) };
}
