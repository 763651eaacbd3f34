// Starts the proxy: a few named steps, each in its own module, wired here. What runs per
// request is src/app.ts (the pipeline) behind src/edge/listener.ts (the edge, which writes the
// audit line); what runs beside it is the admin listener, hot reload and the graceful drain.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { BodyBudget } from './request/body-budget.ts';
import { createOpsLog, type AuditLog } from './audit/audit.ts';
import type { Config } from './config/env.ts';
import type { RequestContext } from './context.ts';
import { openAuditLog } from './edge/audit-log.ts';
import { connectGitLab } from './edge/gitlab.ts';
import { createLimiter } from './edge/limits.ts';
import { createEdge } from './edge/listener.ts';
import { createReloader, type Live, type ReloadOutcome, type ReloadTrigger } from './edge/reload.ts';
import { createShutdown } from './edge/shutdown.ts';
import { openSharedStore } from './edge/store.ts';
import { startAdmin, type AdminServer, type Readiness } from './ops/admin.ts';
import { GitLabHealth } from './ops/gitlab-health.ts';
import { gitlabProbe } from './ops/gitlab-probe.ts';
import { listenError } from './ops/listen-error.ts';
import { ProxyMetrics } from './ops/metrics.ts';
import { loadState } from './ops/reload.ts';
import { agentSockets, createUpstreamAgent } from './ops/upstream.ts';
import { SwappableVerifier } from './ops/verifier.ts';
import type { Policy } from './types.ts';

export type { ReloadOutcome, ReloadTrigger };

export interface RunningProxy {
  /** The vendor-facing base URL (https when TLS_CERT_FILE is set). */
  url: string;
  server: Server;
  /** The admin listener's base URL, when it was started (StartOptions.admin). */
  adminUrl: string | undefined;
  policy: () => Policy;
  /** Re-reads the policy directory and secrets; keeps the old ones and throws if invalid. */
  reload: () => Policy;
  /** The same, reporting instead of throwing: what SIGHUP and file changes run. */
  reloadNow: (trigger: ReloadTrigger) => ReloadOutcome;
  /** Reopens AUDIT_LOG (after logrotate renamed it): SIGUSR1 and POST /-/reopen. */
  reopenAudit: () => void;
  audit: AuditLog;
  metrics: ProxyMetrics;
  /** Connections to GitLab: in use, and idle in the keep-alive pool. */
  upstreamSockets: () => { active: number; free: number };
  /** Stops accepting, lets requests in flight finish within `timeoutMs` (then cuts them),
   *  closes the admin listener and the pool, flushes the audit log. */
  shutdown: (timeoutMs?: number) => Promise<{ forced: boolean }>;
  close: () => Promise<void>;
}

export interface StartOptions {
  ops?: Logger;
  /** Where audit lines go instead of AUDIT_LOG (tests). Failure handling then does not apply. */
  audit?: AuditLog;
  /** Start the admin listener on ADMIN_HOST:ADMIN_PORT (`serve` does). */
  admin?: boolean;
  /** Reload when POLICY_DIR or a secret file changes (`serve` does). */
  watch?: boolean;
  /** How often an unwritable audit log is reopened (default 1000 ms). */
  auditRetryMs?: number;
  /** Monotonic milliseconds for the rate limits (default performance.now; tests step it).
   *  Limits shared through Redis use Redis' clock. */
  clock?: () => number;
  /** How long a shared concurrency slot outlives its last renewal (default 30 s; tests). */
  limitLeaseMs?: number;
}

