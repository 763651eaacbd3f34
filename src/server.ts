// Wires the pieces together and listens. The server edge attaches the per-request context
// and writes the audit line when the response ends or the client goes away, so every request
// leaves exactly one line, whatever step refused it. It also owns what runs beside the
// pipeline: the admin listener (metrics, probes), hot reload of the policy and secrets, the
// audit log's failure handling, per-client limits, and the graceful drain on shutdown.
import { createServer, STATUS_CODES, request as httpRequest, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { auditLogTo, createOpsLog, type AuditLog, type AuditRecord } from './audit/audit.ts';
import { ConfigError, type Config } from './config/env.ts';
import { attachContext, auditRecord, type RequestContext } from './context.ts';
import { answer, refusal } from './errors.ts';
import { createForwarder } from './forward/forward.ts';
import { ClientLimiter } from './limits/client-limits.ts';
import { startAdmin, type AdminServer, type Readiness } from './ops/admin.ts';
import { AuditSink } from './ops/audit-sink.ts';
import { GitLabHealth } from './ops/gitlab-health.ts';
import { ProxyMetrics } from './ops/metrics.ts';
import { listenError } from './ops/listen-error.ts';
import { publicUrlWatch } from './ops/public-url-check.ts';
import { identifyRequest } from './ops/request-id.ts';
import { changes, loadState, watchedPaths, type LoadedState } from './ops/reload.ts';
import { agentSockets, createUpstreamAgent, guardUpstreamRequest, upstreamErrorKind } from './ops/upstream.ts';
import { SwappableVerifier } from './ops/verifier.ts';
import { createScopeResolver } from './scope/lookup.ts';
import { watchPaths, type Watcher } from './ops/watch.ts';
import { formatProblem, PolicyError, type Policy } from './policy/load.ts';

export type ReloadTrigger = 'sighup' | 'file-change' | 'api' | 'admin';

export type ReloadOutcome =
  | { ok: true; policy: Policy; changed: string[] }
  | { ok: false; error: unknown; problems: string[] };

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
  /** Monotonic milliseconds for the rate limits (default performance.now; tests step it). */
  clock?: () => number;
}

const HEALTH = new Set(['/healthz', '/readyz']);
const RELOAD_DEBOUNCE_MS = 200;

