// Bodies and parameters (reference items 6, 7): Rack parses form bodies on any method and Rails
// JSON bodies on any method; Grape lets the body beat the query, Rails the query beat the
// body; Rack splits queries on ";" too, keeps the last duplicate and expands brackets, and
// JSON.parse keeps the last duplicate key. Whatever two readers could read differently is
// refused; what is accepted is forwarded byte for byte.
import { describe, expect, it } from 'vitest';
import { type Harness } from '../support/harness.ts';
import { bearer, expectRefused, forwarded, json, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - DELETE /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
`;
const NOTES = '/api/v4/projects/1/merge_requests/1/notes';
const FORM: [string, string] = ['Content-Type', 'application/x-www-form-urlencoded'];

let h: Harness;
let jwt: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
  },
);

describe('bodies on methods without one', () => {
  it.each(['GET', 'OPTIONS'])('refuses a %s with a form body', async (method) => {
    const sent = await send(h.url, { method, path: '/api/v4/projects', headers: [bearer(jwt), FORM], body: 'scope=all' });
    await expectRefused(h, sent, 'body-on-safe-method', 400);
  });

  it('refuses a GET with a JSON body and one with an empty chunked body', async () => {
    const { headers, body } = json({ scope: 'all' });
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects', headers: [bearer(jwt), ...headers], body }), 'body-on-safe-method', 400);
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects', headers: [bearer(jwt)], body: '', chunked: true }), 'body-on-safe-method', 400);
  });

  it('refuses a HEAD with a body', async () => {
    const sent = await send(h.url, { method: 'HEAD', path: '/api/v4/projects/1', headers: [bearer(jwt), FORM], body: 'a=1' });
    expect(sent.status).toBe(400);
    expect(h.standin.requests).toEqual([]);
    expect(h.audit.find((l) => l.reqId === sent.reqId)).toMatchObject({ decision: 'deny', reason: 'body-on-safe-method' });
  });

  it('reads a DELETE body like any other', async () => {
    const sent = await send(h.url, { method: 'DELETE', path: '/api/v4/projects/1', headers: [bearer(jwt), FORM], body: 'sudo=root' });
    await expectRefused(h, sent, 'sudo', 403);
  });
});

describe('a key in both the query and the body', () => {
  it.each([
    ['JSON', 'application/json', '{"body":"B"}'],
    ['form', 'application/x-www-form-urlencoded', 'body=B'],
    ['multipart', 'multipart/form-data; boundary=bnd0', '--bnd0\r\nContent-Disposition: form-data; name="body"\r\n\r\nB\r\n--bnd0--\r\n'],
  ])('is refused with a %s body', async (_name, type, body) => {
    const sent = await send(h.url, { method: 'POST', path: `${NOTES}?body=A`, headers: [bearer(jwt), ['Content-Type', type]], body });
    await expectRefused(h, sent, 'parameter-in-query-and-body', 400);
  });

  it('is refused when the spellings differ only in brackets or case', async () => {
    const bracket = await send(h.url, { method: 'POST', path: `${NOTES}?body[]=A`, headers: [bearer(jwt), FORM], body: 'body=B' });
    await expectRefused(h, bracket, 'parameter-in-query-and-body', 400);
    const { headers, body } = json({ Body: 'B' });
    await expectRefused(h, await send(h.url, { method: 'POST', path: `${NOTES}?body=A`, headers: [bearer(jwt), ...headers], body }), 'parameter-in-query-and-body', 400);
  });

  it('forwards distinct keys in query and body unchanged', async () => {
    const { headers, body } = json({ body: 'B' });
    const rec = await forwarded(h, await send(h.url, { method: 'POST', path: `${NOTES}?internal=false`, headers: [bearer(jwt), ...headers], body }));
    expect(rec.url).toBe(`${NOTES}?internal=false`);
    expect(rec.body.toString()).toBe(body);
    expect(rec.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(rec.headers['transfer-encoding']).toBeUndefined();
  });

  it('forwards a chunked body with a fresh Content-Length', async () => {
    const { headers, body } = json({ body: 'chunked' });
    const rec = await forwarded(h, await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ...headers], body, chunked: true }));
    expect(rec.body.toString()).toBe(body);
    expect(rec.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(rec.headers['transfer-encoding']).toBeUndefined();
  });
});

describe('query strings', () => {
  it.each([
    ['per_page=5;sudo=root', 'semicolon-separator'],
    ['per_page=5;page=2', 'semicolon-separator'],
    ['state=opened&state=closed', 'duplicate-parameter'],
    ['page=1&page=1', 'duplicate-parameter'],
    ['labels=a&labels[]=b', 'conflicting-parameter'],
    ['not[labels]=a&not[]=b', 'conflicting-parameter'],
    ['a[b][c]=1', 'bad-parameter-name'],
    ['[page]=2', 'bad-parameter-name'],
    ['page]=2', 'bad-parameter-name'],
    ['page[=2', 'bad-parameter-name'],
    ['pa%20ge=2', 'bad-parameter-name'],
    ['page=1&&per_page=2', 'empty-parameter'],
    ['page=%zz', 'bad-percent-encoding'],
    ['search=%ff', 'invalid-utf8'],
    ['search=a%00b', 'nul-byte'],
  ])('refuses ?%s (%s)', async (query, reason) => {
    const sent = await send(h.url, { path: `/api/v4/projects?${query}`, headers: [bearer(jwt)] });
    await expectRefused(h, sent, reason, 400);
  });

  it('forwards array and hash keys and encoded values exactly as sent', async () => {
    const query = 'labels[]=a&labels[]=b%2Cc&not[labels]=x&search=acme%2Fapp&order_by=id';
    const rec = await forwarded(h, await send(h.url, { path: `/api/v4/projects?${query}`, headers: [bearer(jwt)] }));
    expect(rec.url).toBe(`/api/v4/projects?${query}`);
  });
});

describe('form and JSON bodies', () => {
  it.each([
    ['body=a;sudo=1', 'semicolon-separator'],
    ['body=a&body=b', 'duplicate-parameter'],
    ['body=a&[body]=b', 'bad-parameter-name'],
    ['body[x][y]=a', 'bad-parameter-name'],
  ])('refuses the form body %s (%s)', async (body, reason) => {
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), FORM], body });
    await expectRefused(h, sent, reason, 400);
  });

  it.each([
    ['{"body":"a","body":"b"}', 'duplicate-key'],
    ['{"body":"a","bo\\u0064y":"b"}', 'duplicate-key'],
    ['{"body":"a","x":{"k":1,"k":2}}', 'duplicate-key'],
    ['[{"body":"a"}]', 'json-not-object'],
    ['"body"', 'json-not-object'],
    ['{"body":"a"', 'bad-json'],
    ['{"body":"a"} {"sudo":1}', 'bad-json'],
  ])('refuses the JSON body %s (%s)', async (body, reason) => {
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', 'application/json']], body });
    await expectRefused(h, sent, reason, 400);
  });

  it('refuses JSON with invalid UTF-8 or a byte-order mark', async () => {
    const invalid = Buffer.concat([Buffer.from('{"body":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    await expectRefused(h, await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', 'application/json']], body: invalid }), 'invalid-utf8', 400);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"body":"x"}')]);
    await expectRefused(h, await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', 'application/json']], body: bom }), 'bad-json', 400);
  });

  it.each(['application/json; charset=latin1', 'application/json; foo=bar', 'application/json; charset=utf-8; charset=utf-8', 'application/json;;', 'application/json x'])(
    'refuses the Content-Type %s', async (type) => {
      const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', type]], body: '{"body":"x"}' });
      await expectRefused(h, sent, 'content-type', 415);
    });

  it('accepts a UTF-8 charset, in any case, and forwards the Content-Type as sent', async () => {
    const rec = await forwarded(h, await send(h.url, {
      method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', 'application/json; charset=UTF-8']], body: '{"body":"h\u00e9"}',
    }));
    expect(rec.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(rec.body.toString('utf8')).toBe('{"body":"h\u00e9"}');
  });
});
