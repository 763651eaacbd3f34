// The private key `token --key FILE` signs with, and a message that says which kind of key was
// expected when FILE holds another (a public key, a certificate, an HS256 secret, an
// unsupported curve). Never echoes the file's content.
import { basename } from 'node:path';
import { privateKeyFromPem, type AsymmetricAlg } from './keys.ts';
import type { KeyObject } from 'node:crypto';

const EXPECTED = 'a PEM private key: RSA (2048 bits or more, RS256), EC P-256 (ES256) or Ed25519 (EdDSA)';

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

export function signingKeyFromPem(pem: string, file: string): { key: KeyObject; alg: AsymmetricAlg } {
  const block = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
  if (block === undefined) {
    throw new SigningKeyError(`${file} is not PEM; expected ${EXPECTED}. An HS256 secret is not a --key: set PROXY_JWT_SECRET_FILE instead`);
  }
  if (block === 'PUBLIC KEY' || block === 'RSA PUBLIC KEY') {
    throw new SigningKeyError(`${file} holds a public key; expected ${EXPECTED} (the public half goes in PROXY_JWT_PUBLIC_KEY_FILE)`);
  }
  if (block === 'CERTIFICATE') throw new SigningKeyError(`${file} holds a certificate; expected ${EXPECTED}`);
  if (block === 'ENCRYPTED PRIVATE KEY') throw new SigningKeyError(`${file} holds an encrypted private key; expected an unencrypted one (${EXPECTED})`);
  try {
    return privateKeyFromPem(pem);
  } catch (err) {
    throw new SigningKeyError(`${file}: ${(err as Error).message.split('\n')[0]}; expected ${EXPECTED}`);
  }
}

/** The kid of a key file: its name without a .pem or .key extension. */
export function kidOfFile(file: string): string {
  return basename(file).replace(/\.(pem|key)$/, '');
}
