// Every way a client token can be wrong gives 401 in GitLab's JSON, and nothing reaches GitLab.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  packit:
    allow: [GET /api/v4/projects/:id]
    revoked_jti: [stolen-token]
  retired:
    disabled: true
    allow: [GET /api/v4/projects/:id]
  rotated:
    tokens_issued_after: 2026-06-01T00:00:00Z
    allow: [GET /api/v4/projects/:id]
`;

const AUD = 'gitlab-scope-proxy';
const now = (): number => Math.floor(Date.now() / 1000);
const hs = (secret: string) => new TextEncoder().encode(secret);

async function expect401(h: Harness, headers: Record<string, string>, reason: string | RegExp): Promise<void> {
  const before = h.audit.length;
  const res = await fetch(`${h.url}/api/v4/projects/1`, { headers });
  expect(res.status).toBe(401);
  expect(((await res.json()) as { message: string }).message).toMatch(/^401 Unauthorized/);
  await h.waitForAudit(before + 1);
  expect(h.audit[before]!.reason).toMatch(reason);
  expect(h.audit[before]!.decision).toBe('deny');
  expect(h.standin.requests).toHaveLength(0);
}

describe('identity failures (HS256 secret configured)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'p.yaml': POLICY } });
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  it('accepts a valid token (control)', async () => {
    const res = await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await h.token('packit') } });
    expect(res.status).toBe(200);
    expect(h.standin.requests).toHaveLength(1);
  });

  it('no token', () => expect401(h, {}, 'no-token'));

  it('alg: none, with and without a signature part', async () => {
    const jwt = new UnsecuredJWT({}).setSubject('packit').setAudience(AUD).setExpirationTime(now() + 600).encode();
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'not-a-jwt');
    await expect401(h, { 'PRIVATE-TOKEN': `${jwt}c2ln` }, /algorithm-not-allowed|malformed-token/);
  });

  it('signed with another key', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('packit').setAudience(AUD)
      .setExpirationTime(now() + 600).sign(hs(randomBytes(32).toString('hex')));
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'bad-signature');
  });

  it('expired', async () => {
    const jwt = await h.token('packit', { now: Date.now() - 7200_000, expiresInSeconds: 3600 });
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'token-expired');
  });

  it('without exp', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('packit').setAudience(AUD).sign(hs(h.jwtSecret));
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, /claim-exp|malformed-token/);
  });

  it('wrong audience', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('packit').setAudience('another-service')
      .setExpirationTime(now() + 600).sign(hs(h.jwtSecret));
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'claim-aud');
  });

  it('not yet valid (nbf in the future)', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('packit').setAudience(AUD)
      .setNotBefore(now() + 3600).setExpirationTime(now() + 7200).sign(hs(h.jwtSecret));
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'claim-nbf');
  });

  it('unknown client', async () => expect401(h, { 'PRIVATE-TOKEN': await h.token('nobody') }, 'unknown-client'));
  it('disabled client', async () => expect401(h, { 'PRIVATE-TOKEN': await h.token('retired') }, 'client-disabled'));
  it('revoked jti', async () => expect401(h, { 'PRIVATE-TOKEN': await h.token('packit', { jti: 'stolen-token' }) }, 'token-revoked'));

  it('issued before tokens_issued_after', async () => {
    const old = await h.token('rotated', { now: Date.parse('2026-05-01T00:00:00Z'), expiresInSeconds: 10 * 365 * 86400 });
    await expect401(h, { 'PRIVATE-TOKEN': old }, 'issued-before-cutoff');
    const fresh = await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await h.token('rotated') } });
    expect(fresh.status).toBe(200);
  });

  it('the real GitLab token presented as a client token', () => expect401(h, { 'PRIVATE-TOKEN': h.realToken }, 'not-a-jwt'));

  it('an RS256 token when only the HMAC secret is configured', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('packit').setAudience(AUD)
      .setExpirationTime(now() + 600).sign(privateKey);
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'algorithm-not-allowed');
  });

  it('a Bearer and a PRIVATE-TOKEN at once', async () => {
    const jwt = await h.token('packit');
    await expect401(h, { 'PRIVATE-TOKEN': jwt, Authorization: `Bearer ${jwt}` }, 'ambiguous-credentials');
  });

  it('a revocation takes effect on reload even for a cached token', async () => {
    const jwt = await h.token('packit', { jti: 'later-revoked' });
    expect((await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(200);
    writeFileSync(join(h.policyDir, 'p.yaml'), POLICY.replace('[stolen-token]', '[stolen-token, later-revoked]'));
    h.proxy.reload();
    h.standin.reset();
    await expect401(h, { 'PRIVATE-TOKEN': jwt }, 'token-revoked');
    writeFileSync(join(h.policyDir, 'p.yaml'), POLICY);
    h.proxy.reload();
  });
});

describe('public keys: RS256, ES256, EdDSA, JWKS', () => {
  const keyDir = mkdtempSync(join(tmpdir(), 'gsp-keys-'));
  const pairs = {
    RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    EdDSA: generateKeyPairSync('ed25519'),
  };

  for (const [alg, pair] of Object.entries(pairs)) {
    it(`verifies ${alg} tokens with PROXY_JWT_PUBLIC_KEY_FILE and refuses HS256 tokens signed with the public key`, async () => {
      const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
      const file = join(keyDir, `${alg}.pem`);
      writeFileSync(file, pem);
      const h = await startHarness({ policies: { 'p.yaml': POLICY }, env: { PROXY_JWT_SECRET: '', PROXY_JWT_PUBLIC_KEY_FILE: file } });
      try {
        const good = await new SignJWT({}).setProtectedHeader({ alg }).setSubject('packit').setAudience(AUD)
          .setIssuedAt().setExpirationTime(now() + 600).sign(pair.privateKey);
        expect((await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': good } })).status).toBe(200);
        h.standin.reset();
        // Key confusion: the public key's bytes used as an HMAC secret.
        const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('packit').setAudience(AUD)
          .setExpirationTime(now() + 600).sign(new TextEncoder().encode(pem));
        await expect401(h, { 'PRIVATE-TOKEN': confused }, 'algorithm-not-allowed');
      } finally {
        await h.close();
      }
    });
  }

  it('verifies tokens against a JWKS URL and refuses unknown key ids', async () => {
    const jwk = { ...(await exportJWK(pairs.ES256.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwks: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const h = await startHarness({
      policies: { 'p.yaml': POLICY },
      env: { PROXY_JWT_SECRET: '', PROXY_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`, PROXY_JWT_ISSUER: 'https://idp.example.test' },
    });
    try {
      const sign = (kid: string, iss = 'https://idp.example.test') => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject('packit')
        .setAudience(AUD).setIssuer(iss).setExpirationTime(now() + 600).sign(pairs.ES256.privateKey);
      expect((await fetch(`${h.url}/api/v4/projects/1`, { headers: { Authorization: `Bearer ${await sign('k1')}` } })).status).toBe(200);
      h.standin.reset();
      await expect401(h, { Authorization: `Bearer ${await sign('k2')}` }, 'unknown-key');
      await expect401(h, { Authorization: `Bearer ${await sign('k1', 'https://evil.example.test')}` }, 'claim-iss');
    } finally {
      await h.close();
      jwks.close();
    }
  });
});
