// Forwarding: the only code that hands the request to GitLab. http-proxy-middleware streams
// the response; this module decides exactly what it sends: the path and query canonicalization
// approved, the allowlisted headers, exactly one credential (the real token), and the body
// bytes that were checked. It also rewrites the response headers that matter.
import { Agent as HttpAgent, type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createProxyMiddleware, type RequestHandler } from 'http-proxy-middleware';
import { markUpstreamResponse, markUpstreamStart, type RequestContext } from '../context.ts';
import { errorResponse, ProxyError } from '../errors.ts';
import { rewriteLink, rewriteLocation } from './rewrite.ts';

export interface ForwardSettings {
  gitlabUrl: URL;
  gitlabRoot: string;
  /** The real token, read per request so a rotated token file takes effect at once. */
  token: () => string;
  responseTimeoutMs: number;
  /** Whether a redirect inside GitLab leads somewhere this client may go. */
  onError: (err: Error, ctx: RequestContext) => void;
}

export interface ForwardPlan {
  ctx: RequestContext;
  /** Raw path relative to GitLab's root plus the canonical query: "/api/v4/projects/5?page=2". */
  target: string;
  headers: Record<string, string>;
  body: Buffer;
  /** The proxy's base URL as the client sees it, e.g. "https://proxy.example.com". */
  publicBase: string;
  allowsLocation: (path: string) => boolean;
}

const PLAN = Symbol('gitlab-scope-proxy.plan');
type PlannedRequest = IncomingMessage & { [PLAN]?: ForwardPlan };

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse, plan: ForwardPlan): Promise<void>;
  close(): void;
}

export function createForwarder(settings: ForwardSettings): Forwarder {
  const gitlabBase = settings.gitlabUrl.origin + settings.gitlabRoot;
  const agentOptions = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = settings.gitlabUrl.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);

  const proxy: RequestHandler = createProxyMiddleware({
    target: settings.gitlabUrl.origin,
    changeOrigin: true,
    xfwd: false,
    agent,
    followRedirects: false,
    logger: undefined,
    on: {
      proxyReq: (proxyReq: ClientRequest, req: IncomingMessage) => {
        const plan = (req as PlannedRequest)[PLAN]!;
        const timer = setTimeout(() => {
          plan.ctx.timedOut = true;
          proxyReq.destroy(new Error('upstream response timeout'));
        }, settings.responseTimeoutMs);
        proxyReq.once('response', () => clearTimeout(timer));
        proxyReq.once('close', () => clearTimeout(timer));
        if (plan.body.length > 0) proxyReq.write(plan.body);
      },
      proxyRes: (proxyRes: IncomingMessage, req: IncomingMessage) => {
        const plan = (req as PlannedRequest)[PLAN]!;
        markUpstreamResponse(plan.ctx);
        proxyRes.on('data', (chunk: Buffer) => (plan.ctx.bytesOut += chunk.length));
        rewriteHeaders(proxyRes, plan, gitlabBase);
      },
      error: (err: Error, req: IncomingMessage, res: ServerResponse | import('node:net').Socket) => {
        const plan = (req as PlannedRequest)[PLAN];
        if (!plan || !('writeHead' in res)) return;
        settings.onError(err, plan.ctx);
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const refusal = plan.ctx.timedOut
          ? new ProxyError('gateway-timeout', 'upstream-timeout')
          : new ProxyError('bad-gateway', 'upstream-unreachable');
        plan.ctx.reason = refusal.reason;
        const { status, body } = errorResponse(refusal);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    },
  });

  return {
    async forward(req, res, plan) {
      (req as PlannedRequest)[PLAN] = plan;
      req.url = settings.gitlabRoot + plan.target;
      const headers: Record<string, string> = {
        ...plan.headers,
        'private-token': settings.token(),
        'x-request-id': plan.ctx.reqId,
      };
      if (plan.body.length > 0 || req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
        headers['content-length'] = String(plan.body.length);
      }
      req.headers = headers;
      markUpstreamStart(plan.ctx);
      await proxy(req, res);
    },
    close: () => agent.destroy(),
  };
}

function rewriteHeaders(proxyRes: IncomingMessage, plan: ForwardPlan, gitlabBase: string): void {
  const h = proxyRes.headers;
  // GitLab's session cookie belongs to the proxy's token, never to a vendor.
  delete h['set-cookie'];
  if (typeof h.link === 'string') h.link = rewriteLink(h.link, gitlabBase, plan.publicBase);
  if (typeof h.location === 'string') {
    const local = rewriteLocation(h.location, gitlabBase, plan.publicBase);
    if (local !== undefined) {
      const path = local.slice(plan.publicBase.length);
      if (plan.allowsLocation(path)) h.location = local;
      else {
        // A redirect to somewhere the policy does not allow is not handed to the client.
        delete h.location;
        plan.ctx.reason = 'redirect-outside-allowlist';
      }
    }
  }
}
