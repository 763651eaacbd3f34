// Request smuggling (reference item 16): a request whose framing two HTTP parsers could read
// differently is refused and its connection closed, so that nothing after it on the same
// connection, a smuggled second request above all, is ever read as a request and forwarded.
import { describe, expect, it } from 'vitest';
import { rawRequest, statuses, type Harness } from '../support/harness.ts';
import { forbidForRestOfTest, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
`;

let h: Harness;
let jwt: string;
let host: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
    host = new URL(h.url).host;
  },
);

/** A request that would be allowed on its own: if it reaches the stand-in, it was smuggled
 *  (the stand-in fails the test whenever it arrives; see expectSmugglingRefused). */
const smuggled = (project = 4): string => `GET /api/v4/projects/${project} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${jwt}\r\n\r\n`;
const head = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

/**
 * Sends `bytes` on one connection and checks: one refusal with `status`, the connection
 * closed, nothing at the stand-in, and a deny audit line whose reason matches.
 */
async function expectSmugglingRefused(bytes: string, status: number, reason: RegExp): Promise<void> {
  const before = h.audit.length;
  forbidForRestOfTest(h, 'sent after a refused request on the same connection');
  const raw = await rawRequest(h.url, bytes);
  expect(statuses(raw.text), raw.text).toEqual([status]);
  expect(raw.closed, 'the connection is closed').toBe(true);
  expect(h.standin.requests.map((r) => `${r.method} ${r.url}`)).toEqual([]);
  await h.waitForAudit(before + 1);
  const lines = h.audit.slice(before);
  expect(lines[0]).toMatchObject({ decision: 'deny', status });
  expect(lines[0]!.reason).toMatch(reason);
  // A request that was parsed after the refusal is recorded as refused, never allowed.
  for (const line of lines.slice(1)) expect(line).toMatchObject({ decision: 'deny' });
}

describe('framing two parsers could read differently', () => {
  it('Transfer-Encoding with Content-Length', async () => {
    await expectSmugglingRefused(
      head(['POST /api/v4/projects/1/merge_requests/1/notes HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Content-Type: application/json', 'Content-Length: 4', 'Transfer-Encoding: chunked']) + '0\r\n\r\n' + smuggled(),
      400, /^unparseable$/,
    );
  });

  it('two Content-Length headers', async () => {
    await expectSmugglingRefused(
      head(['POST /api/v4/projects/1/merge_requests/1/notes HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Content-Type: application/json', 'Content-Length: 0', 'Content-Length: 44']) + smuggled(),
      400, /^unparseable$/,
    );
  });

  it.each(['gzip, chunked', 'chunked, chunked', 'identity, chunked'])('Transfer-Encoding: %s', async (te) => {
    await expectSmugglingRefused(
      head(['POST /api/v4/projects/1/merge_requests/1/notes HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Content-Type: application/json', `Transfer-Encoding: ${te}`]) + '0\r\n\r\n' + smuggled(),
      400, /^(transfer-encoding|unparseable)$/,
    );
  });

  it('a Content-Length that is not a plain number', async () => {
    await expectSmugglingRefused(
      head(['POST /api/v4/projects/1/merge_requests/1/notes HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Content-Type: application/json', 'Content-Length: +0']) + smuggled(),
      400, /^unparseable$/,
    );
  });

  it('an obsolete folded header line', async () => {
    await expectSmugglingRefused(
      head(['GET /api/v4/projects/1 HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'X-Folded: a', ' Transfer-Encoding: chunked']) + smuggled(),
      400, /^unparseable$/,
    );
  });
});

describe('targets and upgrades', () => {
  it('an absolute-form target', async () => {
    await expectSmugglingRefused(head([`GET http://${host}/api/v4/projects/1 HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${jwt}`]) + smuggled(), 400, /^absolute-form$/);
  });

  it('an asterisk-form target (well framed, so the connection may stay open)', async () => {
    const before = h.audit.length;
    forbidForRestOfTest(h, 'OPTIONS * is answered by the proxy');
    const raw = await rawRequest(h.url, head(['OPTIONS * HTTP/1.1', `Host: ${host}`]));
    expect(statuses(raw.text)).toEqual([400]);
    await h.waitForAudit(before + 1);
    expect(h.audit[before]).toMatchObject({ decision: 'deny', status: 400 });
    expect(h.standin.requests).toEqual([]);
  });

  it('an Upgrade to a WebSocket', async () => {
    await expectSmugglingRefused(
      head(['GET /api/v4/projects/1 HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==']) + smuggled(),
      400, /^upgrade$/,
    );
  });

  it('an h2c upgrade', async () => {
    await expectSmugglingRefused(
      head(['GET /api/v4/projects/1 HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAAP__']) + smuggled(),
      400, /^upgrade$/,
    );
  });
});

describe('a refused request whose body was not read', () => {
  it('a GET with a body: what follows the body is not forwarded', async () => {
    await expectSmugglingRefused(
      head(['GET /api/v4/projects/1 HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Content-Length: 5']) + 'hello' + smuggled(),
      400, /^body-on-safe-method$/,
    );
  });

  it('a POST body without Content-Type: what follows the body is not forwarded', async () => {
    const body = 'body=x';
    await expectSmugglingRefused(
      head(['POST /api/v4/projects/1/merge_requests/1/notes HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, `Content-Length: ${body.length}`]) + body + smuggled(),
      415, /^content-type$/,
    );
  });

  it('a chunked body with a bad chunk size', async () => {
    await expectSmugglingRefused(
      head(['POST /api/v4/projects/1/merge_requests/1/notes HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${jwt}`, 'Content-Type: application/json', 'Transfer-Encoding: chunked']) + 'zz\r\n{}\r\n0\r\n\r\n' + smuggled(),
      400, /^unparseable$/,
    );
  });
});

describe('plain pipelining', () => {
  it('still serves two well-framed requests on one connection, in order', async () => {
    const raw = await rawRequest(h.url, smuggled(5) + smuggled(6), { responses: 2 });
    expect(statuses(raw.text)).toEqual([200, 200]);
    expect(h.standin.requests.map((r) => r.url)).toEqual(['/api/v4/projects/5', '/api/v4/projects/6']);
  });
});
