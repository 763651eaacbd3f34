// The baseline: the least a Node reverse proxy can do for the same job. One keep-alive
// agent, headers copied (minus hop-by-hop ones), the real token set, bodies piped both ways.
// No authentication, no policy, no audit line. What this proxy costs over direct is Node's
// HTTP stack; what gitlab-scope-proxy costs over this is its own work.
import { Agent, createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Server } from 'node:http';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding'];

function copyHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...headers };
  for (const name of HOP_BY_HOP) delete out[name];
  return out;
}

export interface BareProxy {
  server: Server;
  close: () => Promise<void>;
}

export async function startBareProxy(upstreamUrl: string, token: string): Promise<BareProxy> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const headers = copyHeaders(req.headers);
    headers.host = upstream.host;
    headers['private-token'] = token;
    const upReq = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (upRes) => {
        const out = copyHeaders(upRes.headers);
        res.writeHead(upRes.statusCode ?? 502, out);
        upRes.pipe(res);
      },
    );
    upReq.on('error', () => {
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end('{"message":"502 Bad Gateway"}');
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    req.pipe(upReq);
  });
  return listenOnLoopback(server, agent);
}

/** Listens on a free loopback port; close() also ends idle connections and the pool. */
export async function listenOnLoopback(server: Server, agent: Agent): Promise<BareProxy> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        agent.destroy();
      }),
  };
}
