// Step 3 of starting: the listener, the server edge. Every request gets its context here and
// leaves exactly one audit line when its connection is done with it, whatever step refused
// it; requests Node's parser or the adapter refuse before the app are answered and audited
// here too, by the same writer as every other refusal (answer()).
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { AuditLog, AuditRecord } from '../audit/audit.ts';
import type { Config } from '../config/env.ts';
import { attachContext, auditRecord, type RequestContext } from '../context.ts';
import { answer, rawAnswer, refusal } from '../errors.ts';
import { capConnections, clientTimedOut, clientTimeouts, pacedTimeouts } from './abuse.ts';
import type { Limiter } from '../limits/client-limits.ts';
import type { GitLabHealth } from '../ops/gitlab-health.ts';
import type { ProxyMetrics } from '../ops/metrics.ts';
import { publicUrlWatch } from '../ops/public-url-check.ts';
import { identifyRequest } from '../ops/request-id.ts';

const HEALTH = new Set(['/healthz', '/readyz']);

export interface EdgeDeps {
  config: Config;
  /** The proxy's own path prefix (from PUBLIC_URL), "" by default. */
  publicRoot: string;
  tls: { cert: string | Buffer; key: string | Buffer } | undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  app: Hono<any>;
  audit: AuditLog;
  auditRefusing: () => boolean;
  limiter: Limiter;
  metrics: ProxyMetrics;
  gitlabHealth: GitLabHealth;
  ops: Logger;
  /** Shutting down: answers close their connection. */
  draining: () => boolean;
  /** The shutdown timeout is cutting what is still in flight. */
  cutting: () => boolean;
}

export function createEdge(d: EdgeDeps): Server {
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
  const honoListener = getRequestListener(d.app.fetch, { autoCleanupIncoming: false, overrideGlobalObjects: false, errorHandler: adapterRefusal });

  const finish = (ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void => {
    // The connection closed before the pipeline decided anything: the client went away (or
    // the shutdown timeout cut it).
    if (ctx.reason === 'unprocessed' && !res.writableFinished) ctx.reason = d.cutting() ? 'shutdown' : 'client-aborted';
    const record = auditRecord(ctx, req, res);
    d.audit.write(record);
    if (record.upstreamMs !== null) d.gitlabHealth.answered();
    d.limiter.release(ctx);
    d.metrics.request(record);
  };

  const { config } = d;
  const serverOptions: ServerOptions = {
    maxHeaderSize: config.limits.maxHeaderBytes,
    insecureHTTPParser: false,
    // A missing Host is refused by the adapter (adapterRefusal), so that it is audited too.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    ...clientTimeouts(config.limits),
  };
  const checkPublicHost = publicUrlWatch(config.publicUrl, (host, publicHost) => d.ops.warn({ host, publicUrl: publicHost },
    'PUBLIC_URL names another host than clients use: Link and Location headers send vendors to PUBLIC_URL; check the setting'));
  // Every answer on the API surface (src/app.ts: forwarded, refused, OPTIONS) writes
  // X-Request-Id with its own headers. Set here as well, it would send each of those through
  // Node's slower path for headers set before writeHead, one setHeader call per header.
  const apiPrefix = `${d.publicRoot}/api/`;
  const nameRequest = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void => {
    identifyRequest(req, ctx, config.trustedProxies);
    if (!req.url?.startsWith(apiPrefix)) res.setHeader('X-Request-Id', ctx.reqId);
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (d.draining()) res.setHeader('Connection', 'close');
    if (HEALTH.has(req.url ?? '') && (req.method === 'GET' || req.method === 'HEAD')) {
      nameRequest(req, res, attachContext(req));
      void honoListener(req, res);
      return;
    }
    if (config.publicUrl) checkPublicHost(req.headers.host);
    const ctx = attachContext(req);
    nameRequest(req, res, ctx);
    // 'close' comes once per response: a plain listener, without once()'s wrapper and removal.
    res.on('close', () => finish(ctx, req, res));
    if (d.auditRefusing()) {
      refuseUnaudited(ctx, res);
      return;
    }
    current = ctx;
    void honoListener(req, res);
    current = undefined;
  };
  const server: Server = d.tls
    ? (createHttpsServer({ ...serverOptions, cert: d.tls.cert, key: d.tls.key }, onRequest) as unknown as Server)
    : createServer(serverOptions, onRequest);
  // A client that stops reading (or sending) for longer than any legitimate pause is cut, so
  // it cannot hold a connection to GitLab forever.
  server.timeout = Math.max(config.limits.clientIdleTimeoutMs, config.limits.upstreamResponseTimeoutMs) + 5000;
  // CONNECT would open a tunnel; Node hands it to this event instead of the request listener.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const record = answerClientError(Object.assign(new Error('CONNECT'), { code: 'CONNECT' }), socket, d.audit, req);
    if (record) d.metrics.request(record);
  });
  capConnections(server, { limits: config.limits, audit: d.audit, metrics: d.metrics, ops: d.ops });
  const timedOut = pacedTimeouts((socket) => {
    const record = clientTimedOut(socket, d.audit);
    if (record) d.metrics.request(record);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return timedOut(socket);
    const record = answerClientError(err, socket, d.audit);
    if (record) d.metrics.request(record);
  });
  return server;
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
  socket.end(rawAnswer({ status, headers, body }));
  return record;
}
