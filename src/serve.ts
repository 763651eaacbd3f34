// `serve`: start the proxy from the environment with its admin listener and file watches,
// reload on SIGHUP, shut down gracefully on SIGTERM/SIGINT (stop accepting, let in-flight
// requests finish within SHUTDOWN_TIMEOUT_MS, flush the audit log, exit 0). A second signal
// during the drain cuts the remaining connections at once.
import { createOpsLog } from './audit/audit.ts';
import { loadConfig } from './config/env.ts';
import { releaseStartupMemory } from './ops/gc.ts';
import { startProxy, type RunningProxy as Proxy } from './server.ts';

/** Resolves -1: the process keeps running until a signal ends it. */
export async function runServe(env: Record<string, string | undefined> = process.env): Promise<number> {
  const config = loadConfig(env);
  const ops = createOpsLog(config.logLevel);
  // Signal handlers go in before the proxy starts: the "listening" line is written inside
  // startProxy, and a supervisor that signals as soon as it reads it must not meet Node's
  // default action (SIGHUP and SIGUSR1 would kill the process). What arrives during start-up
  // is held and run once the proxy is up.
  const up: { proxy?: Proxy } = {};
  const held: (() => void)[] = [];
  const whenUp = (run: (p: Proxy) => void) => (): void => {
    if (up.proxy) run(up.proxy);
    else held.push(() => run(up.proxy!));
  };
  // reloadNow logs and audits the outcome itself, success or refusal.
  process.on('SIGHUP', whenUp((p) => void p.reloadNow('sighup')));
  // logrotate's postrotate: reopen AUDIT_LOG only (SIGHUP reopens it too, with a reload).
  process.on('SIGUSR1', whenUp((p) => p.reopenAudit()));
  process.on('SIGTERM', whenUp((p) => stop(p, 'SIGTERM')));
  process.on('SIGINT', whenUp((p) => stop(p, 'SIGINT')));

  let stopping = false;
  const stop = (proxy: Proxy, signal: string): void => {
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
  // A bug must not also cost audit lines: stop taking requests, let those in flight end (at
  // most a second), flush and sync the audit log as a shutdown does, then exit 1 as Node would.
  const crash = (err: unknown): void => {
    ops.fatal({ err: err instanceof Error ? err.stack : String(err) }, 'uncaught error: draining, flushing the audit log and exiting');
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 3000).unref();
    if (!up.proxy) return void ops.flush(() => process.exit(1));
    void up.proxy.shutdown(1000).finally(() => ops.flush(() => process.exit(1)));
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  up.proxy = await startProxy(config, { ops, admin: true, watch: true });
  releaseStartupMemory();
  for (const run of held.splice(0)) run();
  return -1;
}
