// Authentication: turns the client's token into a client of the current policy, or a 401
// with a reason for the audit log. Verified tokens are cached until they expire or the
// policy changes, so the signature is not checked again on every call.
import type { KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
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

const CLOCK_TOLERANCE_S = 30;
const CACHE_MAX = 10_000;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export class TokenVerifier {
  readonly #getKey: JWTVerifyGetKey;
  readonly #algorithms: string[];
  readonly #settings: JwtSettings;
  readonly #cache = new Map<string, Cached>();
  #cachePolicy: Policy | undefined;

  constructor(settings: JwtSettings) {
    this.#settings = settings;
    const asym: { key: KeyObject; alg: string } | undefined = settings.publicKeyPem ? publicKeyFromPem(settings.publicKeyPem) : undefined;
    const jwks = settings.jwksUrl ? createRemoteJWKSet(settings.jwksUrl) : undefined;
    this.#algorithms = [
      ...(settings.secret ? ['HS256'] : []),
      ...(asym ? [asym.alg] : []),
      ...(jwks ? ['RS256', 'ES256', 'EdDSA'] : []),
    ];
    this.#getKey = async (header, token) => {
      if (header.alg === 'HS256' && settings.secret) return settings.secret;
      if (asym && header.alg === asym.alg && (!jwks || !header.kid)) return asym.key;
      if (jwks) return jwks(header, token);
      throw new errors.JOSEAlgNotAllowed('no key for this algorithm');
    };
  }

  async verify(token: string, policy: Policy, now = Date.now()): Promise<Identity> {
    if (this.#cachePolicy !== policy) {
      this.#cache.clear();
      this.#cachePolicy = policy;
    }
    let entry = this.#cache.get(token);
    if (entry && entry.exp * 1000 <= now) {
      this.#cache.delete(token);
      entry = undefined;
    }
    if (!entry) {
      entry = await this.#verifySignature(token, now);
      if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(token, entry);
    }
    return { client: admit(entry, policy), jti: entry.jti };
  }

  async #verifySignature(token: string, now: number): Promise<Cached> {
    if (!JWT_SHAPE.test(token)) throw unauthorized('not-a-jwt');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#getKey, {
        algorithms: this.#algorithms,
        audience: this.#settings.audience,
        ...(this.#settings.issuer ? { issuer: this.#settings.issuer } : {}),
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(now),
      }));
    } catch (err) {
      throw unauthorized(joseReason(err));
    }
    if (typeof payload.iat === 'number' && payload.iat > now / 1000 + CLOCK_TOLERANCE_S) throw unauthorized('issued-in-future');
    if (payload.jti !== undefined && typeof payload.jti !== 'string') throw unauthorized('bad-jti');
    return { sub: payload.sub!, jti: payload.jti, iat: payload.iat, exp: payload.exp! };
  }
}

/** Checks against the current policy, on every call (cheap; the policy may have changed). */
function admit(entry: Cached, policy: Policy): Client {
  const client = policy.clients.get(entry.sub);
  if (!client) throw unauthorized('unknown-client');
  if (client.disabled) throw unauthorized('client-disabled');
  if (entry.jti !== undefined && client.revokedJti.has(entry.jti)) throw unauthorized('token-revoked');
  if (client.tokensIssuedAfter !== undefined && (entry.iat === undefined || entry.iat < client.tokensIssuedAfter)) {
    throw unauthorized('issued-before-cutoff');
  }
  return client;
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
