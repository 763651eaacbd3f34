// Under abuse: every vendor connection is closed by a bounded timeout (headers, whole request,
// idle keep-alive), each close that ends a request leaves one audit line, and connections past
// MAX_CONNECTIONS are closed as they arrive. The timeouts are set small here; each test waits
// for the socket's 'close' event (the guard in support/wait.ts fails it if the proxy's default
// timeouts, 30 s and more, were in force instead), never for time.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import { loadConfig } from '../src/config/env.ts';
import { releaseAfterWave } from '../src/edge/abuse.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { Changes, event, until } from './support/wait.ts';

const POLICY = `clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/statuses/:sha
`;

interface Conn {
  socket: Socket;
  received: () => string;
  closed: Promise<unknown>;
}

async function open(url: string): Promise<Conn> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {}); // a reset after the proxy's close is not what is tested
  const closed = event(socket, 'close');
  await event(socket, 'connect');
  return { socket, received: () => text, closed };
}

describe('client timeouts', () => {
  let h: Harness;
  let jwt: string;
  beforeAll(async () => {
    h = await startHarness({
      policies: { 'p.yaml': POLICY },
      env: { CLIENT_HEADERS_TIMEOUT_MS: '300', CLIENT_REQUEST_TIMEOUT_MS: '500', CLIENT_IDLE_TIMEOUT_MS: '300' },
    });
    jwt = await h.token('vendor');
  });
  afterAll(async () => {
    await h.close();
  });

  it('closes a connection whose headers never end, with a 408 and one audit line; GitLab sees nothing', async () => {
    const before = h.audit.length;
    const seen = h.standin.requests.length;
    const c = await open(h.url);
    c.socket.write('GET /api/v4/projects/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(c.received()).toContain('{"message":"408 Request Timeout"}');
    const line = await until(h.auditChanges, () => h.audit.slice(before).find((l) => l.reason === 'client-timeout'), 'the timeout line');
    expect(line).toMatchObject({ decision: 'deny', status: 408, detail: 'headers', client: null });
    expect(h.audit.length - before).toBe(1);
    expect(h.standin.requests.length).toBe(seen);
  });

  it('closes a connection that sends nothing at all', async () => {
    const before = h.audit.length;
    const c = await open(h.url);
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    await until(h.auditChanges, () => h.audit.length > before, 'the timeout line');
    expect(h.audit.slice(before)).toMatchObject([{ reason: 'client-timeout', detail: 'headers' }]);
  });

  it('closes an admitted request whose body trickles, audited once as client-timeout; GitLab sees nothing', async () => {
    const before = h.audit.length;
    const seen = h.standin.requests.length;
    const c = await open(h.url);
    c.socket.write(`POST /api/v4/projects/1/statuses/abc123 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${jwt}\r\n`
      + 'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"state":');
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    const line = await until(h.auditChanges, () => h.audit.slice(before).find((l) => l.path === '/api/v4/projects/1/statuses/abc123'), 'the request line');
    expect(line).toMatchObject({ client: 'vendor', decision: 'deny', reason: 'client-timeout', detail: 'body', status: 408, aborted: true });
    expect(h.audit.length - before).toBe(1);
    expect(h.standin.requests.length).toBe(seen);
  });

  it('closes an idle keep-alive connection after its request, which is audited once', async () => {
    const before = h.audit.length;
    const c = await open(h.url);
    c.socket.write(`GET /api/v4/projects/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${jwt}\r\n\r\n`);
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.received()).not.toContain(' 408 ');
    expect(c.received()).not.toMatch(/connection: close/i);
    expect(h.audit.slice(before)).toMatchObject([{ client: 'vendor', decision: 'allow', status: 200 }]);
  });
});

