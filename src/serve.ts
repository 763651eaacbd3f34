// `serve`: start the proxy from the environment, reload on SIGHUP, shut down gracefully on
// SIGTERM/SIGINT (stop accepting, let in-flight requests finish within a bound, flush the
// audit log, exit 0).
import { createOpsLog } from './audit/audit.ts';
import { loadConfig } from './config/env.ts';
import { formatProblem, PolicyError } from './policy/load.ts';
import { startProxy } from './server.ts';

/** Resolves -1: the process keeps running until a signal ends it. */
export async function runServe(): Promise<number> {
  const config = loadConfig();
  const ops = createOpsLog(config.logLevel);
  const proxy = await startProxy(config, { ops });

  process.on('SIGHUP', () => {
    try {
      const policy = proxy.reload();
      ops.info({ clients: policy.clients.size, checksum: policy.checksum }, 'policy reloaded');
    } catch (err) {
      const problems = err instanceof PolicyError ? err.problems.map(formatProblem) : [(err as Error).message];
      ops.error({ problems }, 'policy reload refused; the previous policy stays in force');
    }
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    ops.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      ops.warn('shutdown timeout: closing remaining connections');
      proxy.server.closeAllConnections();
    }, config.limits.shutdownTimeoutMs);
    force.unref();
    void proxy.close().then(() => {
      ops.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1;
}
