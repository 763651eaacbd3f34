import { describe, expect, it } from 'vitest';
import { compilePolicy, PolicyError } from '../policy/load.ts';
import { parseRule, RuleSyntaxError } from '../policy/rule.ts';
import type { Client, Method } from '../types.ts';
import { routeReadings } from '../request/route.ts';
import { decidePath as authorize } from './path.ts';

type AuthorizeInput = Parameters<typeof authorize>[1];

const client = (allow: string[], extra = ''): Client =>
  compilePolicy([{ display: 'p.yaml', text: `clients:\n  c:\n${extra}    allow:\n${allow.map((r) => `      - ${JSON.stringify(r)}`).join('\n')}\n` }]).clients.get('c')!;

const req = (method: Method, path: string): AuthorizeInput => {
  const segments = path.slice(1).split('/');
  return { method, segments, formatAlias: undefined, readings: routeReadings(segments), surface: segments[0] === 'api' && segments[1] === 'v4' ? 'api' : 'outside' };
};
const allowed = (c: Client, method: Method, path: string): boolean => authorize(c, req(method, path)).allow;

describe('rules', () => {
  it('parses methods, GET admitting HEAD, and * for all', () => {
    expect([...parseRule('GET /api/v4/user', 'x').methods]).toEqual(['GET', 'HEAD']);
    expect(parseRule('* /api/v4/user', 'x').methods.size).toBe(6);
    expect(parseRule('POST,PUT /api/v4/user', 'x').methods.has('HEAD')).toBe(false);
  });
  it.each([
    ['get /api/v4/user', /unknown method "get"/],
    ['GET,TRACE /api/v4/user', /unknown method "TRACE"/],
    ['GET /api/v4/projects/**/notes', /\*\* may only be the last/],
    ['GET /api/v4/projects/', /empty segment/],
    ['GET /api/v3/projects', /must start with \/api\/v4/],
    ['GET /api/v4/internal/x', /internal/],
    ['GET /api/v4/projects/:Id', /bad parameter/],
    ['GET /api/v4/projects/../user', /\. or \.\./],
    ['GET  /api/v4/user', /METHODS PATH/],
  ])('refuses %s', (text, message) => {
    expect(() => parseRule(text, 'x')).toThrow(RuleSyntaxError);
    expect(() => parseRule(text, 'x')).toThrow(message);
  });
});

describe('matching', () => {
  const c = client([
    'GET /api/v4/projects/:id',
    'GET,POST /api/v4/projects/:id/merge_requests/:iid/notes',
    'GET /api/v4/projects/:id/repository/**',
    'PUT /api/v4/projects/:id/*/settings',
  ]);
  it('is anchored at both ends and deny by default', () => {
    expect(allowed(c, 'GET', '/api/v4/projects/5')).toBe(true);
    expect(allowed(c, 'HEAD', '/api/v4/projects/5')).toBe(true);
    expect(allowed(c, 'GET', '/api/v4/projects/5/members')).toBe(false);
    expect(allowed(c, 'GET', '/api/v4/projects')).toBe(false);
    expect(allowed(c, 'DELETE', '/api/v4/projects/5')).toBe(false);
    expect(allowed(c, 'GET', '/api/v4/user')).toBe(false);
  });
  it('lets :name match one raw segment, encoded slash included', () => {
    expect(allowed(c, 'POST', '/api/v4/projects/acme%2Fapp/merge_requests/3/notes')).toBe(true);
    expect(authorize(c, req('POST', '/api/v4/projects/acme%2Fapp/merge_requests/3/notes'))).toMatchObject({ match: { params: { id: 'acme%2Fapp', iid: '3' } } });
  });
  it('lets ** match zero or more trailing segments and * exactly one', () => {
    expect(allowed(c, 'GET', '/api/v4/projects/5/repository')).toBe(true);
    expect(allowed(c, 'GET', '/api/v4/projects/5/repository/files/a%2Fb/raw')).toBe(true);
    expect(allowed(c, 'POST', '/api/v4/projects/5/repository/files/a')).toBe(false);
    expect(allowed(c, 'PUT', '/api/v4/projects/5/x/settings')).toBe(true);
    expect(allowed(c, 'PUT', '/api/v4/projects/5/x/y/settings')).toBe(false);
  });
  it('is case-sensitive on literals', () => {
    expect(allowed(c, 'GET', '/api/v4/Projects/5')).toBe(false);
  });
  it('prefers a literal rule over a parameter rule and backtracks when the literal branch fails', () => {
    const d = client(['GET /api/v4/users/me', 'GET,POST /api/v4/users/:user']);
    expect(authorize(d, req('GET', '/api/v4/users/me'))).toMatchObject({ allow: true, match: { rule: { text: 'GET /api/v4/users/me' } } });
    expect(authorize(d, req('POST', '/api/v4/users/me'))).toMatchObject({ allow: true, match: { rule: { text: 'GET,POST /api/v4/users/:user' } } });
  });
  it('refuses ids GitLab could read as another project', () => {
    for (const id of ['0005', '5+', '-5', '5.json', 'acme', 'acme%2F']) expect(allowed(c, 'GET', `/api/v4/projects/${id}`), id).toBe(false);
    expect(allowed(c, 'GET', '/api/v4/projects/5/merge_requests/03/notes')).toBe(false);
  });
  it('denies a .json alias unless both readings are allowed', () => {
    const d = client(['GET /api/v4/projects/:id/repository/files/:file', 'GET /api/v4/projects/:id/*']);
    const withAlias = (path: string): AuthorizeInput => {
      const r = req('GET', path);
      const last = r.segments.at(-1)!;
      return { ...r, formatAlias: [...r.segments.slice(0, -1), last.replace(/\.json$/, '')] };
    };
    expect(authorize(d, withAlias('/api/v4/projects/5/repository/files/package.json')).allow).toBe(true);
    expect(authorize(client(['GET /api/v4/projects/:id/hooks.json']), withAlias('/api/v4/projects/5/hooks.json')).allow).toBe(false);
  });
  it('reads any format extension, also after "%2E", as Grape\'s "(.:format)" does', () => {
    expect(authorize(client(['GET /api/v4/projects/:id/hooks.xml']), req('GET', '/api/v4/projects/5/hooks.xml')).allow).toBe(false);
    expect(authorize(client(['GET /api/v4/**']), req('GET', '/api/v4/personal_access_tokens%2Exml'))).toMatchObject({ allow: false, reason: 'token-self' });
    expect(authorize(client(['* /api/v4/**']), req('POST', '/api/v4/user/personal_access_tokens.txt'))).toMatchObject({ allow: false, reason: 'token-self' });
    expect(authorize(client(['GET /api/v4/projects/:id/repository/files/:file']), req('GET', '/api/v4/projects/5/repository/files/README.md')).allow).toBe(true);
  });
});

