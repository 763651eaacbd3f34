// Per-client admission, counted in this process's memory (one bucket per client per replica):
//   - a token bucket from the policy's `rate_limit: "600/minute"` (and optional `burst: N`);
//   - at most MAX_CONCURRENT_PER_CLIENT requests in flight per client.
// A refusal is a 429 in GitLab's format with Retry-After, audited as `rate-limited` or
// `too-many-concurrent`. Both checks are a few arithmetic operations and a Map lookup.
// With REDIS_URL, src/limits/shared-limits.ts counts them across replicas instead, and uses
// this class for its per-replica bookkeeping and as its fallback.
import { ProxyError } from '../errors.ts';
import type { RateLimitSpec } from '../types.ts';

export type { RateLimitSpec };

export type RatePeriod = 'second' | 'minute' | 'hour';

const PERIOD_MS: Record<RatePeriod, number> = { second: 1000, minute: 60_000, hour: 3_600_000 };
export const RATE_LIMIT = /^([1-9][0-9]{0,8})\/(second|minute|hour)$/;

/** "600/minute" (+ burst) as a spec, or undefined if the text is not of that form. Without
 *  `burst`, the bucket holds one period's worth: "600/minute" allows 600 at once. */
export function parseRateLimit(text: string, burst?: number): RateLimitSpec | undefined {
  const m = RATE_LIMIT.exec(text);
  if (!m) return undefined;
  const count = Number(m[1]);
  return { text, count, periodMs: PERIOD_MS[m[2] as RatePeriod], burst: burst ?? count };
}

/** A refusal by a limit: 429 with a Retry-After header. `detail` (audit line only) says
 *  which count refused it when that is not the usual one. */
export const limitRefusal = (reason: 'rate-limited' | 'too-many-concurrent', retryAfterSeconds: number, detail?: string): ProxyError =>
  new ProxyError('too-many-requests', reason, { retryAfterSeconds, detail });

/** Retry-After for a wait in ms: whole seconds, at least 1. */
export const retryAfterSeconds = (waitMs: number): number => Math.max(1, Math.ceil(waitMs / 1000));

/** What the pipeline asks of per-client limits (src/app.ts admits, src/edge/listener.ts
 *  releases when the response is over). `admit` returns a promise only when it must wait for
 *  the shared store; a refusal is thrown (or rejected) as a 429 ProxyError. */
export interface Limiter {
  admit(client: LimitedClient, holder: LimitHolder): void | Promise<void>;
  release(holder: LimitHolder): void;
  /** Requests in flight per client on this replica (for metrics). */
  inFlight(): ReadonlyMap<string, number>;
  /** Stops timers (at shutdown). */
  close(): void;
}

/** What a request (its context) carries for the limiter: which client's slot it holds and
 *  whether its response is over. Kept on the request itself rather than in a WeakMap: a
 *  WeakMap entry per request cost measurable CPU and garbage-collector work under load. */
export interface LimitHolder {
  /** The client whose concurrency slot the request holds; null or absent: none. */
  limitHeld?: string | null;
  /** The response is over: a slot taken after this would never be given back. */
  limitOver?: boolean;
}

interface Bucket {
  spec: RateLimitSpec;
  tokens: number;
  at: number;
}

export interface LimitedClient {
  name: string;
  rateLimit?: RateLimitSpec | undefined;
}

export class ClientLimiter implements Limiter {
  readonly #maxConcurrent: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #inFlight = new Map<string, number>();

  /** `maxConcurrent` 0 means no concurrency limit. */
  constructor(maxConcurrent: number, now: () => number = () => performance.now()) {
    this.#maxConcurrent = maxConcurrent;
    this.#now = now;
  }

  /**
   * Lets the request in or throws a 429 refusal. `holder` identifies the request (its context)
   * for `release`, which must be called when its response is over.
   */
  admit(client: LimitedClient, holder: LimitHolder): void {
    this.check(client);
    this.hold(client.name, holder);
  }

  /** Throws the refusal this replica's own counts call for, or takes a token. `detail` goes
   *  into a refusal's audit line. */
  check(client: LimitedClient, detail?: string): void {
    if (this.#maxConcurrent > 0 && (this.#inFlight.get(client.name) ?? 0) >= this.#maxConcurrent) throw limitRefusal('too-many-concurrent', 1, detail);
    if (client.rateLimit) {
      const waitMs = this.#take(client.name, client.rateLimit);
      if (waitMs > 0) throw limitRefusal('rate-limited', retryAfterSeconds(waitMs), detail);
    }
  }

  /** Counts a request admitted elsewhere (by the shared limits) as in flight here. */
  hold(name: string, holder: LimitHolder): void {
    // A request that ended (the client went away) while it was still being authenticated or
    // admitted must not take a slot it would never give back.
    if (holder.limitOver === true) return;
    this.#inFlight.set(name, (this.#inFlight.get(name) ?? 0) + 1);
    holder.limitHeld = name;
  }

  /** Gives the request's slot back, exactly once. */
  release(holder: LimitHolder): void {
    holder.limitOver = true;
    const name = holder.limitHeld;
    if (name === undefined || name === null) return;
    holder.limitHeld = null;
    const running = (this.#inFlight.get(name) ?? 1) - 1;
    if (running <= 0) this.#inFlight.delete(name);
    else this.#inFlight.set(name, running);
  }

  /** Whether the request's response is over (release was called). */
  released(holder: LimitHolder): boolean {
    return holder.limitOver === true;
  }

  /** Requests in flight per client (for metrics). */
  inFlight(): ReadonlyMap<string, number> {
    return this.#inFlight;
  }

  close(): void {}

  /** Takes a token; returns 0, or how many ms until one is there. A changed spec (a policy
   *  reload) starts a full bucket. */
  #take(name: string, spec: RateLimitSpec): number {
    const now = this.#now();
    let b = this.#buckets.get(name);
    if (!b || b.spec.text !== spec.text || b.spec.burst !== spec.burst) {
      b = { spec, tokens: spec.burst, at: now };
      this.#buckets.set(name, b);
    }
    const perMs = spec.count / spec.periodMs;
    b.tokens = Math.min(spec.burst, b.tokens + (now - b.at) * perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / perMs;
  }
}
