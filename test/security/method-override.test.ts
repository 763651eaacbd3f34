// Method override (reference item 4): Rack::MethodOverride turns a POST into the method named
// by X-HTTP-Method-Override or by a `_method` form field, and Rack reads a POST without a
// Content-Type as a form. A client allowed to POST a note must not DELETE anything this way.
import { describe, expect, it } from 'vitest';
import { type Harness } from '../support/harness.ts';
import { bearer, expectRefused, forwarded, receivedNames, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - POST /api/v4/projects/:id/merge_requests/:iid/notes
      - POST /api/v4/projects/:id/statuses/:sha
`;
const NOTES = '/api/v4/projects/1/merge_requests/1/notes';

let h: Harness;
let jwt: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
  },
);

describe('override headers', () => {
  it.each(['X-HTTP-Method-Override', 'x-http-method-override', 'X-HTTP-Method', 'X-Method-Override'])(
    'refuses a POST carrying %s', async (name) => {
      const sent = await send(h.url, {
        method: 'POST', path: NOTES, headers: [bearer(jwt), [name, 'DELETE'], ['Content-Type', 'application/json']], body: '{"body":"x"}',
      });
      await expectRefused(h, sent, 'method-override', 400);
    });

  it('refuses the header on a GET too, and the underscore spelling', async () => {
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), ['X-HTTP-Method-Override', 'DELETE']] }), 'method-override', 400);
    await expectRefused(h, await send(h.url, { path: '/api/v4/projects/1', headers: [bearer(jwt), ['X_HTTP_Method_Override', 'DELETE']] }), 'underscore-header', 400);
  });
});

describe('_method parameters', () => {
  it.each(['_method=DELETE', '_METHOD=delete', '_method[]=DELETE', '%5Fmethod=DELETE'])('refuses ?%s', async (query) => {
    const sent = await send(h.url, { method: 'POST', path: `${NOTES}?${query}`, headers: [bearer(jwt), ['Content-Type', 'application/json']], body: '{"body":"x"}' });
    await expectRefused(h, sent, 'method-override', 400);
  });

  it.each([
    ['form', 'application/x-www-form-urlencoded', 'body=x&_method=DELETE'],
    ['form, encoded name', 'application/x-www-form-urlencoded', 'body=x&%5Fmethod=DELETE'],
    ['JSON', 'application/json', '{"body":"x","_method":"DELETE"}'],
  ])('refuses _method in a %s body', async (_name, type, body) => {
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', type]], body });
    await expectRefused(h, sent, 'forbidden-body-key', 400);
  });

  it('refuses _method in a multipart body', async () => {
    const b = 'b0123456789';
    const body = `--${b}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${b}--\r\n`;
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', `multipart/form-data; boundary=${b}`]], body });
    await expectRefused(h, sent, 'forbidden-body-key', 400);
  });
});

describe('bodies Rack would read as a form', () => {
  it('refuses a POST body without Content-Type', async () => {
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt)], body: 'body=x&_method=DELETE' });
    await expectRefused(h, sent, 'content-type', 415);
  });

  it('refuses a chunked POST body without Content-Type', async () => {
    const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt)], body: 'body=x', chunked: true });
    await expectRefused(h, sent, 'content-type', 415);
  });

  it.each(['text/plain', 'multipart/mixed; boundary=abc', 'application/x-www-form-urlencoded, text/plain', 'text/x-json', 'application/jsonrequest', 'application/vnd.git-lfs+json'])(
    'refuses a body of type %s', async (type) => {
      const sent = await send(h.url, { method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', type]], body: 'body=x&_method=DELETE' });
      await expectRefused(h, sent, 'content-type', 415);
    });

  it('forwards a POST without a body or Content-Type as a POST with Content-Length 0', async () => {
    const rec = await forwarded(h, await send(h.url, { method: 'POST', path: '/api/v4/projects/1/statuses/abc1234?state=success', headers: [bearer(jwt)] }));
    expect(rec.method).toBe('POST');
    expect(rec.headers['content-length']).toBe('0');
    expect(rec.body.length).toBe(0);
    expect(receivedNames(rec).filter((n) => n.includes('method'))).toEqual([]);
  });

  it('forwards an allowed POST as a POST, with none of the override headers', async () => {
    const rec = await forwarded(h, await send(h.url, {
      method: 'POST', path: NOTES, headers: [bearer(jwt), ['Content-Type', 'application/x-www-form-urlencoded']], body: 'body=hello',
    }));
    expect(rec.method).toBe('POST');
    expect(rec.body.toString()).toBe('body=hello');
    expect(receivedNames(rec).filter((n) => n.includes('method'))).toEqual([]);
  });
});
