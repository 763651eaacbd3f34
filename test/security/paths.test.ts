// Path normalisation (reference items 8, 10): Node's URL resolves "%2e%2e" and "\", Workhorse
// routes on path.Clean, Grape collapses "//", drops a trailing "/" and a ".json" suffix and
// matches encoded letters as literals, GitLab never resolves "..". The proxy refuses every
// path with more than one reading and forwards the bytes it checked.
import { describe, expect, it } from 'vitest';
import { rawRequest, statuses, type Harness } from '../support/harness.ts';
import { bearer, expectRefused, forbidForRestOfTest, forwarded, send, useAttackHarness } from './support.ts';

const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/merge_requests
      - GET /api/v4/projects/1/repository/files/:file_path
      - GET /api/v4/projects/2/repository/files/package.json
`;

let h: Harness;
let jwt: string;
useAttackHarness(
  POLICY,
  (harness, token) => {
    h = harness;
    jwt = token;
  },
);

const get = (path: string) => send(h.url, { path, headers: [bearer(jwt)] });

describe('dot segments', () => {
  it.each([
    '/api/v4/projects/1/merge_requests/../../../user',
    '/api/v4/projects/1/./merge_requests',
    '/api/v4/projects/1/merge_requests/..',
    '/api/v4/projects/1/merge_requests/%2e%2e/%2e%2e/%2e%2e/user',
    '/api/v4/projects/1/merge_requests/%2E%2E/%2E%2E/%2E%2E/user',
    '/api/v4/projects/1/merge_requests/.%2e/.%2E/%2e./user',
    '/api/v4/projects/1/%2e/merge_requests',
    '/api/v4/projects/..%2F..%2Fuser',
    '/api/v4/projects/acme%2F..%2Fother%2Fsecret',
    '/api/v4/projects/acme%2f.%2fdocs',
  ])('refuses %s', async (path) => {
    await expectRefused(h, await get(path), 'dot-segment', 400);
  });

  it.each(['/api/v4/projects/1/merge_requests/%252e%252e/%252e%252e/%252e%252e/user', '/api/v4/projects/acme%252Fdocs', '/api/v4/projects/1%25'])(
    'refuses the double-encoded %s', async (path) => {
      await expectRefused(h, await get(path), 'double-encoding', 400);
    });
});

describe('slashes', () => {
  it.each(['//api/v4/projects/1', '/api/v4//projects/1', '/api/v4/projects//1', '/api/v4/projects/1/', '/api/v4/projects/1//', '/api/v4/projects/acme%2F%2Fdocs', '/api/v4/projects/%2Facme%2Fdocs'])(
    'refuses %s', async (path) => {
      await expectRefused(h, await get(path), 'empty-segment', 400);
    });

  it('refuses a raw backslash and an encoded one', async () => {
    // Hono's Node adapter already answers a raw backslash with a bare 400 before the app runs.
    const before = h.audit.length;
    forbidForRestOfTest(h, 'a path with a backslash');
    const raw = await get('/api/v4/projects/1\\..\\..\\user');
    expect(raw.status).toBe(400);
    await h.waitForAudit(before + 1);
    expect(h.audit[before]).toMatchObject({ decision: 'deny', status: 400 });
    expect(h.standin.requests).toEqual([]);
    await expectRefused(h, await get('/api/v4/projects/1%5c..%5c..%5cuser'), 'control-character', 400);
    await expectRefused(h, await get('/api/v4/projects/1%5C'), 'control-character', 400);
  });
});

describe('bytes GitLab could read otherwise', () => {
  it.each([
    ['/api/v4/projects/1%00', 'control-character'],
    ['/api/v4/projects/1%0A', 'control-character'],
    ['/api/v4/projects/1%0d%0aX-Injected%3A%20yes', 'control-character'],
    ['/api/v4/projects/1%09', 'control-character'],
    ['/api/v4/projects/1%7F', 'control-character'],
    ['/api/v4/projects/%C0%AE%C0%AE', 'invalid-utf8'],
    ['/api/v4/projects/%ff', 'invalid-utf8'],
    ['/api/v4/projects/%e2%82', 'invalid-utf8'],
    ['/api/v4/projects/1%', 'bad-percent-encoding'],
    ['/api/v4/projects/1%g0', 'bad-percent-encoding'],
    ['/api/v4/%75ser', 'encoded-unreserved'],
    ['/api/v4/projects/%31', 'encoded-unreserved'],
    ['/api/v4/projects/1/merge%5Frequests', 'encoded-unreserved'],
    ['/api/v4/projects/1/merge_requests%7E', 'encoded-unreserved'],
    ['/api/v4/projects/1;x=1', 'path-characters'],
    ['/api/v4/projects/1:', 'path-characters'],
    ['/api/v4/projects/*', 'path-characters'],
    ['/api/v4/projects/{x}', 'path-characters'],
    ['/api/v4/projects/a|b', 'path-characters'],
  ])('refuses %s (%s)', async (path, reason) => {
    await expectRefused(h, await get(path), reason, 400);
  });

  it.each([['a control character', '\x01'], ['a raw non-ASCII byte', '\u00e9'], ['a raw space', ' x']])('refuses %s at the parser, which closes the connection', async (_name, bytes) => {
    const host = new URL(h.url).host;
    const before = h.audit.length;
    forbidForRestOfTest(h, 'a path with a raw control byte');
    const raw = await rawRequest(h.url, Buffer.from(`GET /api/v4/projects/1${bytes} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${jwt}\r\n\r\n`, 'latin1'));
    expect(statuses(raw.text)).toEqual([400]);
    expect(raw.closed).toBe(true);
    await h.waitForAudit(before + 1);
    expect(h.audit[before]).toMatchObject({ decision: 'deny', reason: 'unparseable', detail: expect.stringMatching(/^HPE_/) as unknown });
    expect(h.standin.requests).toEqual([]);
  });
});

describe('spellings that are forwarded as sent', () => {
  it.each([
    '/api/v4/projects/acme%2Fplatform%2Fapi',
    '/api/v4/projects/acme%2fdocs',
    '/api/v4/projects/1/repository/files/src%2Fmain.ts?ref=main',
    '/api/v4/projects/1/repository/files/README%2Emd?ref=main',
    '/api/v4/projects/1/repository/files/a%20b%26c%3F.txt?ref=main',
  ])('%s', async (path) => {
    const rec = await forwarded(h, await get(path));
    expect(rec.url).toBe(path);
  });
});

describe('case', () => {
  it.each([['/API/v4/projects/1', /^not-api/], ['/api/V4/projects/1', /^not-api/], ['/Api/v4/projects/1', /^not-api/], ['/api/v4/Projects/1', /^no-rule/], ['/api/v4/projects/1/Merge_Requests', /^no-rule/]])(
    'refuses %s', async (path, reason) => {
      await expectRefused(h, await get(path), reason, 403);
    });
});

describe('the .json format suffix and the format parameter', () => {
  it('forwards x.json when both readings are allowed', async () => {
    const rec = await forwarded(h, await get('/api/v4/projects/1/repository/files/README.md.json?ref=main'));
    expect(rec.url).toBe('/api/v4/projects/1/repository/files/README.md.json?ref=main');
  });

  it('forwards x.json when GitLab routes it only as x, and x is allowed (src/catalogue/format.ts)', async () => {
    expect((await forwarded(h, await get('/api/v4/projects/1/merge_requests.json'))).url).toBe('/api/v4/projects/1/merge_requests.json');
    h.standin.reset();
    expect((await forwarded(h, await get('/api/v4/projects/1.json'))).url).toBe('/api/v4/projects/1.json');
    h.standin.reset();
    await expectRefused(h, await get('/api/v4/projects/1/issues.json'), /^no-rule/, 403);
    await expectRefused(h, await get('/api/v4/projects/01.json'), /^bad-identifier/, 403);
  });

  it('refuses x.json when GitLab may read it as an x that is not allowed', async () => {
    // The rule names the file package.json; Grape may also read the route as the file "package".
    const line = await expectRefused(h, await get('/api/v4/projects/2/repository/files/package.json?ref=main'), 'no-rule', 403);
    expect(line.detail).toMatch(/read without its \.json suffix/);
    await expectRefused(h, await get('/api/v4/projects/2/repository/files/package%2Ejson?ref=main'), /^no-rule/, 403);
    await expectRefused(h, await get('/api/v4/user.json'), /^no-rule/, 403);
  });

  it('accepts format=json only', async () => {
    const rec = await forwarded(h, await get('/api/v4/projects/1?format=json'));
    expect(rec.url).toBe('/api/v4/projects/1?format=json');
    h.standin.reset();
    for (const query of ['format=xml', 'format=txt', 'Format=binary', 'format[]=json']) {
      await expectRefused(h, await get(`/api/v4/projects/1?${query}`), 'format-parameter', 400);
    }
  });
});
