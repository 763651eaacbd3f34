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
