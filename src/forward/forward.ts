// Forwarding: the only code that hands the request to GitLab. http-proxy-middleware streams
// the response; this module decides exactly what it sends: the path and query canonicalization
// approved, the allowlisted headers, exactly one credential (the real token), and the body
// bytes that were checked. It also decides what of GitLab's answer reaches the client: the
// status, the response headers minus hop-by-hop ones and cookies, rewritten Link and
// Location, and the body as streamed (LFS batch answers alone are read whole, to clean them).
import { Agent as HttpAgent, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { createProxyMiddleware, proxyEventsPlugin, type RequestHandler } from 'http-proxy-middleware';
import { markUpstreamResponse, markUpstreamStart, type RequestContext } from '../context.ts';
import { answer, refusal, type Refusal } from '../errors.ts';
import type { ForwardPlan } from '../types.ts';
import { isLfsJson, localLocation, rewriteLink, stripLfsAuthorization } from './rewrite.ts';
import { respondFilteredList } from '../scope/list-filter.ts';
import { countStreamed } from './stream-memory.ts';
import { guardUpstreamRequest, type ResponseWatch, type UpstreamTimeouts } from './timeouts.ts';

export interface ForwardSettings {
  gitlabUrl: URL;
  gitlabRoot: string;
  /** The real token, read per request so a rotated token file takes effect at once. */
  token: () => string;
  /** GitLab's connect and response timeouts (src/forward/timeouts.ts). */
  timeouts: UpstreamTimeouts;
  /** A request to GitLab failed (unreachable, timed out, cut). */
  onError: (err: Error, ctx: RequestContext) => void;
  /** The connection pool to GitLab (src/ops/upstream.ts: private CA, idle timeout); a
   *  default keep-alive agent when absent. */
  agent?: HttpAgent | HttpsAgent;
}

/** A decision's forward plan (src/types.ts) and what serving it needs besides. */
export interface ForwardRequest extends ForwardPlan {
  ctx: RequestContext;
  /** The proxy's base URL as the client sees it, e.g. "https://proxy.example.com". */
  publicBase: string;
  /** Whether this client may be sent to `path` (relative to the proxy's base): a redirect
   *  GitLab answers with is decided like a request (src/decision/decide.ts). */
  allowsLocation: (path: string) => Promise<boolean>;
  /** The client's own GitLab token (upstream_token_file/_env), instead of settings.token(). */
  token: string | undefined;
}

const PLAN = Symbol('gitlab-scope-proxy.plan');
/** The plan, and the response timer once the request to GitLab is made. */
type Planned = ForwardRequest & { watch?: ResponseWatch };
type PlannedRequest = IncomingMessage & { [PLAN]?: Planned };

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse, plan: ForwardRequest): Promise<void>;
  close(): void;
}

/** Response headers that describe one hop, not the resource (RFC 9110 7.6.1), plus GitLab's
 *  session cookie, which belongs to the proxy's token and never to a vendor. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'set-cookie',
]);
/** An LFS batch answer is read whole to be cleaned; a larger one is refused. */
const LFS_MAX_BYTES = 4 * 1024 * 1024;