describe('MAX_CONNECTIONS', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'p.yaml': POLICY }, env: { MAX_CONNECTIONS: '2' } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('closes connections past the cap as they arrive, counts them and audits that it happened', async () => {
    // Both are accepted by the proxy (not only by the kernel) before the third one comes.
    const accepted = new Changes();
    let n = 0;
    h.proxy.server.on('connection', () => (n++, accepted.notify()));
    const held = [await open(h.url), await open(h.url)];
    await until(accepted, () => n === 2, 'two connections at the proxy');
    const third = await open(h.url);
    await third.closed;
    expect(third.received()).toBe('');
    const line = await until(h.auditChanges, () => h.audit.find((l) => (l as { decision: string }).decision === 'connections-capped'), 'the capped line');
    expect(line).toMatchObject({ client: 'system', reason: 'max-connections', dropped: 1 });
    expect(await h.proxy.metrics.registry.getSingleMetricAsString('gsp_connections_dropped_total')).toMatch(/gsp_connections_dropped_total 1$/m);
    // The connections already open are served.
    held[0]!.socket.write(`GET /api/v4/projects/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${await h.token('vendor')}\r\nConnection: close\r\n\r\n`);
    await held[0]!.closed;
    expect(held[0]!.received()).toMatch(/^HTTP\/1\.1 200 /);
    held[1]!.socket.destroy();
  });
});

describe('settings', () => {
  const base = { GITLAB_URL: 'https://gitlab.example.com', GITLAB_TOKEN: 'glpat-x', PROXY_JWT_SECRET: 'k'.repeat(32) };
  it('reads the timeouts and the cap, with their defaults', () => {
    expect(loadConfig(base).limits).toMatchObject({ clientHeadersTimeoutMs: 30_000, clientRequestTimeoutMs: 300_000, maxConnections: 4096 });
    const limits = loadConfig({ ...base, CLIENT_HEADERS_TIMEOUT_MS: '1000', CLIENT_REQUEST_TIMEOUT_MS: '2000', MAX_CONNECTIONS: '10' }).limits;
    expect(limits).toMatchObject({ clientHeadersTimeoutMs: 1000, clientRequestTimeoutMs: 2000, maxConnections: 10 });
  });
  it('refuses values out of range, and a headers timeout longer than the request timeout', () => {
    expect(() => loadConfig({ ...base, CLIENT_HEADERS_TIMEOUT_MS: '0' })).toThrow(/CLIENT_HEADERS_TIMEOUT_MS must be a whole number/);
    expect(() => loadConfig({ ...base, CLIENT_REQUEST_TIMEOUT_MS: 'soon' })).toThrow(/CLIENT_REQUEST_TIMEOUT_MS must be a whole number/);
    expect(() => loadConfig({ ...base, MAX_CONNECTIONS: '0' })).toThrow(/MAX_CONNECTIONS must be a whole number/);
    expect(() => loadConfig({ ...base, CLIENT_HEADERS_TIMEOUT_MS: '5000', CLIENT_REQUEST_TIMEOUT_MS: '4000' })).toThrow(/must not be greater than CLIENT_REQUEST_TIMEOUT_MS/);
  });
});

describe('after a wave of connections', () => {
  it('asks V8 for a memory-releasing collection once a wave of connections is over, not while it goes on', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const calls: unknown[] = [];
    const seen: number[] = [];
    const changes = new Changes();
    const stop = releaseAfterWave(server, {
      collect: (o) => void calls.push(o), checkMs: 20, minClosed: 3,
      checked: (open) => (seen.push(open), changes.notify()),
    });
    const conns = await Promise.all([open(url), open(url), open(url), open(url)]);
    await until(changes, () => seen.includes(4), 'a count of four open connections');
    expect(calls).toEqual([]);
    for (const c of conns.slice(0, 3)) c.socket.destroy();
    // Three closed, one still open: more than a tenth of the peak, the wave goes on.
    await until(changes, () => seen.includes(1), 'a count of one open connection');
    expect(calls).toEqual([]);
    conns[3]!.socket.destroy();
    await until(changes, () => calls.length > 0, 'the collection');
    expect(calls).toEqual([{ type: 'major', execution: 'async', flavor: 'last-resort' }]);
    stop();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
