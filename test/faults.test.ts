// Faults: GitLab down, hanging, resetting mid-body, slow or stalled while streaming; a client
// that goes away mid-upload or mid-download; an audit log that cannot be written. After each,
// the proxy still serves, and its connections (vendor side and pool to GitLab) return to
// their baseline. Upstreams here are raw servers, so the test sees what GitLab's side saw.
import { randomBytes } from 'node:crypto';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections, readLines, send, startRig, waitFor, type Rig } from './support/ops.ts';
import { Changes, until } from './support/wait.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const POLICY = `clients:
  packit:
    allow:
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/repository/archive
      - POST /api/v4/projects/:id/statuses/:sha
`;
const TIMEOUTS = { UPSTREAM_RESPONSE_TIMEOUT_MS: '400', UPSTREAM_CONNECT_TIMEOUT_MS: '300', UPSTREAM_IDLE_TIMEOUT_MS: '300' };
const realToken = `glpat-${randomBytes(12).toString('hex')}`;
const FLOOD_CHUNKS = 1536;

interface Upstream {
  server: Server;
  url: string;
  port: number;
  /** Requests received, by path + query. */
  seen: string[];
  /** Responses that closed before they were finished (GitLab's side of an abort). */
  cut: string[];
  /** Notified when `seen` or `cut` grows. */
  changes: Changes;
  close: () => Promise<void>;
}

/** A GitLab that misbehaves on request: the query's `mode` says how. */
async function startUpstream(port = 0): Promise<Upstream> {
  const seen: string[] = [];
  const cut: string[] = [];
  const changes = new Changes();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    seen.push(url);
    changes.notify();
    res.once('close', () => {
      if (!res.writableFinished) cut.push(url);
      changes.notify();
    });
    if (req.headers['private-token'] !== realToken) return void res.writeHead(401).end('{"message":"401 Unauthorized"}');
    const mode = new URL(url, 'http://x').searchParams.get('mode');
    const chunk = Buffer.alloc(4096, 0x61);
    if (url.startsWith('/api/v4/projects/2')) return; // hangs: never answers
    if (mode === null) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":1}');
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    if (mode === 'reset') {
      res.write(chunk);
      setTimeout(() => req.socket.destroy(), 30);
    } else if (mode === 'slow') {
      // 8 chunks, 150 ms apart: slower than a fast GitLab, never silent for the 400 ms limit.
      let n = 0;
      const t = setInterval(() => {
        res.write(chunk);
        if (++n === 8) {
          clearInterval(t);
          res.end();
        }
      }, 150);
      res.once('close', () => clearInterval(t));
    } else if (mode === 'stall') {
      res.write(chunk); // then nothing
    } else if (mode === 'flood') {
      // 96 MiB as fast as the reader takes it (more than all the socket buffers on the way
      // hold), then silence.
      const big = Buffer.alloc(65_536, 0x62);
      let left = FLOOD_CHUNKS;
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(big)) return void res.once('drain', pump);
        }
      };
      pump();
    } else if (mode === 'endless') {
      const t = setInterval(() => res.write(chunk), 10);
      res.once('close', () => clearInterval(t));
    }
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const actual = (server.address() as AddressInfo).port;
  return {
    server, seen, cut, changes, port: actual, url: `http://127.0.0.1:${actual}`,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** The proxy is back at its baseline: no vendor connection open, no socket to GitLab in use or pooled. */
async function atBaseline(rig: Rig): Promise<void> {
  await waitFor(async () => (await connections(rig.proxy.server)) === 0, 'vendor connections to close');
  await waitFor(() => rig.proxy.upstreamSockets().active === 0, 'upstream sockets to be released');
  await waitFor(() => rig.proxy.upstreamSockets().free === 0, 'idle upstream sockets to time out (UPSTREAM_IDLE_TIMEOUT_MS)');
}

