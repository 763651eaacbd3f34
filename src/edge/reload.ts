// Hot reload: the policy directory and every secret file read again, swapped in whole if all
// of it loads, the previous ones kept (and the refusal audited) if anything does not.
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit.ts';
import { ConfigError, type Config } from '../config/env.ts';
import type { AuditSink } from '../ops/audit-sink.ts';
import type { ProxyMetrics } from '../ops/metrics.ts';
import { changes, loadState, watchedPaths, type LoadedState } from '../ops/reload.ts';
import type { SwappableVerifier } from '../ops/verifier.ts';
import { watchPaths, type Watcher } from '../ops/watch.ts';
import { formatProblem, PolicyError } from '../policy/load.ts';
import type { Policy } from '../types.ts';

export type ReloadTrigger = 'sighup' | 'file-change' | 'api' | 'admin';

export type ReloadOutcome =
  | { ok: true; policy: Policy; changed: string[] }
  | { ok: false; error: unknown; problems: string[] };

/** What is in force now; every step reads it through this one object. */
export interface Live {
  state: LoadedState;
}

const RELOAD_DEBOUNCE_MS = 200;

export function createReloader(d: {
  config: Config;
  live: Live;
  server: Server;
  verifier: SwappableVerifier;
  audit: AuditLog;
  sink: AuditSink | undefined;
  metrics: ProxyMetrics;
  ops: Logger;
  watch: boolean;
}): { reloadNow: (trigger: ReloadTrigger) => ReloadOutcome; watcher: Watcher | undefined } {
  const { config, live } = d;
  let lastRefusal = '';
  let watcher: Watcher | undefined;
  const reloadNow = (trigger: ReloadTrigger): ReloadOutcome => {
    if (trigger === 'sighup' || trigger === 'admin') d.sink?.reopen();
    let next: LoadedState;
    try {
      next = loadState(config);
    } catch (error) {
      const checksum = (error as { checksum?: string }).checksum ?? null;
      const problems = error instanceof PolicyError ? error.problems.map(formatProblem)
        : error instanceof ConfigError ? [error.message] : [`unexpected error: ${(error as Error).message}`];
      const key = `${checksum}\0${problems.join('\n')}`;
      // A file watch may fire several times for one broken save: report it once.
      if (trigger === 'file-change' && key === lastRefusal) return { ok: false, error, problems };
      lastRefusal = key;
      d.metrics.reload(false);
      d.audit.write({ client: 'system', decision: 'reload-refused', reason: trigger, checksum, previousChecksum: live.state.policy.checksum, problems: problems.length });
      d.ops.error({ trigger, problems }, 'reload refused; the previous policy and secrets stay in force');
      return { ok: false, error, problems };
    }
    lastRefusal = '';
    const changed = changes(live.state, next);
    // A file event without a change (touch, an editor's temporary file): nothing to do.
    if (changed.length === 0 && trigger === 'file-change') return { ok: true, policy: live.state.policy, changed };
    const previous = live.state;
    live.state = next;
    const policy = next.policy;
    if (changed.includes('jwt-keys')) d.verifier.swap(next.jwt);
    if (changed.includes('tls-certificate') && next.tls) (d.server as unknown as HttpsServer).setSecureContext({ cert: next.tls.cert, key: next.tls.key });
    d.metrics.reload(true);
    d.metrics.policyLoaded(policy.checksum, policy.clients.size);
    d.audit.write({ client: 'system', decision: 'reload', reason: trigger, checksum: policy.checksum, previousChecksum: previous.policy.checksum, changed });
    d.ops.info({ trigger, changed, clients: policy.clients.size, checksum: policy.checksum }, 'reloaded');
    watcher?.rearm();
    return { ok: true, policy, changed };
  };
  if (d.watch) watcher = watchPaths(() => watchedPaths(config, live.state), () => void reloadNow('file-change'), { debounceMs: RELOAD_DEBOUNCE_MS });
  return { reloadNow, watcher };
}
