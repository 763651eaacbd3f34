// The admin listener (ADMIN_HOST:ADMIN_PORT, default 0.0.0.0:9090): /metrics, /healthz,
// /readyz for Prometheus, probes and operators. It is a separate server on a separate port so
// that vendors never reach it: the vendor-facing listener has no /metrics route at all.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyMetrics } from './metrics.ts';

export interface Readiness {
  ready: boolean;
  /** What is checked, each true when fine: gitlab reachable, audit log writable, not draining. */
  checks: Record<string, boolean>;
}

/** What POST /-/reload and POST /-/reopen do (the same as SIGHUP and SIGUSR1). */
export interface AdminActions {
  reload: () => { ok: true; changed: string[] } | { ok: false; problems: string[] };
  reopenAudit: () => void;
}

export interface AdminServer {
  url: string;
  server: Server;
  close: () => Promise<void>;
}

export async function startAdmin(opts: {
  port: number;
  host: string;
  metrics: ProxyMetrics;
  readiness: () => Promise<Readiness>;
  actions?: AdminActions;
}): Promise<AdminServer> {
  const server = createServer({ requireHostHeader: false, keepAliveTimeout: 5000 }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    // Lifecycle endpoints, as Prometheus has them: POST only, no body read, nothing returned
    // but the outcome (problems are file:line messages, never a secret's value).
    if ((path === '/-/reload' || path === '/-/reopen') && opts.actions) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        return json(405, { message: '405 Method Not Allowed' });
      }
      req.resume();
      if (path === '/-/reopen') {
        opts.actions.reopenAudit();
        return json(200, { status: 'reopened' });
      }
      const outcome = opts.actions.reload();
      return outcome.ok ? json(200, { status: 'reloaded', changed: outcome.changed }) : json(500, { status: 'refused', problems: outcome.problems });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return json(405, { message: '405 Method Not Allowed' });
    }
    switch (path) {
      case '/metrics':
        opts.metrics.text().then(
          (text) => {
            res.writeHead(200, { 'content-type': opts.metrics.contentType, 'cache-control': 'no-store' });
            res.end(req.method === 'HEAD' ? undefined : text);
          },
          () => json(500, { message: '500 Internal Server Error' }),
        );
        return;
      case '/healthz':
        return json(200, { status: 'ok' });
      case '/readyz':
        opts.readiness().then(
          (r) => json(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks }),
          () => json(503, { status: 'not ready' }),
        );
        return;
      default:
        return json(404, { message: '404 Not Found' });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
