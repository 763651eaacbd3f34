// Per-client limits shared by every replica (REDIS_URL): a client's token bucket and its
// concurrency slots live in the store, and one atomic script admits a request against both
// (src/store/redis.ts), so N replicas together admit what one would.
//
// Concurrency slots are leases, not counters: each admitted request holds a slot named after
// this replica and the request, which expires LEASE_MS after it was last renewed. This replica
// renews the slots of its running requests every LEASE_MS / 3 and gives each back when its
// response is over. A replica that dies mid-request stops renewing: its slots come back within
// LEASE_MS. A long download keeps its slot for as long as it runs.
//
// When the store cannot be reached (a command fails or takes longer than the store's limit
// timeout), the limiter counts per replica, as without REDIS_URL (src/limits/client-limits.ts),
// and says so once (onModeChange: ops warning, audit line, metric); refusals it makes then say
// `per-replica` in the audit line's detail. A probe every PROBE_MS finds the store again; the
// slots of requests still running are put back first, then limits are shared again.
//
// A client with no rate_limit, when MAX_CONCURRENT_PER_CLIENT is 0, never costs a round trip.
import { randomBytes } from 'node:crypto';
import type { LimitResult, Store } from '../store/store.ts';
import { limitRefusal, retryAfterSeconds, type ClientLimiter, type LimitedClient, type Limiter, type LimitHolder } from './client-limits.ts';

export const LEASE_MS = 30_000;
const PROBE_MS = 1000;

export type LimitStore = Pick<Store, 'admitRequest' | 'holdSlots' | 'releaseSlot' | 'ping'>;

export interface SharedLimiterOptions {
  store: LimitStore;
  maxConcurrent: number;
  /** This replica's counts: every request in flight here (metrics), and the fallback. */
  local: ClientLimiter;
  /** Called when limits stop (false, with why) or start again (true) being shared. */
  onModeChange: (shared: boolean, cause: string) => void;
  leaseMs?: number | undefined;
  probeMs?: number | undefined;
}

/** A request's slot in the store: `member` under `client`. */
interface Slot {
  client: string;
  member: string;
  /** Asked of the store (so it may be there), rather than admitted per replica. */
  asked: boolean;
}

export class SharedLimiter implements Limiter {
  readonly #o: SharedLimiterOptions;
  readonly #leaseMs: number;
  readonly #replica = randomBytes(6).toString('base64url');
  #seq = 0;
  #shared = true;
  /** Slots this replica holds (or may hold: a command that timed out), per client. */
  readonly #slots = new Map<string, Set<string>>();
  readonly #held = new WeakMap<object, Slot>();
  readonly #renewal: NodeJS.Timeout;
  #probe: NodeJS.Timeout | undefined;
  #probing = false;

  constructor(o: SharedLimiterOptions) {
    this.#o = o;
    this.#leaseMs = o.leaseMs ?? LEASE_MS;
    this.#renewal = setInterval(() => void this.#renew(), this.#leaseMs / 3).unref();
  }

