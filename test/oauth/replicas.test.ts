// Two proxies sharing one real redis-server: a code approved on one is one-time on both, a
// refresh token rotated on one is old on the other, and a revocation on one stops the access
// token on the other.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { approveInBrowser, startOAuthProxy, ZOOM_REDIRECT, type OAuthProxy } from './support.ts';

let redis: RedisServer;
let a: OAuthProxy;
let b: OAuthProxy;

beforeAll(async () => {
  redis = await startRedis();
  const jwtSecret = randomBytes(32).toString('base64url');
  a = await startOAuthProxy({ redisUrl: redis.url, jwtSecret });
  b = await startOAuthProxy({ redisUrl: redis.url, jwtSecret, clientSecret: a.clientSecret });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await redis?.close();
});

function token(p: OAuthProxy, form: Record<string, string>, path = '/oauth/token'): Promise<Response> {
  // Both replicas hold the same registration: one client id and secret for the vendor.
  return fetch(`${p.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${a.clientId}:${a.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams(form),
  });
}

async function approvedCode(p: OAuthProxy): Promise<{ code: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const url = `${p.url}/oauth/authorize?${new URLSearchParams({ client_id: p.clientId, redirect_uri: ZOOM_REDIRECT, response_type: 'code', state: 's', code_challenge: challenge, code_challenge_method: 'S256' })}`;
  const { location } = await approveInBrowser(url, 'alice');
  return { code: new URL(location).searchParams.get('code')!, verifier };
}

it('honours each other\'s one-time codes, refresh rotations and revocations', async () => {
  const { code, verifier } = await approvedCode(a);
  const exchange = { grant_type: 'authorization_code', code, redirect_uri: ZOOM_REDIRECT, code_verifier: verifier };
  const first = await token(a, exchange);
  expect(first.status).toBe(200);
  const tokens = await first.json() as { access_token: string; refresh_token: string };
  // The same code on the other replica: already used.
  const replay = await token(b, exchange);
  expect(replay.status).toBe(400);
  expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
  // The replay revoked the grant on both (RFC 6749 4.1.2): start a fresh one.
  expect((await fetch(`${b.url}/api/v4/user`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);

  const fresh = await approvedCode(b);
  const issued = await (await token(b, { grant_type: 'authorization_code', code: fresh.code, redirect_uri: ZOOM_REDIRECT, code_verifier: fresh.verifier })).json() as { access_token: string; refresh_token: string };
  // Rotated on a, the old refresh token is reuse on b.
  const rotated = await token(a, { grant_type: 'refresh_token', refresh_token: issued.refresh_token });
  expect(rotated.status).toBe(200);
  const next = await rotated.json() as { access_token: string; refresh_token: string };
  expect((await fetch(`${b.url}/api/v4/user`, { headers: { authorization: `Bearer ${next.access_token}` } })).status).toBe(200);
  // Revoked on b, the access token stops on a.
  expect((await token(b, { token: next.refresh_token }, '/oauth/revoke')).status).toBe(200);
  a.h.standin.reset();
  expect((await fetch(`${a.url}/api/v4/user`, { headers: { authorization: `Bearer ${next.access_token}` } })).status).toBe(401);
  expect(a.h.standin.requests).toEqual([]);
  const reuse = await token(b, { grant_type: 'refresh_token', refresh_token: issued.refresh_token });
  expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' });
});