describe('fixed decisions', () => {
  it('never forwards internal or the token\'s own endpoints, whatever the rules say', () => {
    const c = client(['* /api/v4/**']);
    expect(authorize(c, req('GET', '/api/v4/internal/check'))).toMatchObject({ allow: false, reason: 'internal-api' });
    expect(allowed(c, 'GET', '/api/v4/personal_access_tokens/self')).toBe(false);
    expect(allowed(c, 'POST', '/api/v4/personal_access_tokens/self/rotate')).toBe(false);
    expect(allowed(c, 'GET', '/api/v4/projects/1')).toBe(true);
  });
  it('allows only GET/HEAD self with the explicit opt-in, and never rotation', () => {
    const c = client(['GET /api/v4/user'], '    allow_token_self_read: true\n');
    expect(allowed(c, 'GET', '/api/v4/personal_access_tokens/self')).toBe(true);
    expect(allowed(c, 'DELETE', '/api/v4/personal_access_tokens/self')).toBe(false);
    expect(allowed(c, 'POST', '/api/v4/personal_access_tokens/self/rotate')).toBe(false);
  });
});

describe('loading', () => {
  it('refuses a client defined twice across files', () => {
    const text = 'clients:\n  c:\n    allow: [GET /api/v4/user]\n';
    expect(() => compilePolicy([{ display: 'a.yaml', text }, { display: 'b.yaml', text }])).toThrow(/b\.yaml:2:3 client "c" is already defined in a\.yaml:2/);
  });
  it('gives each rule its source line and a checksum over the files', () => {
    const p = compilePolicy([{ display: 'a.yaml', text: 'clients:\n  c:\n    allow:\n      - GET /api/v4/user\n      - GET /api/v4/version\n' }]);
    expect(p.clients.get('c')!.rules.map((r) => r.source)).toEqual(['a.yaml:4', 'a.yaml:5']);
    expect(p.checksum).toMatch(/^[0-9a-f]{64}$/);
  });
  it('collects problems rather than stopping at the first', () => {
    try {
      compilePolicy([{ display: 'a.yaml', text: 'clients:\n  c:\n    allow: [get /api/v4/x, GET /x]\n    disabled: maybe\n' }]);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyError);
      expect((err as PolicyError).problems.map((p) => `${p.line}:${p.col}`)).toEqual(['3:13', '3:28', '4:15']);
    }
  });
});
