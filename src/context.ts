// Per-request state shared by the pipeline steps and written once to the audit log.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditDecision, AuditRecord, OAuthAuditDetail } from './audit/audit.ts';
import type { Reason } from './types.ts';

export interface RequestContext {
  reqId: string;
  /** performance.now() on arrival (milliseconds, monotonic, sub-microsecond). */
  startMs: number;
  client: string | null;
  jti: string | null;
  method: string;
  path: string;
  queryKeys: string[];
  rule: string | null;
  route: string | null;
  decision: AuditDecision;
  reason: Reason | null;
  /** What the reason concerned (a rule, a project, a field); never a secret. */
  detail: string | null;
  upstreamStartMs: number | null;
  upstreamMs: number | null;
  bytesIn: number;
  bytesOut: number;
  timedOut: boolean;
  /** The client's address (src/ops/request-id.ts; behind TRUSTED_PROXIES, the forwarded one). */
  ip?: string | null;
  /** The User-Agent as canonicalization read it (null: none); undefined: not read. */
  userAgent?: string | null;
  /** Set by the OAuth endpoints (src/oauth/routes.ts). */
  oauth?: OAuthAuditDetail;
  /** The per-client limiter's bookkeeping (src/limits/client-limits.ts LimitHolder). */
  limitHeld: string | null;
  limitOver: boolean;
}

const CTX = Symbol('gitlab-scope-proxy.context');
const MAX_PATH = 2048;

export function attachContext(req: IncomingMessage): RequestContext {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const ctx: RequestContext = {
    reqId: randomUUID(),
    startMs: performance.now(),
    client: null,
    jti: null,
    method: (req.method ?? '').slice(0, 16),
    path: (q === -1 ? url : url.slice(0, q)).slice(0, MAX_PATH),
    queryKeys: [],
    rule: null,
    route: null,
    decision: 'deny',
    reason: 'unprocessed',
    detail: null,
    upstreamStartMs: null,
    upstreamMs: null,
    bytesIn: 0,
    bytesOut: 0,
    timedOut: false,
    limitHeld: null,
    limitOver: false,
  };
  (req as IncomingMessage & { [CTX]: RequestContext })[CTX] = ctx;
  return ctx;
}

export function contextOf(req: IncomingMessage): RequestContext {
  const ctx = (req as IncomingMessage & { [CTX]?: RequestContext })[CTX];
  if (!ctx) throw new Error('request has no context');
  return ctx;
}

/** Milliseconds between two performance.now() readings, to the hundredth (no BigInt per
 *  reading, as process.hrtime.bigint() made). */
const ms = (from: number, to: number): number => Math.round((to - from) * 100) / 100;

export function auditRecord(ctx: RequestContext, req: IncomingMessage, res: ServerResponse): AuditRecord {
  // req.headers is built on first use; canonicalization has usually read the header already.
  const ua = ctx.userAgent !== undefined ? ctx.userAgent : req.headers['user-agent'];
  const record: AuditRecord = {
    reqId: ctx.reqId,
    client: ctx.client,
    jti: ctx.jti,
    method: ctx.method,
    path: ctx.path,
    queryKeys: ctx.queryKeys,
    rule: ctx.rule,
    route: ctx.route,
    decision: ctx.decision,
    reason: ctx.reason,
    // Left out of the line (JSON.stringify drops undefined) when there is none.
    detail: ctx.detail ?? undefined,
    status: res.statusCode,
    durationMs: ms(ctx.startMs, performance.now()),
    upstreamMs: ctx.upstreamMs,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
    ip: ctx.ip !== undefined ? ctx.ip : req.socket.remoteAddress ?? null,
    userAgent: typeof ua === 'string' ? ua.slice(0, 256) : null,
  };
  if (!res.writableFinished) record.aborted = true;
  if (ctx.oauth) record.oauth = ctx.oauth;
  return record;
}

export function markUpstreamStart(ctx: RequestContext): void {
  ctx.upstreamStartMs = performance.now();
}

export function markUpstreamResponse(ctx: RequestContext): void {
  if (ctx.upstreamStartMs !== null) ctx.upstreamMs = ms(ctx.upstreamStartMs, performance.now());
}
