// Per-client admission, counted in this process's memory (one bucket per client per replica):
//   - a token bucket from the policy's `rate_limit: "600/minute"` (and optional `burst: N`);
//   - at most MAX_CONCURRENT_PER_CLIENT requests in flight per client.
// A refusal is a 429 in GitLab's format with Retry-After, audited as `rate-limited` or
// `too-many-concurrent`. Both checks are a few arithmetic operations and a Map lookup.
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

/** A refusal by a limit: 429 with a Retry-After header. */
export const limitRefusal = (reason: 'rate-limited' | 'too-many-concurrent', retryAfterSeconds: number): ProxyError =>
  new ProxyError('too-many-requests', reason, { retryAfterSeconds });

interface Bucket {
  spec: RateLimitSpec;
  tokens: number;
  at: number;
}

export interface LimitedClient {
  name: string;
  rateLimit?: RateLimitSpec | undefined;
}

export class ClientLimiter {
  readonly #maxConcurrent: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #inFlight = new Map<string, number>();
  /** Requests holding a concurrency slot, so the slot is given back exactly once. */
  readonly #holding = new WeakMap<object, string>();

  /** `maxConcurrent` 0 means no concurrency limit. */
  constructor(maxConcurrent: number, now: () => number = () => performance.now()) {
    this.#maxConcurrent = maxConcurrent;
    this.#now = now;
  }

  /**
   * Lets the request in or throws a 429 refusal. `holder` identifies the request (its context)
   * for `release`, which must be called when its response is over.
   */
  admit(client: LimitedClient, holder: object): void {
    const running = this.#inFlight.get(client.name) ?? 0;
    if (this.#maxConcurrent > 0 && running >= this.#maxConcurrent) throw limitRefusal('too-many-concurrent', 1);
    if (client.rateLimit) {
      const waitMs = this.#take(client.name, client.rateLimit);
      if (waitMs > 0) throw limitRefusal('rate-limited', Math.max(1, Math.ceil(waitMs / 1000)));
    }
    this.#inFlight.set(client.name, running + 1);
    this.#holding.set(holder, client.name);
  }

  release(holder: object): void {
    const name = this.#holding.get(holder);
    if (name === undefined) return;
    this.#holding.delete(holder);
    const running = (this.#inFlight.get(name) ?? 1) - 1;
    if (running <= 0) this.#inFlight.delete(name);
    else this.#inFlight.set(name, running);
  }

  /** Requests in flight per client (for metrics). */
  inFlight(): ReadonlyMap<string, number> {
    return this.#inFlight;
  }

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
