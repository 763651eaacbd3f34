// The shared limiter's bookkeeping around the store, with a store whose answers the test
// releases one by one, so that the orders that matter (a client leaving while its admission is
// under way) happen every time. Admission against a real Redis is test/limits/replicas.test.ts.
import { describe, expect, it } from 'vitest';
import { ClientLimiter } from '../../src/limits/client-limits.ts';
import { SharedLimiter, type LimitStore } from '../../src/limits/shared-limits.ts';
import type { LimitCheck, LimitResult } from '../../src/store/store.ts';

/** A store that records calls and answers admissions only when the test says. */
function heldStore() {
  const calls: string[] = [];
  const waiting: Array<(r: LimitResult) => void> = [];
  const store: LimitStore = {
    admitRequest: (client: string, check: LimitCheck) => {
      calls.push(`admit ${client} ${check.slot?.member ?? '-'}`);
      return new Promise<LimitResult>((resolve) => waiting.push(resolve));
    },
    holdSlots: async (client, members) => void calls.push(`hold ${client} ${members.join(',')}`),
    releaseSlot: async (client, member) => void calls.push(`release ${client} ${member}`),
    ping: async () => undefined,
  };
  return { store, calls, answer: (r: LimitResult) => waiting.shift()!(r) };
}

const limiterOn = (store: LimitStore, maxConcurrent: number) =>
  new SharedLimiter({ store, maxConcurrent, local: new ClientLimiter(maxConcurrent), onModeChange: () => undefined });

describe('SharedLimiter', () => {
  it('asks the store nothing for a client without rate_limit when MAX_CONCURRENT_PER_CLIENT is 0', () => {
    const { store, calls } = heldStore();
    const limiter = limiterOn(store, 0);
    const holder = {};
    expect(limiter.admit({ name: 'free' }, holder)).toBeUndefined();
    expect(limiter.inFlight().get('free')).toBe(1);
    limiter.release(holder);
    expect(calls).toEqual([]);
    limiter.close();
  });

  it('gives the slot straight back when the client left while the store was admitting it', async () => {
    const { store, calls, answer } = heldStore();
    const limiter = limiterOn(store, 2);
    const holder = {};
    const admitting = limiter.admit({ name: 'vendor' }, holder);
    // The response is over (the client went away) before the store answered.
    limiter.release(holder);
    answer({ admitted: true });
    await admitting;
    const member = calls[0]!.split(' ')[2]!;
    expect(calls).toEqual([`admit vendor ${member}`, `release vendor ${member}`]);
    expect(limiter.inFlight().get('vendor')).toBeUndefined();
    limiter.close();
  });

  it('takes no slot for a request whose client left before it was admitted', () => {
    const { store, calls } = heldStore();
    const limiter = limiterOn(store, 2);
    const holder = {};
    limiter.release(holder);
    expect(limiter.admit({ name: 'vendor' }, holder)).toBeUndefined();
    expect(calls).toEqual([]);
    expect(limiter.inFlight().get('vendor')).toBeUndefined();
    limiter.close();
  });
});

describe('SharedLimiter without its store', () => {
  it('counts per replica, saying so once, and puts the slots of running requests back when the store answers', async () => {
    const calls: string[] = [];
    let reachable = false;
    const store: LimitStore = {
      admitRequest: async () => {
        calls.push('admit');
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
      holdSlots: async (client, members) => void calls.push(`hold ${client} ${members.length}`),
      releaseSlot: async (client) => void calls.push(`release ${client}`),
      ping: async () => {
        if (!reachable) throw new Error('not yet');
      },
    };
    const modes: string[] = [];
    let back!: () => void;
    const isBack = new Promise<void>((resolve) => (back = resolve));
    const limiter = new SharedLimiter({
      store, maxConcurrent: 2, local: new ClientLimiter(2), probeMs: 1,
      onModeChange: (shared, cause) => {
        modes.push(`${shared ? 'shared' : 'per-replica'} ${cause}`);
        if (shared) back();
      },
    });
    const [first, second] = [{}, {}];
    await limiter.admit({ name: 'vendor' }, first);
    // Per replica now: no store, no promise.
    expect(limiter.admit({ name: 'vendor' }, second)).toBeUndefined();
    let refusal: unknown;
    try {
      limiter.admit({ name: 'vendor' }, {});
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ reason: 'too-many-concurrent', refusal: { detail: 'per-replica' } });
    expect(modes).toEqual(['per-replica redis-unreachable']);
    expect(calls).toEqual(['admit']);
    reachable = true;
    await isBack;
    expect(modes).toEqual(['per-replica redis-unreachable', 'shared redis-back']);
    expect(calls).toEqual(['admit', 'hold vendor 2']);
    limiter.release(second);
    expect(calls).toEqual(['admit', 'hold vendor 2', 'release vendor']);
    limiter.close();
  });
});

describe('ClientLimiter', () => {
  it('takes no slot for a request whose client left before it was admitted', () => {
    const limiter = new ClientLimiter(1);
    const gone = {};
    limiter.release(gone);
    limiter.admit({ name: 'vendor' }, gone);
    expect(limiter.inFlight().get('vendor')).toBeUndefined();
    limiter.admit({ name: 'vendor' }, {});
    expect(limiter.inFlight().get('vendor')).toBe(1);
  });
});
