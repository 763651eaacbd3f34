// The prescribed stack with nothing of the product in it: a Hono app on @hono/node-server
// whose one route hands every request to http-proxy-middleware, which sets the real token and
// pipes both ways. No authentication, no policy, no audit line, no header allowlist.
// No proxy built on hono + @hono/node-server + http-proxy-middleware costs less per request:
// the ratio of its req/s to the bare Node passthrough's is the most gitlab-scope-proxy could
// reach on this stack, whatever its own checks cost.
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { createServer, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { listenOnLoopback, type BareProxy } from './bare-proxy.ts';

interface NodeBindings {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
}

export async function startStackProxy(upstreamUrl: string, token: string): Promise<BareProxy> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
  // The cheapest configuration the library offers: target parsed once, no plugins (no logger,
  // no error responder), headers set by the library itself.
  const forward = createProxyMiddleware({
    target: new URL(new URL(upstreamUrl).origin),
    changeOrigin: true,
    agent,
    ejectPlugins: true,
    headers: { 'private-token': token },
  });
  const app = new Hono<{ Bindings: NodeBindings }>();
  app.all('*', async (c) => {
    await forward(c.env.incoming, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
  const server = createServer({ keepAliveTimeout: 65_000 }, getRequestListener(app.fetch, { overrideGlobalObjects: false }));
  return listenOnLoopback(server, agent);
}