describe('GitLab faults', () => {
  let upstream: Upstream;
  let rig: Rig;
  let jwt: string;
  const call = (path: string) => send(rig.url + path, { headers: { 'PRIVATE-TOKEN': jwt } });
  const stillServes = async (): Promise<void> => {
    expect((await call('/api/v4/projects/1')).status).toBe(200);
    await atBaseline(rig);
  };
  /** The first audit line after the first `after` lines whose path contains `pathPart`. */
  const lineFor = async (pathPart: string, after: number) => {
    return rig.until(() => rig.auditLines().slice(after).find((l) => String(l.path).includes(pathPart)), `the audit line of ${pathPart}`);
  };
  const mark = () => rig.auditLines().length;

  beforeAll(async () => {
    upstream = await startUpstream();
    rig = await startRig({ policies: { 'a.yaml': POLICY }, env: { GITLAB_URL: upstream.url, GITLAB_TOKEN: realToken, ...TIMEOUTS } });
    jwt = await rig.token('packit');
    await stillServes();
  });
  afterAll(async () => {
    await rig.close();
    await upstream.close();
  });

  it('GitLab hangs: 504 after UPSTREAM_RESPONSE_TIMEOUT_MS, and the request to GitLab is closed', async () => {
    const start = performance.now();
    const at = mark();
    const res = await call('/api/v4/projects/2');
    expect(res.status).toBe(504);
    expect(JSON.parse(res.text)).toEqual({ message: '504 Gateway Timeout' });
    // Never before the limit (a timer does not fire early); how much later depends on the machine.
    expect(performance.now() - start).toBeGreaterThanOrEqual(380);
    await until(upstream.changes, () => upstream.cut.includes('/api/v4/projects/2'), "GitLab's side to see the request closed");
    expect(await lineFor('/api/v4/projects/2', at)).toMatchObject({ status: 504, reason: 'upstream-timeout' });
    expect(await rig.metric('gsp_upstream_errors_total', { kind: 'response-timeout' })).toBe(1);
    await stillServes();
  });

  it('GitLab resets the connection mid-body: the client response is cut, audited as aborted', async () => {
    const at = mark();
    await expect(call('/api/v4/projects/1/repository/archive?mode=reset')).rejects.toThrow();
    const line = await lineFor('/repository/archive', at);
    expect(line).toMatchObject({ status: 200, aborted: true, reason: 'upstream-aborted' });
    expect(await rig.metric('gsp_upstream_errors_total', { kind: 'reset' })).toBe(1);
    await stillServes();
  });

  it('GitLab answers slowly while streaming: every byte arrives', async () => {
    const res = await call('/api/v4/projects/1/repository/archive?mode=slow');
    expect(res.status).toBe(200);
    expect(res.body.equals(Buffer.alloc(8 * 4096, 0x61))).toBe(true);
    await stillServes();
  });

  it('GitLab stalls mid-body for longer than the limit: the response is cut and GitLab released', async () => {
    const start = performance.now();
    const at = mark();
    await expect(call('/api/v4/projects/1/repository/archive?mode=stall')).rejects.toThrow();
    expect(performance.now() - start).toBeGreaterThanOrEqual(380);
    await until(upstream.changes, () => upstream.cut.includes('/api/v4/projects/1/repository/archive?mode=stall'), "GitLab's side to see the close");
    expect(await lineFor('/repository/archive', at)).toMatchObject({ status: 200, aborted: true, reason: 'upstream-stalled' });
    expect(await rig.metric('gsp_upstream_errors_total', { kind: 'stall-timeout' })).toBe(1);
    await stillServes();
  });

  it('does not count time the client is not reading as GitLab stalling, and still sees a stall after', async () => {
    const at = mark();
    const outcome = await new Promise<{ size: number; cut: boolean }>((resolve) => {
      const req = get(`${rig.url}/api/v4/projects/1/repository/archive?mode=flood`, { headers: { 'PRIVATE-TOKEN': jwt }, agent: false }, (res) => {
        let size = 0;
        res.once('data', (c: Buffer) => {
          size += c.length;
          // The client stops reading for twice the stall limit: the proxy is held back by
          // backpressure, not by GitLab.
          res.pause();
          setTimeout(() => {
            res.on('data', (d: Buffer) => (size += d.length));
            res.resume();
          }, 800);
        });
        res.on('end', () => resolve({ size, cut: false }));
        res.on('aborted', () => resolve({ size, cut: true }));
        res.on('error', () => resolve({ size, cut: true }));
      });
      req.on('error', () => undefined);
    });
    // Every byte GitLab sent arrived, and then GitLab's silence cut the response.
    expect(outcome).toEqual({ size: FLOOD_CHUNKS * 65_536, cut: true });
    expect(await lineFor('/repository/archive', at)).toMatchObject({ status: 200, aborted: true, reason: 'upstream-stalled', bytesOut: FLOOD_CHUNKS * 65_536 });
    await stillServes();
  });

  it('the client aborts mid-download: the request to GitLab is aborted too', async () => {
    const before = upstream.cut.length;
    const at = mark();
    await new Promise<void>((resolve, reject) => {
      const req = get(`${rig.url}/api/v4/projects/1/repository/archive?mode=endless`, { headers: { 'PRIVATE-TOKEN': jwt }, agent: false }, (res) => {
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
    });
    await until(upstream.changes, () => upstream.cut.length > before, "GitLab's side to see the request closed");
    expect(upstream.cut.at(-1)).toBe('/api/v4/projects/1/repository/archive?mode=endless');
    const line = await lineFor('/repository/archive', at);
    expect(line).toMatchObject({ status: 200, aborted: true, decision: 'allow' });
    await stillServes();
  });

  it('the client aborts mid-upload: nothing reaches GitLab', async () => {
    const seen = upstream.seen.length;
    const at = mark();
    const { port } = new URL(rig.url);
    const socket: Socket = connect(Number(port), '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(`POST /api/v4/projects/1/statuses/abc123 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${jwt}\r\ncontent-type: application/json\r\ncontent-length: 200000\r\n\r\n{"state":"success","description":"`);
    socket.write('x'.repeat(50_000));
    // The proxy has admitted the request and is reading its body: then the client goes away.
    await waitFor(async () => (await rig.metric('gsp_requests_in_flight', { client: 'packit' })) === 1, 'the upload to be in flight');
    socket.destroy();
    const line = await lineFor('/statuses/abc123', at);
    expect(line).toMatchObject({ decision: 'deny', reason: 'client-aborted', aborted: true });
    expect(upstream.seen.slice(seen)).toEqual([]);
    await stillServes();
    expect(upstream.seen.slice(seen)).toEqual(['/api/v4/projects/1']);
  });

  it('keeps memory and sockets at their baseline across repeated faults', async () => {
    const round = async (): Promise<void> => {
      await call('/api/v4/projects/1/repository/archive?mode=reset').catch(() => undefined);
      await new Promise<void>((resolve) => {
        const req = get(`${rig.url}/api/v4/projects/1/repository/archive?mode=endless`, { headers: { 'PRIVATE-TOKEN': jwt }, agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => resolve());
      });
      await call('/api/v4/projects/1');
    };
    for (let i = 0; i < 10; i++) await round();
    await atBaseline(rig);
    gc();
    const baseline = process.memoryUsage().heapUsed;
    for (let i = 0; i < 60; i++) await round();
    await atBaseline(rig);
    gc();
    const after = process.memoryUsage().heapUsed;
    // 60 rounds of 3 requests: a leak of even one response object per request would show.
    expect(after - baseline).toBeLessThan(8 * 1024 * 1024);
    expect(upstream.cut.filter((u) => u.includes('endless'))).toHaveLength(71);
  });
});

describe('GitLab down and unreachable', () => {
  it('answers 502 while GitLab is down and serves again once it is back', async () => {
    const port = await freePort();
    const rig = await startRig({ policies: { 'a.yaml': POLICY }, env: { GITLAB_URL: `http://127.0.0.1:${port}`, GITLAB_TOKEN: realToken, ...TIMEOUTS } });
    let upstream: Upstream | undefined;
    try {
      const jwt = await rig.token('packit');
      const down = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(down.status).toBe(502);
      expect(JSON.parse(down.text)).toEqual({ message: '502 Bad Gateway' });
      expect(await rig.metric('gsp_upstream_errors_total', { kind: 'refused' })).toBe(1);
      // GitLab's outage is a metric, not a readiness failure: the replica stays in the Service
      // and keeps answering 502 in GitLab's JSON.
      const ready = await send(`${rig.adminUrl}/readyz`);
      expect(ready.status).toBe(200);
      expect(await rig.metric('gsp_gitlab_up')).toBe(0);
      upstream = await startUpstream(port);
      expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(200);
      await atBaseline(rig);
    } finally {
      await rig.close();
      await upstream?.close();
    }
  });

  it('gives up on a connection that does not complete within UPSTREAM_CONNECT_TIMEOUT_MS (504)', async () => {
    // Accepts TCP but never answers the TLS handshake.
    const sockets = new Set<Socket>();
    const closed = new Set<Socket>();
    const closes = new Changes();
    const silent = createTcpServer((s) => {
      sockets.add(s);
      s.on('close', () => {
        closed.add(s);
        closes.notify();
      });
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const rig = await startRig({ policies: { 'a.yaml': POLICY }, env: { GITLAB_URL: `https://127.0.0.1:${port}`, GITLAB_TOKEN: realToken, ...TIMEOUTS, UPSTREAM_RESPONSE_TIMEOUT_MS: '5000' } });
    try {
      const res = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') } });
      expect(res.status).toBe(504);
      expect(await rig.metric('gsp_upstream_errors_total', { kind: 'connect-timeout' })).toBe(1);
      expect(sockets.size).toBe(1);
      await until(closes, () => closed.size === 1, 'the half-open connection to be dropped');
      await atBaseline(rig);
    } finally {
      await rig.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

describe('audit log cannot be written', () => {
  for (const mode of ['refuse', 'continue'] as const) {
    it(`AUDIT_ON_FAILURE=${mode}: ${mode === 'refuse' ? 'refuses with 503 while' : 'serves on and counts the loss while'} the log cannot be written, and resumes`, async () => {
      const upstream = await startUpstream();
      const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'gsp-audit-'));
      const link = join(dir, 'audit.log');
      symlinkSync('/dev/full', link); // every write fails with ENOSPC: a full disk
      const rig = await startRig({
        policies: { 'a.yaml': POLICY },
        env: { GITLAB_URL: upstream.url, GITLAB_TOKEN: realToken, AUDIT_LOG: link, ...(mode === 'continue' ? { AUDIT_ON_FAILURE: 'continue' } : {}) },
        auditRetryMs: 100,
      });
      try {
        const jwt = await rig.token('packit');
        const call = () => send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } });
        // The failure is found by the first write: that request was served already.
        expect((await call()).status).toBe(200);
        await waitFor(async () => (await rig.metric('gsp_audit_writable')) === 0, 'the audit log to be marked unwritable');
        expect(await rig.metric('gsp_audit_write_failures_total')).toBe(1);
        const seen = upstream.seen.length;
        const during = [await call(), await call(), await call()];
        if (mode === 'refuse') {
          for (const r of during) {
            expect(r.status).toBe(503);
            expect(JSON.parse(r.text)).toEqual({ message: '503 Service Unavailable' });
          }
          expect(upstream.seen.length).toBe(seen);
          const ready = await send(`${rig.adminUrl}/readyz`);
          expect(ready.status).toBe(503);
          expect(JSON.parse(ready.text).checks.audit).toBe(false);
        } else {
          for (const r of during) expect(r.status).toBe(200);
          expect(upstream.seen.length).toBe(seen + 3);
          expect((await send(`${rig.adminUrl}/readyz`)).status).toBe(200);
        }
        await waitFor(async () => (await rig.metric('gsp_audit_lines_lost_total')) === 4, 'four lost lines to be counted');
        expect(rig.opsLines.filter((l) => String(l.msg).startsWith('audit log write failed'))).toHaveLength(1);

        // The disk has room again: the log resumes with a line saying how much was lost.
        unlinkSync(link);
        writeFileSync(link, '');
        await waitFor(async () => (await rig.metric('gsp_audit_writable')) === 1, 'the audit log to be writable again');
        expect((await call()).status).toBe(200);
        await rig.until(() => readLines(link).length === 2, 'two lines in the audit log');
        const [resumed, next] = readLines(link);
        expect(resumed).toMatchObject({ client: 'system', decision: 'audit-resumed', reason: 'write-failed', lost: 4 });
        expect(next).toMatchObject({ client: 'packit', status: 200, path: '/api/v4/projects/1' });
        expect(await rig.metric('gsp_audit_lines_lost_total')).toBe(4);
      } finally {
        await rig.close();
        await upstream.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
