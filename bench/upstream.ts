// A GitLab stand-in for the bench, run as its own process (see run.ts): as little work per
// request as a Node server can do, so the figures measure the proxies and not the upstream.
//   GET /api/v4/projects/:id                          -> ~300 bytes of JSON
//   GET /api/v4/projects/:id/repository/archive?bytes=N -> N bytes in 64 KiB chunks, with backpressure
// Both require the PRIVATE-TOKEN header to be the real token (401 otherwise), so a proxy that
// failed to swap the credential shows up as non-2xx responses.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildReply, ChildRequest } from './lib/children.ts';

const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const PROJECT = /^\/api\/v4\/projects\/([0-9]+)$/;
const ARCHIVE = /^\/api\/v4\/projects\/([0-9]+)\/repository\/archive$/;
const MAX_ARCHIVE = 8 * 1024 * 1024 * 1024;

export function projectJson(id: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      id: Number(id),
      name: 'scope-proxy-bench',
      path_with_namespace: 'bench/scope-proxy-bench',
      default_branch: 'main',
      visibility: 'private',
      web_url: 'https://gitlab.example.com/bench/scope-proxy-bench',
      created_at: '2024-01-01T00:00:00.000Z',
      last_activity_at: '2025-01-01T00:00:00.000Z',
      star_count: 0,
      forks_count: 0,
      open_issues_count: 3,
      archived: false,
    }),
  );
}

export function startUpstream(token: string): Promise<Server> {
  const bodies = new Map<string, Buffer>();
  const server = createServer({ keepAliveTimeout: 65_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method !== 'GET') return send(res, 405, '{"message":"405 Method Not Allowed"}');
    if (req.headers['private-token'] !== token) return send(res, 401, '{"message":"401 Unauthorized"}');
    let m = PROJECT.exec(path);
    if (m) {
      let body = bodies.get(m[1]!);
      if (!body) bodies.set(m[1]!, (body = projectJson(m[1]!)));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    m = ARCHIVE.exec(path);
    if (m) {
      const bytes = Number(new URLSearchParams(q === -1 ? '' : url.slice(q + 1)).get('bytes') ?? '0');
      if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_ARCHIVE) return send(res, 400, '{"message":"400 bad bytes"}');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
      streamBytes(res, bytes);
      return;
    }
    send(res, 404, '{"message":"404 Not Found"}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Writes `remaining` bytes in 64 KiB chunks, waiting for 'drain' whenever write() says so. */
function streamBytes(res: ServerResponse, remaining: number): void {
  const pump = (): void => {
    while (remaining > 0) {
      const n = Math.min(remaining, CHUNK.length);
      remaining -= n;
      const more = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!more && remaining > 0) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.once('close', () => (remaining = 0));
  pump();
}

// As a child process (forked by run.ts): listen, report the URL, exit with the parent.
if (process.send && process.env.BENCH_ROLE === 'upstream') {
  const token = process.env.BENCH_UPSTREAM_TOKEN;
  if (!token) throw new Error('BENCH_UPSTREAM_TOKEN is required');
  const server = await startUpstream(token);
  const { port } = server.address() as AddressInfo;
  const reply = (msg: ChildReply): void => {
    process.send!(msg);
  };
  process.on('message', (raw: unknown) => {
    const msg = raw as ChildRequest;
    if (msg.cmd !== 'close') return;
    server.close(() => {
      reply({ id: msg.id, rss: process.memoryUsage.rss(), peakRss: 0, vmHwm: null });
      process.disconnect();
      setImmediate(() => process.exit(0));
    });
    server.closeAllConnections();
  });
  process.on('disconnect', () => setTimeout(() => process.exit(0), 1000).unref());
  reply({ id: 0, ready: true, url: `http://127.0.0.1:${port}`, startMs: 0, rss: process.memoryUsage.rss(), peakRss: 0, vmHwm: null });
}
