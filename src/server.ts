// Wires the pieces together and listens. The server edge attaches the per-request context
// and writes the audit line when the response ends or the client goes away, so every request
// leaves exactly one line, whatever step refused it.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { createAuditLog, createOpsLog, type AuditLog } from './audit/audit.ts';
import { TokenVerifier } from './auth/verify.ts';
import { secret, type Config } from './config/env.ts';
import { attachContext, auditRecord } from './context.ts';
import { errorResponse, malformed } from './errors.ts';
import { createForwarder } from './forward/forward.ts';
import { loadPolicyDir, type Policy } from './policy/load.ts';

export interface RunningProxy {
  url: string;
  server: Server;
  policy: () => Policy;
  /** Re-reads the policy directory; keeps the old policy if the new one is invalid. */
  reload: () => Policy;
  audit: AuditLog;
  close: () => Promise<void>;
}

export interface StartOptions {
  ops?: Logger;
  audit?: AuditLog;
}

const HEALTH = new Set(['/healthz', '/readyz']);

export async function startProxy(config: Config, opts: StartOptions = {}): Promise<RunningProxy> {
  const ops = opts.ops ?? createOpsLog(config.logLevel);
  const audit = opts.audit ?? createAuditLog(config.auditLog, (err) => ops.error({ err: err.message }, 'audit log write failed'));
  let policy = loadPolicyDir(config.policyDir);
  let gitlabToken = config.gitlabToken;

  const publicRoot = config.publicUrl ? config.publicUrl.pathname.replace(/\/+$/, '') : '';
  const forwarder = createForwarder({
    gitlabUrl: config.gitlabUrl,
    gitlabRoot: config.gitlabRoot,
    token: () => gitlabToken,
    responseTimeoutMs: config.limits.upstreamResponseTimeoutMs,
    onError: (err, ctx) => ops.warn({ reqId: ctx.reqId, err: err.message, timedOut: ctx.timedOut }, 'upstream error'),
  });
  const app = createApp({
    policy: () => policy,
    verifier: new TokenVerifier(config.jwt),
    forwarder,
    publicRoot,
    publicBase: config.publicUrl ? config.publicUrl.origin + publicRoot : undefined,
    maxBodyBytes: config.limits.maxBodyBytes,
    ready: readinessProbe(config),
    onInternalError: (err, ctx) => ops.error({ reqId: ctx.reqId, err: err instanceof Error ? err.stack : String(err) }, 'internal error'),
  });
  const honoListener = getRequestListener(app.fetch, { autoCleanupIncoming: false, overrideGlobalObjects: false });

  const server = createServer(
    {
      maxHeaderSize: config.limits.maxHeaderBytes,
      insecureHTTPParser: false,
      requireHostHeader: true,
      joinDuplicateHeaders: false,
      keepAliveTimeout: config.limits.clientIdleTimeoutMs,
      headersTimeout: 30_000,
      requestTimeout: 300_000,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      if (!(HEALTH.has(req.url ?? '') && (req.method === 'GET' || req.method === 'HEAD'))) {
        const ctx = attachContext(req);
        res.once('close', () => audit.write(auditRecord(ctx, req, res)));
      } else {
        attachContext(req);
      }
      void honoListener(req, res);
    },
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, audit));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  ops.info({ port: addr.port, host: addr.address, gitlab: config.gitlabUrl.origin + config.gitlabRoot, clients: policy.clients.size, policy: policy.checksum.slice(0, 12) }, 'listening');

  return {
    url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`,
    server,
    policy: () => policy,
    reload: () => {
      const next = loadPolicyDir(config.policyDir);
      if (config.gitlabTokenFile) gitlabToken = secret({ GITLAB_TOKEN_FILE: config.gitlabTokenFile }, 'GITLAB_TOKEN')!.value;
      policy = next;
      return next;
    },
    audit,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      forwarder.close();
      await audit.flush();
    },
  };
}

/** Requests Node's parser refuses never reach the app (duplicate Content-Length, bad
 *  chunked framing, oversized headers): answer them in GitLab's format and audit them too. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, audit: AuditLog): void {
  const code = err.code ?? 'HPE_ERROR';
  if (code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = tooLarge ? JSON.stringify({ message: '431 Request Header Fields Too Large' }) : errorResponse(malformed('unparseable')).body;
  audit.write({
    reqId: 'parse-error', client: null, jti: null, method: '', path: '', queryKeys: [], rule: null,
    decision: 'deny', reason: `unparseable:${code}`, status, durationMs: 0, upstreamMs: null,
    bytesIn: 0, bytesOut: Buffer.byteLength(body), ip: socket.remoteAddress ?? null, userAgent: null,
  });
  socket.end(`HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
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
    const req = send(url, { method: 'GET', timeout: 3000, agent: false }, (res) => {
      res.resume();
      done((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
    req.end();
  });
}
