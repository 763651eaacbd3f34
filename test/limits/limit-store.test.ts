// The shared limits' store operations (src/store/): run against a real redis-server and a real
// SQLite file, each through two connections, as two replicas would use them.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { LimitCheck, Store } from '../../src/store/store.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';

const client = (): string => `c-${randomBytes(6).toString('hex')}`;
/** 3 an hour: no token comes back while a test runs, however slow the machine. */
const rate = (burst = 3, id = '3/3600000/3'): LimitCheck['rate'] => ({ id, intervalMs: 1_200_000, burst });
const slot = (member: string, max: number, leaseMs = 60_000): LimitCheck['slot'] => ({ member, max, leaseMs });

function contract(name: string, open: () => Promise<[Store, Store]>): void {
  describe(name, () => {
    let a: Store;
    let b: Store;
    beforeAll(async () => {
      [a, b] = await open();
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('admits a burst from both connections together, exactly, then says how long to wait', async () => {
      const c = client();
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).admitRequest(c, { rate: rate() })));
      expect(results.filter((r) => r.admitted)).toHaveLength(3);
      const refused = results.filter((r) => !r.admitted);
      expect(refused).toHaveLength(5);
      for (const r of refused) {
        expect(r).toMatchObject({ limit: 'rate' });
        // The next request passes one interval (20 minutes) after the first: less now.
        expect(r.admitted === false && r.limit === 'rate' && r.retryAfterMs).toBeGreaterThan(0);
        expect(r.admitted === false && r.limit === 'rate' && r.retryAfterMs).toBeLessThanOrEqual(1_200_000);
      }
      // Changed settings (a policy reload) start a full bucket; other clients have their own.
      expect(await a.admitRequest(c, { rate: rate(1, '1/3600000/1') })).toEqual({ admitted: true });
      expect(await b.admitRequest(client(), { rate: rate() })).toEqual({ admitted: true });
    });

    it('holds at most `max` slots across both connections, and gives them back', async () => {
      const c = client();
      const results = await Promise.all(['a1', 'b1', 'a2', 'b2', 'a3'].map((m) => (m[0] === 'a' ? a : b).admitRequest(c, { slot: slot(m, 2) })));
      expect(results.filter((r) => r.admitted)).toHaveLength(2);
      expect(results.filter((r) => !r.admitted)).toEqual([{ admitted: false, limit: 'concurrency' }, { admitted: false, limit: 'concurrency' }, { admitted: false, limit: 'concurrency' }]);
      const holders = ['a1', 'b1', 'a2', 'b2', 'a3'].filter((_, i) => results[i]!.admitted);
      await a.releaseSlot(c, holders[0]!);
      await a.releaseSlot(c, 'never-held');
      expect(await b.admitRequest(c, { slot: slot('b9', 2) })).toEqual({ admitted: true });
      expect(await a.admitRequest(c, { slot: slot('a9', 2) })).toEqual({ admitted: false, limit: 'concurrency' });
    });

    it('takes no token from the bucket for a request the concurrency limit refuses', async () => {
      const c = client();
      expect(await a.admitRequest(c, { rate: rate(2), slot: slot('x', 1) })).toEqual({ admitted: true });
      expect(await b.admitRequest(c, { rate: rate(2), slot: slot('y', 1) })).toEqual({ admitted: false, limit: 'concurrency' });
      await a.releaseSlot(c, 'x');
      expect(await b.admitRequest(c, { rate: rate(2), slot: slot('y', 1) })).toEqual({ admitted: true });
      await b.releaseSlot(c, 'y');
      expect(await a.admitRequest(c, { rate: rate(2), slot: slot('z', 1) })).toMatchObject({ admitted: false, limit: 'rate' });
    });

    it('frees the slot of a holder that stopped renewing it (a replica that died) when its lease runs out', async () => {
      const c = client();
      // A lease of 0 ms has run out by the next command.
      expect(await a.admitRequest(c, { slot: slot('dead', 1, 0) })).toEqual({ admitted: true });
      expect(await b.admitRequest(c, { slot: slot('live', 1) })).toEqual({ admitted: true });
      expect(await a.admitRequest(c, { slot: slot('next', 1) })).toEqual({ admitted: false, limit: 'concurrency' });
    });

    it('keeps a slot whose lease is renewed, and puts back one that had expired', async () => {
      const c = client();
      expect(await a.admitRequest(c, { slot: slot('long', 1, 0) })).toEqual({ admitted: true });
      await a.holdSlots(c, ['long'], 60_000);
      expect(await b.admitRequest(c, { slot: slot('other', 1) })).toEqual({ admitted: false, limit: 'concurrency' });
      // A request admitted while the store was out of reach counts once it is put back.
      const d = client();
      await b.holdSlots(d, ['admitted-meanwhile'], 60_000);
      expect(await a.admitRequest(d, { slot: slot('new', 1) })).toEqual({ admitted: false, limit: 'concurrency' });
      await b.ping();
    });
  });
}

let redis: RedisServer;
const dir = mkdtempSync(join(tmpdir(), 'gsp-limits-'));
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

contract('Redis', async () => [await RedisStore.connect(redis.url), await RedisStore.connect(redis.url)]);
contract('SQLite', async () => [new SqliteStore(join(dir, 'state.sqlite')), new SqliteStore(join(dir, 'state.sqlite'))]);
