// `serve`: start the proxy from the environment with its admin listener and file watches,
// reload on SIGHUP, shut down gracefully on SIGTERM/SIGINT (stop accepting, let in-flight
// requests finish within SHUTDOWN_TIMEOUT_MS, flush the audit log, exit 0). A second signal
// during the drain cuts the remaining connections at once.
import { createOpsLog } from './audit/audit.ts';
import { loadConfig } from './config/env.ts';
import { startProxy } from './server.ts';

/** Resolves -1: the process keeps running until a signal ends it. */
export async function runServe(env: Record<string, string | undefined> = process.env): Promise<number> {
  const config = loadConfig(env);
  const ops = createOpsLog(config.logLevel);
  const proxy = await startProxy(config, { ops, admin: true, watch: true });

  // reloadNow logs and audits the outcome itself, success or refusal.
  process.on('SIGHUP', () => void proxy.reloadNow('sighup'));
  // logrotate's postrotate: reopen AUDIT_LOG only (SIGHUP reopens it too, with a reload).
  process.on('SIGUSR1', () => proxy.reopenAudit());

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      ops.warn({ signal }, 'second signal: closing the remaining connections now');
      proxy.server.closeAllConnections();
      return;
    }
    stopping = true;
    ops.info({ signal, timeoutMs: config.limits.shutdownTimeoutMs }, 'shutting down: not accepting; waiting for requests in flight');
    proxy.shutdown(config.limits.shutdownTimeoutMs).then(
      ({ forced }) => {
        if (forced) ops.warn('shutdown timeout: the remaining connections were closed');
        ops.info('stopped');
        ops.flush(() => process.exit(0));
      },
      (err: unknown) => {
        ops.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
        ops.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // A bug must not also cost audit lines: stop taking requests, let those in flight end (at
  // most a second), flush and sync the audit log as a shutdown does, then exit 1 as Node would.
  const crash = (err: unknown): void => {
    ops.fatal({ err: err instanceof Error ? err.stack : String(err) }, 'uncaught error: draining, flushing the audit log and exiting');
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 3000).unref();
    void proxy.shutdown(1000).finally(() => ops.flush(() => process.exit(1)));
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  return -1;
}
