// Authentication: turns the client's token into a client of the current policy, or a 401
// with a reason for the audit log. Verified tokens are cached until they expire or the
// policy changes, so the signature is not checked again on every call.
//
// Several keys may verify at once (key rotation with overlap): a token's `kid` picks its key;
// a token without a kid, or with one no key has, is tried against every key of its algorithm.
import type { KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose';
import type { JwtSettings } from '../config/env.ts';
import { ProxyError } from '../errors.ts';
import type { Client, Policy, Reason } from '../types.ts';
import { publicKeyFromPem } from './keys.ts';

export interface Identity {
  client: Client;
  jti: string | undefined;
}

interface Cached {
  sub: string;
  jti: string | undefined;
  iat: number | undefined;
  exp: number;
}

export const DEFAULT_CLOCK_TOLERANCE_S = 30;
const CACHE_MAX = 10_000;

/**
 * A 401 for a token whose signature verified: it still names its client and id, so the audit
 * line and the metrics show which vendor keeps using an expired or revoked token.
 */
export class RefusedIdentity extends ProxyError {
  readonly client: string;
  readonly jti: string | undefined;

  constructor(reason: Reason, client: string, jti: string | undefined) {
    super('unauthorized', reason);
    this.client = client;
    this.jti = jti;
  }
}

interface VerificationKey {
  kid: string | undefined;
  alg: string;
  key: Uint8Array | KeyObject;
}
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export class TokenVerifier {
  readonly #keys: VerificationKey[];
  readonly #jwks: JWTVerifyGetKey | undefined;
  readonly #algorithms: string[];
  readonly #settings: JwtSettings;
  readonly #toleranceS: number;
  readonly #cache = new Map<string, Cached>();
  #cachePolicy: Policy | undefined;

  constructor(settings: JwtSettings) {
    this.#settings = settings;
    this.#toleranceS = settings.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S;
    const secrets = settings.secrets ?? (settings.secret ? [{ kid: undefined, secret: settings.secret }] : []);
    const publicKeys = settings.publicKeys ?? (settings.publicKeyPem ? [{ kid: undefined, pem: settings.publicKeyPem }] : []);
    this.#keys = [
      ...secrets.map((s) => ({ kid: s.kid, alg: 'HS256', key: s.secret })),
      ...publicKeys.map((p) => ({ kid: p.kid, ...publicKeyFromPem(p.pem) })),
    ];
    this.#jwks = settings.jwksUrl ? createRemoteJWKSet(settings.jwksUrl) : undefined;
    this.#algorithms = [...new Set([...this.#keys.map((k) => k.alg), ...(this.#jwks ? ['RS256', 'ES256', 'EdDSA'] : [])])];
  }

  /** The keys a token with this header is checked against, best match first. */
  #candidates(header: ProtectedHeaderParameters): Array<Uint8Array | KeyObject | JWTVerifyGetKey> {
    const sameAlg = this.#keys.filter((k) => k.alg === header.alg);
    const byKid = header.kid === undefined ? [] : sameAlg.filter((k) => k.kid === header.kid);
    if (byKid.length > 0) return byKid.map((k) => k.key);
    // A kid that no local key has belongs to the identity provider's JWKS, when there is one.
    if (this.#jwks && (header.kid !== undefined || sameAlg.length === 0)) return [this.#jwks];
    return sameAlg.map((k) => k.key);
  }

  /** The identity a token proves. A token verified before (cached, not expired, same policy)
   *  is answered at once, without a promise; a new one is checked asynchronously. A refusal is
   *  thrown (or the promise rejects). */
  verify(token: string, policy: Policy, now = Date.now()): Identity | Promise<Identity> {
    if (this.#cachePolicy !== policy) {
      this.#cache.clear();
      this.#cachePolicy = policy;
    }
    const entry = this.#cache.get(token);
    if (entry && entry.exp * 1000 > now) return { client: admit(entry, policy), jti: entry.jti };
    if (entry) this.#cache.delete(token);
    return this.#verifyAndCache(token, policy, now);
  }

  async #verifyAndCache(token: string, policy: Policy, now: number): Promise<Identity> {
    const entry = await this.#verifySignature(token, now);
    if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(token, entry);
    return { client: admit(entry, policy), jti: entry.jti };
  }

  async #verifySignature(token: string, now: number): Promise<Cached> {
    if (!JWT_SHAPE.test(token)) throw unauthorized('not-a-jwt');
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthorized('malformed-token');
    }
    if (header.alg === undefined || !this.#algorithms.includes(header.alg)) throw unauthorized('algorithm-not-allowed');
    const candidates = this.#candidates(header);
    let payload: JWTPayload | undefined;
    let failure: unknown;
    for (const key of candidates) {
      try {
        ({ payload } = await jwtVerify(token, key as Uint8Array, {
          algorithms: this.#algorithms,
          audience: this.#settings.audience,
          ...(this.#settings.issuer ? { issuer: this.#settings.issuer } : {}),
          requiredClaims: ['exp', 'sub'],
          clockTolerance: this.#toleranceS,
          currentDate: new Date(now),
        }));
        break;
      } catch (err) {
        failure = err;
        // Another key may have signed it; any other failure is the token's own.
        if (!(err instanceof errors.JWSSignatureVerificationFailed)) break;
      }
    }
    if (payload === undefined) throw verificationRefusal(failure ?? new errors.JOSEAlgNotAllowed('no key for this algorithm'));
    if (typeof payload.iat === 'number' && payload.iat > now / 1000 + this.#toleranceS) throw unauthorized('issued-in-future');
    if (payload.jti !== undefined && typeof payload.jti !== 'string') throw unauthorized('bad-jti');
    return { sub: payload.sub!, jti: payload.jti, iat: payload.iat, exp: payload.exp! };
  }
}

/** Checks against the current policy, on every call (cheap; the policy may have changed). */
function admit(entry: Cached, policy: Policy): Client {
  const client = policy.clients.get(entry.sub);
  if (!client) throw unauthorized('unknown-client');
  const refused = (reason: Reason): RefusedIdentity => new RefusedIdentity(reason, client.name, entry.jti);
  if (client.disabled) throw refused('client-disabled');
  if (entry.jti !== undefined && client.revokedJti.has(entry.jti)) throw refused('token-revoked');
  if (client.tokensIssuedAfter !== undefined && (entry.iat === undefined || entry.iat < client.tokensIssuedAfter)) {
    throw refused('issued-before-cutoff');
  }
  return client;
}

/**
 * The 401 for a failed verification. An expired token's signature did verify (jose checks the
 * signature before the claims): it keeps its client and id, for the audit line and metrics.
 */
function verificationRefusal(err: unknown): ProxyError {
  const reason = joseReason(err);
  if (err instanceof errors.JWTExpired && typeof err.payload.sub === 'string') {
    return new RefusedIdentity(reason, err.payload.sub, typeof err.payload.jti === 'string' ? err.payload.jti : undefined);
  }
  return unauthorized(reason);
}

const CLAIM_REASONS = ['claim-exp', 'claim-aud', 'claim-iss', 'claim-nbf', 'claim-sub', 'claim-iat'] as const satisfies readonly Reason[];

function joseReason(err: unknown): Reason {
  if (err instanceof errors.JWTExpired) return 'token-expired';
  if (err instanceof errors.JWTClaimValidationFailed) return (CLAIM_REASONS as readonly string[]).includes(`claim-${err.claim}`) ? `claim-${err.claim}` as Reason : 'bad-claim';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm-not-allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad-signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown-key';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError && err.code === 'ERR_JWKS_TIMEOUT') return 'jwks-unavailable';
  if (err instanceof errors.JOSEError) return 'malformed-token';
  return 'verification-failed';
}

const unauthorized = (reason: Reason, detail?: string): ProxyError => new ProxyError('unauthorized', reason, { detail });