export function createForwarder(settings: ForwardSettings): Forwarder {
  const agentOptions = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = settings.agent ?? (settings.gitlabUrl.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions));

  const proxy: RequestHandler = createProxyMiddleware({
    // A URL object, parsed once: given a string, http-proxy-middleware and httpxy would each
    // parse it again for every request.
    target: new URL(settings.gitlabUrl.origin),
    // Only the `on:` handlers below: the default plugins' logger builds a URL per response
    // (to log it nowhere) and their error responder is replaced by `on.error`.
    ejectPlugins: true,
    plugins: [proxyEventsPlugin],
    changeOrigin: true,
    xfwd: false,
    agent,
    followRedirects: false,
    // The response is written below, header by header, instead of copied wholesale.
    selfHandleResponse: true,
    logger: undefined,
    on: {
      proxyReq: (proxyReq: ClientRequest, req: IncomingMessage) => {
        const plan = (req as PlannedRequest)[PLAN]!;
        plan.watch = guardUpstreamRequest(proxyReq, plan.ctx, settings.timeouts);
        if (plan.body.length > 0) proxyReq.write(plan.body);
      },
      proxyRes: (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
        const plan = (req as PlannedRequest)[PLAN]!;
        markUpstreamResponse(plan.ctx);
        // A redirect is decided like a request (async) before it is answered; nothing else waits.
        const location = proxyRes.headers.location;
        if (typeof location !== 'string') return respond(proxyRes, res, plan, settings, undefined);
        proxyRes.pause();
        void redirectAllowed(location, plan, settings).then((allowed) => {
          respond(proxyRes, res, plan, settings, allowed);
          // Paused explicitly above: a 'data' listener alone would not start it again.
          proxyRes.resume();
        });
      },
      error: (err: Error, req: IncomingMessage, res: ServerResponse | Socket) => {
        const plan = (req as PlannedRequest)[PLAN];
        if (!plan || !('writeHead' in res)) return;
        settings.onError(err, plan.ctx);
        if (res.headersSent) {
          res.destroy();
          return;
        }
        sendRefusal(res, plan, refusal(plan.ctx.timedOut ? 'upstream-timeout' : 'upstream-unreachable'));
      },
    },
  });

  return {
    forward(req, res, plan) {
      // With pipelining, Node hands the app the next request on a connection before the
      // previous answer is written. If that answer closes the connection (a refused request
      // whose framing or body could not be trusted), what follows it on the connection must
      // not reach GitLab: wait until this response is the one being written.
      // Recorded as refused until then, so that the audit line, written when the connection
      // closes, says so even if it closes before this resumes.
      const { decision, reason } = plan.ctx;
      plan.ctx.decision = 'deny';
      plan.ctx.reason = 'connection-closed';
      // Usually the response already owns its connection: no promise to wait for.
      if (res.socket) return isUsable(res.socket) ? sendUpstream(req, res, plan, decision, reason) : Promise.resolve();
      return isCurrentResponse(req, res).then((current) => (current ? sendUpstream(req, res, plan, decision, reason) : undefined));
    },
    close: () => agent.destroy(),
  };

  /** The request goes to GitLab: what the decision said is recorded again, and the real
   *  credential replaces the client's. */
  function sendUpstream(req: IncomingMessage, res: ServerResponse, plan: ForwardRequest, decision: RequestContext['decision'], reason: RequestContext['reason']): Promise<void> {
    plan.ctx.decision = decision;
    plan.ctx.reason = reason;
    (req as PlannedRequest)[PLAN] = plan;
    req.url = settings.gitlabRoot + plan.target;
    const headers: Record<string, string> = { ...plan.headers };
    setCredential(headers, plan.token ?? settings.token(), plan.basicAuth === true);
    headers['x-request-id'] = plan.ctx.reqId;
    if (plan.body.length > 0 || req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
      headers['content-length'] = String(plan.body.length);
    }
    req.headers = headers;
    markUpstreamStart(plan.ctx);
    return proxy(req, res);
  }
}

/** Exactly one credential: the real token (canonicalization dropped the client's). */
function setCredential(headers: Record<string, string>, token: string, basic: boolean): void {
  if (basic) headers.authorization = `Basic ${Buffer.from(`oauth2:${token}`).toString('base64')}`;
  else headers['private-token'] = token;
}

const isUsable = (socket: Socket | null): boolean => socket !== null && socket.writable && !socket.destroyed;

/**
 * True once `res` owns its connection and the connection can still carry an answer; false
 * if it closes or is ending first. Node parses the next pipelined request, and hands it the
 * connection, even after an answer with "Connection: close" has ended the socket's writable
 * side, when that answer was written between two parser callbacks.
 */
function isCurrentResponse(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (res.socket) return Promise.resolve(isUsable(res.socket));
  const socket = req.socket;
  if (!isUsable(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (current: boolean): void => {
      res.off('socket', onSocket);
      socket.off('close', onClose);
      resolve(current);
    };
    // ServerResponse emits 'socket' when Node assigns it the connection (_http_server.js).
    const onSocket = (): void => done(isUsable(res.socket));
    const onClose = (): void => done(false);
    res.on('socket', onSocket);
    socket.on('close', onClose);
  });
}