export async function startProxy(config: Config, opts: StartOptions = {}): Promise<RunningProxy> {
  const ops = opts.ops ?? createOpsLog(config.logLevel);
  const live: Live = { state: loadState(config) };
  let draining = false;
  let cutting = false;

  // What every step counts with: the pool to GitLab, GitLab's health, metrics (and the limits,
  // created with the shared store in step 3).
  const agent = createUpstreamAgent(config);
  const gitlabHealth = new GitLabHealth(gitlabProbe(config));
  const bodyBudget = new BodyBudget(config.limits.maxBufferedBodyBytes);
  const metrics = new ProxyMetrics(
    { inFlight: () => limiter.inFlight(), upstreamSockets: () => agentSockets(agent), gitlabUp: () => gitlabHealth.up(), bodyBytesHeld: () => bodyBudget.held },
    { processMetrics: opts.admin === true },
  );
  metrics.policyLoaded(live.state.policy.checksum, live.state.policy.clients.size);

  // 1. The audit log, before anything can be served.
  const { audit, sink, refusing } = openAuditLog(config, opts.audit, metrics, ops, opts.auditRetryMs ?? 1000);

  // 2. GitLab: the forwarder and the scope resolver over one pool; the token read per request.
  const gitlabToken = (): string => live.state.gitlabToken;
  const { forwarder, scope } = connectGitLab(config, agent, gitlabToken, { metrics, health: gitlabHealth, ops });

  // 3. The pipeline (src/app.ts): the shared store (Redis with REDIS_URL, SQLite for OAuth
  // without it) if anything needs one, the per-client limits (shared through Redis with
  // REDIS_URL), and the OAuth provider when configured (loaded only then).
  const store = await openSharedStore(config);
  const limiter = createLimiter(config, store, { audit, metrics, ops, clock: opts.clock, leaseMs: opts.limitLeaseMs });
  const verifier = new SwappableVerifier(live.state.jwt);
  const onInternalError = (err: unknown, ctx: RequestContext): void => ops.error({ reqId: ctx.reqId, err: err instanceof Error ? err.stack : String(err) }, 'internal error');
  const oauth = config.oauth && await (await import('./oauth/wire.ts')).startOAuth(config, { policy: () => live.state.policy, verifier, gitlabToken, jwtSecret: () => live.state.jwt.secret!, onError: onInternalError, store });
  // GitLab's health is not part of readiness: a GitLab outage must leave every replica in the
  // Service answering 502 in GitLab's JSON, not empty the Service. It is gsp_gitlab_up instead.
  const readiness = async (): Promise<Readiness> => {
    const auditOk = !refusing();
    return { ready: auditOk && !draining, checks: { audit: auditOk, accepting: !draining } };
  };
  const publicRoot = config.publicUrl ? config.publicUrl.pathname.replace(/\/+$/, '') : '';
  const app = createApp({
    policy: () => live.state.policy,
    verifier: oauth?.verifier ?? verifier,
    oauth: oauth?.app,
    forwarder,
    publicRoot,
    publicBase: config.publicUrl ? config.publicUrl.origin + publicRoot : undefined,
    maxBodyBytes: config.limits.maxBodyBytes,
    bodyBudget,
    ready: async () => (await readiness()).ready,
    onInternalError,
    admit: (client, ctx) => limiter.admit(client, ctx),
    scope,
  });

  // 4. The edge, listening.
  const server = createEdge({
    config, publicRoot, tls: live.state.tls, app, audit, auditRefusing: refusing, limiter, metrics, gitlabHealth, ops,
    draining: () => draining, cutting: () => cutting,
  });
  try {
    await listen(server, config);
  } catch (err) {
    agent.destroy();
    limiter.close();
    await sink?.close();
    await oauth?.close();
    await store?.close();
    throw listenError('PORT', config.host, config.port, err);
  }

  // 5. Reload, and the admin listener that can ask for it.
  const { reloadNow, watcher } = createReloader({ config, live, server, verifier, audit, sink, metrics, ops, watch: opts.watch === true });
  const reopenAudit = (): void => {
    sink?.reopen();
    ops.info({ auditLog: config.auditLog ?? 'stdout' }, 'audit log reopened');
  };
  let admin: AdminServer | undefined;
  if (opts.admin) {
    try {
      admin = await startAdmin({
        port: config.adminPort, host: config.adminHost, metrics, readiness,
        actions: { reload: () => reloadNow('admin'), reopenAudit },
      });
    } catch (err) {
      watcher?.close();
      server.close();
      agent.destroy();
      limiter.close();
      await sink?.close();
      await store?.close();
      throw listenError('ADMIN_PORT', config.adminHost, config.adminPort, err);
    }
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const adminPort = admin ? (admin.server.address() as AddressInfo).port : undefined;
  const policy = live.state.policy;
  ops.info({
    pid: process.pid, port: addr.port, host: addr.address, tls: live.state.tls !== undefined, adminPort,
    gitlab: config.gitlabUrl.origin + config.gitlabRoot, clients: policy.clients.size, policy: policy.checksum.slice(0, 12),
  }, 'listening');
  if (policy.clients.size === 0) ops.warn({ policyDir: config.policyDir }, 'POLICY_DIR holds no client: every request is refused until a policy file there defines one');

  // 6. The graceful drain.
  const shutdown = createShutdown(server, {
    drain: () => {
      draining = true;
      watcher?.close();
    },
    cut: () => (cutting = true),
    closeRest: async () => {
      await admin?.close();
      forwarder.close();
      await oauth?.close();
      limiter.close();
      await store?.close().catch(() => undefined);
      await audit.flush();
      await sink?.close();
    },
  }, config.limits.shutdownTimeoutMs);

  return {
    url: `${live.state.tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`,
    server,
    adminUrl: admin?.url,
    policy: () => live.state.policy,
    reload: () => {
      const outcome = reloadNow('api');
      if (!outcome.ok) throw outcome.error;
      return outcome.policy;
    },
    reloadNow,
    reopenAudit,
    audit,
    metrics,
    upstreamSockets: () => agentSockets(agent),
    shutdown,
    close: async () => {
      await shutdown();
    },
  };
}

function listen(server: Server, config: Config): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