export async function startProxy(config: Config, opts: StartOptions = {}): Promise<RunningProxy> {
  const ops = opts.ops ?? createOpsLog(config.logLevel);
  let state: LoadedState = loadState(config);
  let policy = state.policy;
  let gitlabToken = state.gitlabToken;
  let draining = false;

  const limiter = new ClientLimiter(config.limits.maxConcurrentPerClient, opts.clock);
  const agent = createUpstreamAgent(config);
  const gitlabHealth = new GitLabHealth(readinessProbe(config));
  const metrics = new ProxyMetrics(
    { inFlight: () => limiter.inFlight(), upstreamSockets: () => agentSockets(agent), gitlabUp: () => gitlabHealth.up() },
    { processMetrics: opts.admin === true },
  );
  metrics.policyLoaded(policy.checksum, policy.clients.keys());

  // ----------------------------------------------------------------- audit log
  let sink: AuditSink | undefined;
  let audit: AuditLog;
  if (opts.audit) {
    audit = opts.audit;
  } else {
    try {
      sink = new AuditSink(config.auditLog, {
        onError: (err) => {
          metrics.auditWriteFailed();
          ops.error({ code: err.code, onFailure: config.auditOnFailure },
            config.auditOnFailure === 'refuse' ? 'audit log write failed: refusing requests until it can be written' : 'audit log write failed: serving on, lines are lost');
        },
        onLost: (n) => metrics.auditLinesLost(n),
        onProbe: (lost, since) => audit.write({ client: 'system', decision: 'audit-resumed', reason: 'write-failed', lost, since: since.toISOString() }),
        onState: (writable) => {
          metrics.auditWritable(writable);
          if (writable) ops.info('audit log writable again');
        },
      }, { retryMs: opts.auditRetryMs ?? 1000 });
    } catch (err) {
      throw new ConfigError(`AUDIT_LOG: cannot open ${config.auditLog ?? 'stdout'} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    audit = auditLogTo(sink);
  }
  const auditRefusing = (): boolean => sink !== undefined && config.auditOnFailure === 'refuse' && !sink.writable;

  // ----------------------------------------------------------------- pipeline
  const verifier = new SwappableVerifier(state.jwt);
  const failedUpstream = new WeakSet<RequestContext>();
  const publicRoot = config.publicUrl ? config.publicUrl.pathname.replace(/\/+$/, '') : '';
  const forwarder = createForwarder({
    gitlabUrl: config.gitlabUrl,
    gitlabRoot: config.gitlabRoot,
    token: () => gitlabToken,
    responseTimeoutMs: config.limits.upstreamResponseTimeoutMs,
    agent,
    onProxyReq: (proxyReq, ctx) => guardUpstreamRequest(proxyReq, ctx, {
      connectMs: config.limits.upstreamConnectTimeoutMs,
      silenceMs: config.limits.upstreamResponseTimeoutMs,
    }),
    onError: (err, ctx) => {
      // One failure may surface twice (the response and the request both error): count it once.
      if (failedUpstream.has(ctx)) return;
      failedUpstream.add(ctx);
      const kind = upstreamErrorKind(err, ctx.timedOut);
      metrics.upstreamError(kind);
      gitlabHealth.failed(kind);
      // GitLab's answer had started: the client's response is cut (audited as aborted).
      if (ctx.upstreamMs !== null && ctx.reason === null) ctx.reason = 'upstream-aborted';
      ops.warn({ reqId: ctx.reqId, kind, err: err.message }, 'upstream error');
    },
  });
  // projects:/groups: scope asks GitLab, with the proxy's own token, who a project or group is.
  const scope = createScopeResolver({
    gitlabUrl: config.gitlabUrl,
    gitlabRoot: config.gitlabRoot,
    token: () => gitlabToken,
    agent,
    timeoutMs: config.limits.upstreamResponseTimeoutMs,
    ttlMs: config.limits.scopeCacheTtlMs,
    maxEntries: config.limits.scopeCacheSize,
  });
  // GitLab's health is not part of readiness: a GitLab outage must leave every replica in the
  // Service answering 502 in GitLab's JSON, not empty the Service. It is gsp_gitlab_up instead.
  const readiness = async (): Promise<Readiness> => {
    const auditOk = !auditRefusing();
    return { ready: auditOk && !draining, checks: { audit: auditOk, accepting: !draining } };
  };
  const onInternalError = (err: unknown, ctx: RequestContext): void => ops.error({ reqId: ctx.reqId, err: err instanceof Error ? err.stack : String(err) }, 'internal error');
  // OAuth provider for vendors that only speak OAuth (src/oauth/), when configured; loaded only
  // then, so a proxy without it starts no slower.
  const oauth = config.oauth && await (await import('./oauth/wire.ts')).startOAuth(config, { policy: () => policy, verifier, gitlabToken: () => gitlabToken, jwtSecret: () => state.jwt.secret!, onError: onInternalError });
  const app = createApp({
    policy: () => policy,
    verifier: oauth?.verifier ?? verifier,
    oauth: oauth?.app,
    forwarder,
    publicRoot,
    publicBase: config.publicUrl ? config.publicUrl.origin + publicRoot : undefined,
    maxBodyBytes: config.limits.maxBodyBytes,
    ready: async () => (await readiness()).ready,
    onInternalError,
    admit: (client, ctx) => limiter.admit(client, ctx),
    scope,
  });
  // The adapter refuses some requests before the app sees them (a Host it cannot build a URL
  // from, no Host at all on HTTP/1.0, an absolute-form target it cannot parse). It calls this
  // handler synchronously from the listener, so `current` is that request's context.
  let current: RequestContext | undefined;
  const adapterRefusal = (): Response => {
    const r = refusal('unreadable-request', { message: 'the request target or Host header cannot be read', closeConnection: true });
    if (current) {
      current.reason = r.reason;
      current.decision = 'deny';
    }
    const { status, headers, body } = answer(r, { reqId: current?.reqId });
    return new Response(body, { status, headers });
  };
  const honoListener = getRequestListener(app.fetch, { autoCleanupIncoming: false, overrideGlobalObjects: false, errorHandler: adapterRefusal });

  let cutting = false;
  const finish = (ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void => {
    // The connection closed before the pipeline decided anything: the client went away (or
    // the shutdown timeout cut it).
    if (ctx.reason === 'unprocessed' && !res.writableFinished) ctx.reason = cutting ? 'shutdown' : 'client-aborted';
    const record = auditRecord(ctx, req, res);
    audit.write(record);
    if (record.upstreamMs !== null) gitlabHealth.answered();
    limiter.release(ctx);
    metrics.request(record);
  };

  // ----------------------------------------------------------------- listener
  const serverOptions: ServerOptions = {
    maxHeaderSize: config.limits.maxHeaderBytes,
    insecureHTTPParser: false,
    // A missing Host is refused by the adapter (adapterRefusal), so that it is audited too.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    keepAliveTimeout: config.limits.clientIdleTimeoutMs,
    headersTimeout: 30_000,
    requestTimeout: 300_000,
  };
  const checkPublicHost = publicUrlWatch(config.publicUrl, (host, publicHost) => ops.warn({ host, publicUrl: publicHost },
    'PUBLIC_URL names another host than clients use: Link and Location headers send vendors to PUBLIC_URL; check the setting'));
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (draining) res.setHeader('Connection', 'close');
    if (HEALTH.has(req.url ?? '') && (req.method === 'GET' || req.method === 'HEAD')) {
      identifyRequest(req, res, attachContext(req), config.trustedProxies);
      void honoListener(req, res);
      return;
    }
    checkPublicHost(req.headers.host);
    const ctx = attachContext(req);
    identifyRequest(req, res, ctx, config.trustedProxies);
    res.once('close', () => finish(ctx, req, res));
    if (auditRefusing()) {
      refuseUnaudited(ctx, res);
      return;
    }
    current = ctx;
    void honoListener(req, res);
    current = undefined;
  };
  const server: Server = state.tls
    ? (createHttpsServer({ ...serverOptions, cert: state.tls.cert, key: state.tls.key }, onRequest) as unknown as Server)
    : createServer(serverOptions, onRequest);
  // A client that stops reading (or sending) for longer than any legitimate pause is cut, so
  // it cannot hold a connection to GitLab forever.
  server.timeout = Math.max(config.limits.clientIdleTimeoutMs, config.limits.upstreamResponseTimeoutMs) + 5000;
  // CONNECT would open a tunnel; Node hands it to this event instead of the request listener.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const record = answerClientError(Object.assign(new Error('CONNECT'), { code: 'CONNECT' }), socket, audit, req);
    if (record) metrics.request(record);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const record = answerClientError(err, socket, audit);
    if (record) metrics.request(record);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    agent.destroy();
    await sink?.close();
    await oauth?.close();
    throw listenError('PORT', config.host, config.port, err);
  }
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
      server.close();
      agent.destroy();
      await sink?.close();
      throw listenError('ADMIN_PORT', config.adminHost, config.adminPort, err);
    }
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const adminPort = admin ? (admin.server.address() as AddressInfo).port : undefined;
  ops.info({
    pid: process.pid, port: addr.port, host: addr.address, tls: state.tls !== undefined, adminPort,
    gitlab: config.gitlabUrl.origin + config.gitlabRoot, clients: policy.clients.size, policy: policy.checksum.slice(0, 12),
  }, 'listening');
  if (policy.clients.size === 0) ops.warn({ policyDir: config.policyDir }, 'POLICY_DIR holds no client: every request is refused until a policy file there defines one');

  // ----------------------------------------------------------------- reload
  let lastRefusal = '';
  const reloadNow = (trigger: ReloadTrigger): ReloadOutcome => {
    if (trigger === 'sighup' || trigger === 'admin') sink?.reopen();
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
      metrics.reload(false);
      audit.write({ client: 'system', decision: 'reload-refused', reason: trigger, checksum, previousChecksum: state.policy.checksum, problems: problems.length });
      ops.error({ trigger, problems }, 'reload refused; the previous policy and secrets stay in force');
      return { ok: false, error, problems };
    }
    lastRefusal = '';
    const changed = changes(state, next);
    // A file event without a change (touch, an editor's temporary file): nothing to do.
    if (changed.length === 0 && trigger === 'file-change') return { ok: true, policy, changed };
    const previous = state;
    state = next;
    policy = next.policy;
    gitlabToken = next.gitlabToken;
    if (changed.includes('jwt-keys')) verifier.swap(next.jwt);
    if (changed.includes('tls-certificate') && next.tls) (server as unknown as HttpsServer).setSecureContext({ cert: next.tls.cert, key: next.tls.key });
    metrics.reload(true);
    metrics.policyLoaded(policy.checksum, policy.clients.keys());
    audit.write({ client: 'system', decision: 'reload', reason: trigger, checksum: policy.checksum, previousChecksum: previous.policy.checksum, changed });
    ops.info({ trigger, changed, clients: policy.clients.size, checksum: policy.checksum }, 'reloaded');
    watcher?.rearm();
    return { ok: true, policy, changed };
  };
  const watcher: Watcher | undefined = opts.watch
    ? watchPaths(() => watchedPaths(config, state), () => void reloadNow('file-change'), { debounceMs: RELOAD_DEBOUNCE_MS })
    : undefined;

  // ----------------------------------------------------------------- shutdown
  let stopped: Promise<{ forced: boolean }> | undefined;
  const shutdown = (timeoutMs = config.limits.shutdownTimeoutMs): Promise<{ forced: boolean }> => {
    stopped ??= (async () => {
      draining = true;
      watcher?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections are closed as soon as they are idle; requests in flight go on.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), timeoutMs)));
      const forced = (await Promise.race([closed, expired])) === 'expired';
      clearTimeout(timer);
      clearInterval(sweep);
      if (forced) {
        cutting = true;
        server.closeAllConnections();
        await closed;
      }
      // Responses cut above write their audit line on 'close': let those callbacks run.
      await nextTurn();
      await admin?.close();
      forwarder.close();
      await oauth?.close();
      await audit.flush();
      await sink?.close();
      return { forced };
    })();
    return stopped;
  };

  return {
    url: `${state.tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`,
    server,
    adminUrl: admin?.url,
    policy: () => policy,
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

/** While the audit log cannot be written (AUDIT_ON_FAILURE=refuse), nothing is served. */
function refuseUnaudited(ctx: RequestContext, res: ServerResponse): void {
  ctx.decision = 'deny';
  ctx.reason = 'audit-unavailable';
  const { status, headers, body } = answer(refusal('audit-unavailable', { retryAfterSeconds: 5, closeConnection: true }), { reqId: ctx.reqId });
  ctx.bytesOut = Buffer.byteLength(body);
  res.writeHead(status, headers);
  res.end(body);
}

/** Requests Node's parser refuses never reach the app (duplicate Content-Length, bad
 *  chunked framing, oversized headers): answer them in GitLab's format and audit them too. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, audit: AuditLog, req?: IncomingMessage): AuditRecord | undefined {
  const code = err.code ?? 'HPE_ERROR';
  if (code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  const tooLarge = code === 'HPE_HEADER_OVERFLOW';
  const connect = code === 'CONNECT';
  const r = tooLarge ? refusal('unparseable', { code: 'headers-too-large', closeConnection: true })
    : connect ? refusal('method', { closeConnection: true })
    : refusal('unparseable', { message: 'unparseable', closeConnection: true });
  const { status, headers, body } = answer(r);
  const record: AuditRecord = {
    reqId: 'parse-error', client: null, jti: null, method: req?.method ?? '', path: (req?.url ?? '').slice(0, 256), queryKeys: [], rule: null, route: null,
    decision: 'deny', reason: r.reason, ...(connect ? {} : { detail: code }), status, durationMs: 0, upstreamMs: null,
    bytesIn: 0, bytesOut: Buffer.byteLength(body), ip: socket.remoteAddress ?? null, userAgent: null,
  };
  audit.write(record);
  // Node's parser gave up on this connection: the answer is written to the socket directly.
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
  return record;
}

const READY_TTL_MS = 5000;

/** GitLab answers at all (any HTTP status below 500), checked at most every 5 s, without a token. */
function readinessProbe(config: Config): () => Promise<boolean> {
  let readyCache: { at: number; ok: boolean } | undefined;
  return () => gitlabReachable(config, readyCache, (c) => (readyCache = c));
}

function gitlabReachable(config: Config, readyCache: { at: number; ok: boolean } | undefined, store: (c: { at: number; ok: boolean }) => void): Promise<boolean> {
  if (readyCache && Date.now() - readyCache.at < READY_TTL_MS) return Promise.resolve(readyCache.ok);
  const url = new URL(config.gitlabRoot + '/api/v4/version', config.gitlabUrl.origin);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      store({ at: Date.now(), ok });
      resolve(ok);
    };
    const req = send(url, { method: 'GET', timeout: 3000, agent: false, ...(config.gitlabCa ? { ca: config.gitlabCa } : {}) }, (res) => {
      res.resume();
      done((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
    req.end();
  });
}