  admit(client: LimitedClient, holder: LimitHolder): void | Promise<void> {
    if (this.#o.maxConcurrent === 0 && !client.rateLimit) return this.#o.local.admit(client, holder);
    if (!this.#shared) return this.#admitLocally(client, holder, this.#newSlot(client.name, false));
    // Gone already (the client left while it was authenticated): nothing to count.
    if (this.#o.local.released(holder)) return;
    return this.#admitShared(client, holder);
  }

  release(holder: LimitHolder): void {
    this.#o.local.release(holder);
    const slot = this.#held.get(holder);
    if (!slot) return;
    this.#held.delete(holder);
    const members = this.#slots.get(slot.client);
    members?.delete(slot.member);
    if (members?.size === 0) this.#slots.delete(slot.client);
    this.#giveBack(slot);
  }

  inFlight(): ReadonlyMap<string, number> {
    return this.#o.local.inFlight();
  }

  close(): void {
    clearInterval(this.#renewal);
    clearInterval(this.#probe);
  }

  async #admitShared(client: LimitedClient, holder: LimitHolder): Promise<void> {
    const slot = this.#newSlot(client.name, true);
    const spec = client.rateLimit;
    let result: LimitResult;
    try {
      result = await this.#o.store.admitRequest(client.name, {
        rate: spec && { id: `${spec.count}/${spec.periodMs}/${spec.burst}`, intervalMs: spec.periodMs / spec.count, burst: spec.burst },
        slot: slot && { member: slot.member, max: this.#o.maxConcurrent, leaseMs: this.#leaseMs },
      });
    } catch (err) {
      this.#fallBack(err);
      // The command may still have taken the slot: it keeps its name, so that it is given back
      // (or put back, if the request is still running when the store returns).
      return this.#admitLocally(client, holder, slot);
    }
    if (!result.admitted) {
      if (result.limit === 'concurrency') throw limitRefusal('too-many-concurrent', 1);
      throw limitRefusal('rate-limited', retryAfterSeconds(result.retryAfterMs));
    }
    this.#hold(client.name, holder, slot);
  }

  #admitLocally(client: LimitedClient, holder: LimitHolder, slot: Slot | undefined): void {
    this.#o.local.check(client, 'per-replica');
    this.#hold(client.name, holder, slot);
  }

  #hold(client: string, holder: LimitHolder, slot: Slot | undefined): void {
    // The response ended (the client went away) while the request was being admitted: its slot
    // goes straight back. The release follows the admission on the same connection, so the
    // store sees them in that order.
    if (this.#o.local.released(holder)) {
      if (slot) this.#giveBack(slot);
      return;
    }
    this.#o.local.hold(client, holder);
    if (slot) this.#track(holder, slot);
  }

  /** Not awaited: the response is over. Should it fail (the store out of reach), the lease
   *  runs out instead. A slot admitted per replica is in the store only if a probe is putting
   *  it back, or has. */
  #giveBack(slot: Slot): void {
    if (!this.#shared && !this.#probing && !slot.asked) return;
    this.#o.store.releaseSlot(slot.client, slot.member).catch(() => undefined);
  }

  #newSlot(client: string, asked: boolean): Slot | undefined {
    return this.#o.maxConcurrent > 0 ? { client, member: `${this.#replica}:${(this.#seq++).toString(36)}`, asked } : undefined;
  }

  #track(holder: LimitHolder, slot: Slot): void {
    this.#held.set(holder, slot);
    let members = this.#slots.get(slot.client);
    if (!members) this.#slots.set(slot.client, (members = new Set()));
    members.add(slot.member);
  }

  /** Renews the leases of every slot held here (all of them: one command per client). */
  async #putBack(): Promise<void> {
    await Promise.all([...this.#slots].map(([client, members]) => this.#o.store.holdSlots(client, [...members], this.#leaseMs)));
  }

  async #renew(): Promise<void> {
    if (!this.#shared || this.#slots.size === 0) return;
    await this.#putBack().catch((err: unknown) => this.#fallBack(err));
  }

  #fallBack(err: unknown): void {
    if (!this.#shared) return;
    this.#shared = false;
    this.#o.onModeChange(false, (err as Error | undefined)?.name === 'TimeoutError' ? 'redis-timeout' : 'redis-unreachable');
    this.#probe = setInterval(() => void this.#tryShared(), this.#o.probeMs ?? PROBE_MS).unref();
  }

  async #tryShared(): Promise<void> {
    if (this.#shared || this.#probing) return;
    this.#probing = true;
    try {
      await this.#o.store.ping();
      // Requests admitted per replica meanwhile count in the store from now on.
      await this.#putBack();
    } catch {
      return;
    } finally {
      this.#probing = false;
    }
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.#shared = true;
    this.#o.onModeChange(true, 'redis-back');
  }
}
