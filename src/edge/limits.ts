// The per-client limits (src/limits/): counted in this process's memory, or, with REDIS_URL,
// in Redis and shared by every replica. When shared limits fall back to per-replica counts
// (Redis out of reach) and when they are shared again, the ops log, the audit log and the
// gsp_limits_shared metric say so.
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit.ts';
import type { Config } from '../config/env.ts';
import { ClientLimiter, type Limiter } from '../limits/client-limits.ts';
import { SharedLimiter } from '../limits/shared-limits.ts';
import type { ProxyMetrics } from '../ops/metrics.ts';
import type { Store } from '../store/store.ts';

export interface LimitsDeps {
  audit: AuditLog;
  metrics: ProxyMetrics;
  ops: Logger;
  clock: (() => number) | undefined;
  leaseMs?: number | undefined;
}

export function createLimiter(config: Config, store: Store | undefined, d: LimitsDeps): Limiter {
  const local = new ClientLimiter(config.limits.maxConcurrentPerClient, d.clock);
  if (!config.store.redisUrl || !store) return local;
  d.metrics.limitsShared(true);
  return new SharedLimiter({
    store, local, maxConcurrent: config.limits.maxConcurrentPerClient, leaseMs: d.leaseMs,
    onModeChange: (shared, cause) => {
      d.metrics.limitsShared(shared);
      d.audit.write({ client: 'system', decision: shared ? 'limits-shared' : 'limits-per-replica', reason: cause });
      if (shared) d.ops.info({ cause }, 'Redis answers again: rate and concurrency limits are shared by all replicas again');
      else d.ops.warn({ cause }, 'Redis is out of reach: rate and concurrency limits are counted per replica until it answers');
    },
  });
}
