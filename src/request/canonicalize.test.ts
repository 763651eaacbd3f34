// The first step of every request, on its own: which reading of a raw target and raw headers
// GitLab would make, or which refusal. Fast cases beside the module; the attack families
// through a running proxy are in test/security/.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../errors.ts';
import { canonicalize } from './canonicalize.ts';

const HOST = ['Host', 'proxy.example.test'];
const read = (target: string, opts: { method?: string; headers?: string[]; root?: string } = {}) =>
  canonicalize(opts.method ?? 'GET', target, [...HOST, ...(opts.headers ?? [])], opts.root ?? '');

/** The refusal's reason, or "allowed" when canonicalize reads the request. */
function refusal(target: string, opts: Parameters<typeof read>[1] = {}): string {
  try {
    read(target, opts);
    return 'allowed';
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    return err.reason;
  }
}

describe('canonicalize', () => {
  it('splits the raw path into segments under the relative root, and names the surface', () => {
    expect(read('/gitlab/api/v4/projects/acme%2Fapp', { root: '/gitlab' })).toMatchObject({
      path: '/api/v4/projects/acme%2Fapp', segments: ['api', 'v4', 'projects', 'acme%2Fapp'], surface: 'api',
    });
    expect(read('/api/v4/projects/1', { root: '/gitlab' }).surface).toBe('outside');
    expect(read('/gitlabx/api/v4/projects/1', { root: '/gitlab' }).surface).toBe('outside');
    expect(read('/api/graphql').surface).toBe('graphql');
    for (const path of ['/api/graphql.json', '/api/glql', '/api/graphql/x', '/api/v3/projects']) expect(read(path).surface, path).toBe('outside');
  });

  it('reads a path of plain segments at once exactly as the full checks would (or refuses it the same way)', () => {
    // The fast path (PLAIN_PATH) must accept only what every check accepts: segments of
    // unreserved characters, none empty, none "." or "..", under or outside a root.
    const segment = fc.oneof(fc.constantFrom('', '.', '..', '...', '.a', 'a.', '~', 'api', 'v4', 'gitlab'), fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', '.', '~', '-') }));
    const relative = (target: string, root: string): string =>
      root === '' ? target : target === root ? '/' : target.startsWith(`${root}/`) ? target.slice(root.length) || '/' : target;
    // The segments are those of the path under the root; "/" there has none.
    const expected = (rel: string): string =>
      rel !== '/' && rel.slice(1).split('/').some((s) => s === '' || s === '.' || s === '..') ? 'refused' : 'allowed';
    fc.assert(fc.property(fc.array(segment, { minLength: 1, maxLength: 5 }), fc.constantFrom('', '/gitlab'), (segments, root) => {
      const target = `/${segments.join('/')}`;
      const rel = relative(target, root);
      expect(refusal(target, { root }) === 'allowed' ? 'allowed' : 'refused', target).toBe(expected(rel));
      if (expected(rel) === 'allowed') expect(read(target, { root }).path).toBe(rel);
    }), { numRuns: 3000 });
  });

  it('gives the .json reading Grape may also make, in either spelling of the dot', () => {
    expect(read('/api/v4/projects/1/repository/files/package.json').formatAlias).toEqual(['api', 'v4', 'projects', '1', 'repository', 'files', 'package']);
    expect(read('/api/v4/projects/1/hooks%2EJSON').formatAlias).toEqual(['api', 'v4', 'projects', '1', 'hooks']);
    expect(read('/api/v4/projects/1').formatAlias).toBeUndefined();
  });

  it('takes the client token out of the query it forwards, keeping the rest raw and in order', () => {
    const r = read('/api/v4/projects?b=%41&private_token=jwt-here&a=1');
    expect(r.credential).toEqual({ source: 'query:private_token', token: 'jwt-here' });
    expect(r.forwardQuery).toBe('b=%41&a=1');
    expect(read('/api/v4/projects?access_token=t').credential).toEqual({ source: 'query:access_token', token: 't' });
  });

  it('refuses two credentials, and a token parameter spelled another way', () => {
    expect(refusal('/api/v4/projects?private_token=a&access_token=b')).toBe('ambiguous-credentials');
    expect(refusal('/api/v4/projects?private_token=a', { headers: ['Authorization', 'Bearer b'] })).toBe('ambiguous-credentials');
    expect(refusal('/api/v4/projects?private_token[]=a')).toBe('ambiguous-credentials');
  });

  it.each([
    ['/api/v4/projects/%2561', 'double-encoding'],
    ['/api/v4/%69nternal/check', 'encoded-unreserved'],
    ['/api/v4/projects/%G1', 'bad-percent-encoding'],
    ['/api/v4/projects/1;x', 'path-characters'],
    ['/api/v4/projects/%C3%28', 'invalid-utf8'],
    ['/api/v4/projects/1/%2e%2e/2', 'dot-segment'],
    ['/api/v4/projects/a%2F..%2Fb', 'dot-segment'],
    ['/api/v4/projects/a%2F%2Fb', 'empty-segment'],
    ['/api/v4/projects//1', 'empty-segment'],
    ['/api/v4/projects/1/', 'empty-segment'],
    ['/api/v4/projects/5%0Ax', 'control-character'],
    ['http://gitlab.example.test/api/v4/projects/1', 'absolute-form'],
  ])('refuses %s (%s)', (target, reason) => {
    expect(refusal(target)).toBe(reason);
  });

  it('accepts the only encoded dot clients send, and encoded slashes in ids', () => {
    expect(refusal('/api/v4/projects/1/repository/files/README%2Emd/raw')).toBe('allowed');
    expect(refusal('/api/v4/projects/acme%2Fsub%2Fapp')).toBe('allowed');
  });

  it('refuses a method not spelled as Workhorse accepts it, closing the connection', () => {
    let caught: unknown;
    try {
      read('/api/v4/projects/1', { method: 'get' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProxyError);
    expect((caught as ProxyError).refusal).toMatchObject({ reason: 'method', closeConnection: true });
  });

  it('refuses a body on GET, HEAD and OPTIONS, and records one on POST with its media type', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS']) expect(refusal('/api/v4/projects/1', { method, headers: ['Content-Length', '5'] }), method).toBe('body-on-safe-method');
    expect(refusal('/api/v4/projects/1', { headers: ['Content-Length', '0'] })).toBe('allowed');
    expect(read('/api/v4/projects/1/statuses/abc', { method: 'POST', headers: ['Content-Length', '12', 'Content-Type', 'application/json; charset=utf-8'] }).body)
      .toEqual({ length: 12, mediaType: 'application/json' });
  });
});
