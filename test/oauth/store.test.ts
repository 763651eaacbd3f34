// The store contract, run against a real SQLite file and a real redis-server.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { CodeRecord, Grant, Store } from '../../src/store/store.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';

const id = (): string => randomBytes(8).toString('hex');
const NOW = Date.now();
const code = (over: Partial<CodeRecord> = {}): CodeRecord => ({
  grantId: id(), client: 'zoom', clientId: 'zoom-chatbot', redirectUri: 'https://applications.zoom.us/addon/gitlab/authorization',
  redirectUriSent: true, scope: 'api', codeChallenge: undefined, approver: { username: 'alice', id: 7 }, expiresAt: NOW + 60_000, ...over,
});
const grant = (over: Partial<Grant> = {}): Grant => ({
  id: id(), client: 'zoom', clientId: 'zoom-chatbot', scope: 'api', approver: { username: 'alice', id: 7 }, createdAt: NOW,
  refreshExpiresAt: NOW + 3_600_000, revokedAt: undefined, revokedReason: undefined, ...over,
});

function contract(name: string, open: () => Promise<Store>, second: () => Promise<Store>): void {
  describe(name, () => {
    let a: Store;
    let b: Store;
    beforeAll(async () => {
      a = await open();
      b = await second();
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('hands a code out once, to exactly one of two concurrent consumers, and knows a replay', async () => {
      const h = id();
      const record = code();
      await a.putCode(h, record);
      const results = await Promise.all([a.consumeCode(h, NOW), b.consumeCode(h, NOW)]);
      expect(results.map((r) => r.status).sort()).toEqual(['ok', 'replayed']);
      const replay = await b.consumeCode(h, NOW);
      expect(replay).toEqual({ status: 'replayed', record });
      expect(await a.consumeCode(id(), NOW)).toEqual({ status: 'unknown' });
    });

    it('refuses an expired code', async () => {
      const h = id();
      await a.putCode(h, code({ expiresAt: NOW - 1 }));
      expect((await b.consumeCode(h, NOW)).status).toBe('unknown');
    });

    it('rotates refresh tokens and revokes the grant when an old one comes back', async () => {
      const g = grant();
      await a.createGrant(g, 'r0');
      const first = await b.rotateRefresh(g.id, 'r0', 'r1', NOW + 7_200_000, NOW);
      expect(first.status).toBe('ok');
      expect(first.status === 'ok' && first.grant.refreshExpiresAt).toBe(NOW + 7_200_000);
      expect((await a.rotateRefresh(g.id, 'r1', 'r2', NOW + 7_200_000, NOW)).status).toBe('ok');
      // A token never issued for this grant is simply unknown: it must not let anyone revoke it.
      expect((await a.rotateRefresh(g.id, 'forged', 'x', NOW + 7_200_000, NOW)).status).toBe('unknown');
      expect((await a.getGrant(g.id))?.revokedAt).toBeUndefined();
      const reuse = await b.rotateRefresh(g.id, 'r0', 'r3', NOW + 7_200_000, NOW);
      expect(reuse.status).toBe('reused');
      const after = await a.getGrant(g.id);
      expect(after?.revokedReason).toBe('refresh-reuse');
      // The current token is dead too.
      expect((await a.rotateRefresh(g.id, 'r2', 'r4', NOW + 7_200_000, NOW)).status).toBe('revoked');
    });

    it('lets only one of two concurrent rotations of the same token win', async () => {
      const g = grant();
      await a.createGrant(g, 's0');
      const results = await Promise.all([a.rotateRefresh(g.id, 's0', 's1a', NOW + 1000, NOW), b.rotateRefresh(g.id, 's0', 's1b', NOW + 1000, NOW)]);
      expect(results.map((r) => r.status).sort()).toEqual(['ok', 'reused']);
    });

    it('refuses an expired refresh token', async () => {
      const g = grant({ refreshExpiresAt: NOW - 1 });
      await a.createGrant(g, 'e0');
      expect((await a.rotateRefresh(g.id, 'e0', 'e1', NOW + 1000, NOW)).status).toBe('expired');
    });

    it('lists and revokes grants, seen from the other instance', async () => {
      const g = grant({ client: 'calero' });
      await a.createGrant(g, id());
      expect((await b.listGrants()).map((x) => x.id)).toContain(g.id);
      const revoked = await b.revokeGrant(g.id, 'revoked', NOW + 5);
      expect(revoked).toMatchObject({ id: g.id, revokedAt: NOW + 5, revokedReason: 'revoked' });
      // Revoking again keeps the first time and reason.
      expect(await a.revokeGrant(g.id, 'other', NOW + 9)).toMatchObject({ revokedAt: NOW + 5, revokedReason: 'revoked' });
      expect(await a.revokeGrant('nope', 'revoked', NOW)).toBeUndefined();
    });

    it('counts across instances and starts over after the time to live', async () => {
      const key = id();
      expect(await a.increment(key, 1, 60_000)).toBe(1);
      expect(await b.increment(key, 2, 60_000)).toBe(3);
      expect(await a.increment(key, -1, 60_000)).toBe(2);
      const short = id();
      expect(await a.increment(short, 5, 1)).toBe(5);
      // A 1 ms counter: wait for its expiry by polling the store itself, never a fixed sleep.
      let value = 5;
      for (let i = 0; i < 10_000 && value === 5; i++) value = await b.increment(short, 0, 60_000);
      expect(value).toBe(0);
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'gsp-store-'));
const file = join(dir, 'nested', 'state.sqlite');
contract('SQLite store (one file, two connections)', async () => new SqliteStore(file), async () => new SqliteStore(file));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});
contract('Redis store (two clients of one redis-server)', () => RedisStore.connect(redis.url), () => RedisStore.connect(redis.url));