function respond(proxyRes: IncomingMessage, res: ServerResponse, plan: Planned, settings: ForwardSettings, location: string | null | undefined): void {
  const status = proxyRes.statusCode ?? 502;
  const headers = responseHeaders(proxyRes, plan, settings, location);
  const watch = plan.watch;
  const lfs = isLfsJson(proxyRes.headers['content-type']);
  if (lfs || plan.listFilter) {
    // Read whole here: each chunk from GitLab counts as a sign of life.
    if (watch) proxyRes.on('data', () => watch.refresh());
    if (lfs) respondLfs(proxyRes, res, status, headers, plan);
    else respondFilteredList(proxyRes, res, status, headers, plan.ctx, plan.listFilter!, (r) => sendRefusal(res, plan, r));
    return;
  }
  proxyRes.on('data', (chunk: Buffer) => {
    plan.ctx.bytesOut += chunk.length;
    countStreamed(chunk.length);
    watch?.refresh();
  });
  res.writeHead(status, headers);
  proxyRes.pipe(res);
}

/** The Location to hand the client, null to drop it (and say why), undefined to keep GitLab's. */
async function redirectAllowed(location: string, plan: ForwardRequest, settings: ForwardSettings): Promise<string | null | undefined> {
  const local = localLocation(location, settings.gitlabUrl.origin, settings.gitlabRoot, plan.publicBase);
  if (local === undefined) return undefined;
  if (local !== null && (await plan.allowsLocation(local.slice(plan.publicBase.length)))) return local;
  // A redirect to somewhere the policy does not allow is not handed to the client.
  plan.ctx.reason = 'redirect-outside-allowlist';
  return null;
}

/** `location`: what redirectAllowed decided for GitLab's Location header, if it sent one. */
function responseHeaders(proxyRes: IncomingMessage, plan: ForwardRequest, settings: ForwardSettings, location: string | null | undefined): OutgoingHttpHeaders {
  const gitlabBase = settings.gitlabUrl.origin + settings.gitlabRoot;
  const inbound = proxyRes.headers;
  const named = connectionNamed(inbound.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in inbound) {
    const value = inbound[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  // The proxy's request id, the one in the audit line (GitLab's own is its correlation id).
  out['x-request-id'] = plan.ctx.reqId;
  if (typeof out.link === 'string') out.link = rewriteLink(out.link, gitlabBase, plan.publicBase);
  if (location === null) delete out.location;
  else if (location !== undefined) out.location = location;
  return out;
}

/** The headers a Connection header names as hop-by-hop (RFC 9110 7.6.1); undefined for the
 *  usual "keep-alive" or "close", which name none, so most answers build no set. */
function connectionNamed(connection: string | undefined): Set<string> | undefined {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return undefined;
  return new Set(connection.toLowerCase().split(',').map((s) => s.trim()));
}

/**
 * An LFS batch answer carries, in objects[].actions.*.header, an Authorization value that
 * authenticates as the proxy's user (GitLab's lfs_api_controller.rb echoes the caller's own
 * header or mints an LFS token). The proxy only forwards /api/v4, where GitLab does not
 * answer with this type, so this is a second line: such an answer is read whole (bounded),
 * cleaned, and sent with a fresh length, or refused when it cannot be read.
 */
function respondLfs(proxyRes: IncomingMessage, res: ServerResponse, status: number, headers: OutgoingHttpHeaders, plan: ForwardRequest): void {
  let failed = false;
  const fail = (): void => {
    if (failed) return;
    failed = true;
    if (!res.headersSent) sendRefusal(res, plan, refusal('upstream-response-unreadable'));
    // Stop reading GitLab's answer once the refusal is on its way (destroying it earlier
    // would tear down the client's response with it).
    if (res.writableFinished) proxyRes.destroy();
    else res.once('finish', () => proxyRes.destroy());
  };
  const encoding = String(proxyRes.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') return fail();
  const chunks: Buffer[] = [];
  let size = 0;
  proxyRes.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > LFS_MAX_BYTES) fail();
    else chunks.push(chunk);
  });
  proxyRes.on('end', () => {
    if (failed) return;
    let body: Buffer;
    try {
      body = stripLfsAuthorization(Buffer.concat(chunks, size));
    } catch {
      return fail();
    }
    plan.ctx.bytesOut += body.length;
    delete headers['content-encoding'];
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  });
}

function sendRefusal(res: ServerResponse, plan: ForwardRequest, r: Refusal): void {
  plan.ctx.reason = r.reason;
  const { status, headers, body } = answer(r, { reqId: plan.ctx.reqId });
  plan.ctx.bytesOut = Buffer.byteLength(body);
  res.writeHead(status, headers);
  res.end(body);
}
