// Step 2 of starting: the two ways the proxy talks to GitLab, over one connection pool: the
// forwarder (requests the decision allowed, with the real token) and the scope resolver
// (who a project or group is, with the proxy's own token).
import type { Logger } from 'pino';
import type { Config } from '../config/env.ts';
import type { RequestContext } from '../context.ts';
import { createForwarder, type Forwarder } from '../forward/forward.ts';
import type { GitLabHealth } from '../ops/gitlab-health.ts';
import type { ProxyMetrics } from '../ops/metrics.ts';
import { upstreamErrorKind, type UpstreamAgent } from '../ops/upstream.ts';
import { createScopeResolver } from '../scope/lookup.ts';
import type { GitLabScopeResolver } from '../scope/scope.ts';

export function connectGitLab(
  config: Config,
  agent: UpstreamAgent,
  token: () => string,
  watch: { metrics: ProxyMetrics; health: GitLabHealth; ops: Logger },
): { forwarder: Forwarder; scope: GitLabScopeResolver } {
  const failed = new WeakSet<RequestContext>();
  const forwarder = createForwarder({
    gitlabUrl: config.gitlabUrl,
    gitlabRoot: config.gitlabRoot,
    token,
    timeouts: { connectMs: config.limits.upstreamConnectTimeoutMs, responseMs: config.limits.upstreamResponseTimeoutMs },
    agent,
    onError: (err, ctx) => {
      // One failure may surface twice (the response and the request both error): count it once.
      if (failed.has(ctx)) return;
      failed.add(ctx);
      const kind = upstreamErrorKind(err, ctx.timedOut);
      watch.metrics.upstreamError(kind);
      watch.health.failed(kind);
      // GitLab's answer had started: the client's response is cut (audited as aborted).
      if (ctx.upstreamMs !== null && ctx.reason === null) ctx.reason = 'upstream-aborted';
      watch.ops.warn({ reqId: ctx.reqId, kind, err: err.message }, 'upstream error');
    },
  });
  const scope = createScopeResolver({
    gitlabUrl: config.gitlabUrl,
    gitlabRoot: config.gitlabRoot,
    token,
    agent,
    timeoutMs: config.limits.upstreamResponseTimeoutMs,
    ttlMs: config.limits.scopeCacheTtlMs,
    maxEntries: config.limits.scopeCacheSize,
  });
  return { forwarder, scope };
}
