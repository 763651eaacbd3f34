// MAX_BUFFERED_BODY_BYTES: the request bodies all requests hold at once are bounded, so that
// many clients (or one within MAX_CONCURRENT_PER_CLIENT) cannot make the proxy buffer
// MAX_BODY_BYTES each without limit. A body that does not fit is refused 503 and audited, and
// the bytes a body held are given back when its request is over.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/env.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { waitFor } from './support/ops.ts';
import { Changes, event, until } from './support/wait.ts';

const POLICY = `clients:
  vendor:
    allow:
      - POST /api/v4/projects/:id/statuses/:sha
`;
const PATH = '/api/v4/projects/1/statuses/abc123';

describe('MAX_BUFFERED_BODY_BYTES', () => {
  let h: Harness;
  let jwt: string;
  const gauge = async (name: string): Promise<number> =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await h.proxy.metrics.registry.getSingleMetricAsString(name))?.[1]);
  const post = async (body: string): Promise<Response> =>
    fetch(`${h.url}${PATH}`, { method: 'POST', headers: { 'PRIVATE-TOKEN': jwt, 'content-type': 'application/json' }, body });

  beforeAll(async () => {
    h = await startHarness({ policies: { 'p.yaml': POLICY }, env: { MAX_BODY_BYTES: '1000', MAX_BUFFERED_BODY_BYTES: '1000' } });
    jwt = await h.token('vendor');
  });
  afterAll(async () => {
    await h.close();
  });

  it('refuses a body that does not fit beside the ones being read, and takes one again once they are done', async () => {
    const first = `{"state":"success","description":"${'x'.repeat(760)}"}`;
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    await event(socket, 'connect');
    socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${jwt}\r\ncontent-type: application/json\r\nConnection: close\r\n`
      + `content-length: ${first.length}\r\n\r\n${first.slice(0, 20)}`);
    // Its Content-Length is held from the moment its body is being read.
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === first.length, 'the first body to be held');

    const before = h.audit.length;
    const refused = await post(`{"state":"${'y'.repeat(300)}"}`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toEqual({ message: '503 Service Unavailable' });
    const line = await until(h.auditChanges, () => h.audit.slice(before).find((l) => l.reason === 'body-budget'), 'the refusal line');
    expect(line).toMatchObject({ client: 'vendor', decision: 'deny', status: 503 });

    socket.write(first.slice(20));
    await event(socket, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === 0, 'the first body to be given back');
    const next = await post(`{"state":"success","description":"${'z'.repeat(300)}"}`);
    expect(next.status).toBe(201);
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === 0, 'every body given back');
    expect(h.standin.requests.filter((r) => r.path === PATH)).toHaveLength(2);
  });

  it('counts a chunked body chunk by chunk', async () => {
    const chunked = (body: string): Promise<Response> => fetch(`${h.url}${PATH}`, {
      method: 'POST', headers: { 'PRIVATE-TOKEN': jwt, 'content-type': 'application/json' }, duplex: 'half',
      body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(body)), c.close()) }),
    } as RequestInit);
    const held = `{"state":"success","description":"${'h'.repeat(760)}"}`;
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    await event(socket, 'connect');
    socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${jwt}\r\ncontent-type: application/json\r\nConnection: close\r\n`
      + `content-length: ${held.length}\r\n\r\n${held.slice(0, 20)}`);
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === held.length, 'a body to be held');
    const refused = await chunked(`{"state":"success","description":"${'c'.repeat(300)}"}`);
    expect(refused.status).toBe(503);
    socket.end(held.slice(20));
    await event(socket, 'close');
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === 0, 'the held body given back');
    const ok = await chunked(`{"state":"success","description":"${'c'.repeat(880)}"}`);
    expect(ok.status).toBe(201);
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === 0, 'the chunked body given back');
  });

  it('gives back the bytes of a body refused while it is read, even if its client keeps the connection', async () => {
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    const got = new Changes();
    socket.on('data', (c: Buffer) => ((answer += c.toString('latin1')), got.notify()));
    await event(socket, 'connect');
    const chunk = (text: string): string => `${text.length.toString(16)}\r\n${text}\r\n`;
    // Chunked, so its bytes are taken as they come; past MAX_BODY_BYTES it is refused 413.
    socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: ${jwt}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`
      + chunk(`{"state":"success","description":"${'a'.repeat(600)}`) + chunk('b'.repeat(600)));
    await until(got, () => /^HTTP\/1\.1 413 /.test(answer), 'the 413');
    // The client does not close its side: the bytes must come back all the same.
    await waitFor(async () => (await gauge('gsp_request_body_bytes_held')) === 0, 'the refused body given back');
    socket.destroy();
  });

  it('must not be less than MAX_BODY_BYTES', () => {
    const base = { GITLAB_URL: 'https://gitlab.example.com', GITLAB_TOKEN: 'glpat-x', PROXY_JWT_SECRET: 'k'.repeat(32) };
    expect(loadConfig(base).limits.maxBufferedBodyBytes).toBe(64 * 1024 * 1024);
    expect(() => loadConfig({ ...base, MAX_BODY_BYTES: '2000', MAX_BUFFERED_BODY_BYTES: '1000' })).toThrow(/MAX_BUFFERED_BODY_BYTES must not be less than MAX_BODY_BYTES/);
  });
});
