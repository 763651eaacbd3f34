// decidePath() on its own, for what path.test.ts does not cover: the surfaces, the floor read
// through encodings and the .json alias, the reason and detail a denial names, and the
// identifiers GitLab could read as another object.
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../policy/load.ts';
import type { Client, Method } from '../types.ts';
import { routeReadings } from '../request/route.ts';
import { decidePath } from './path.ts';

type PathInput = Parameters<typeof decidePath>[1];

const client = (allow: string[]): Client =>
  compilePolicy([{ display: 'p.yaml', text: `clients:\n  c:\n    allow:\n${allow.map((r) => `      - ${JSON.stringify(r)}`).join('\n')}\n` }]).clients.get('c')!;
const req = (method: Method, path: string, extra: Partial<PathInput> = {}): PathInput => {
  const segments = path.slice(1).split('/');
  return { method, segments, formatAlias: undefined, readings: routeReadings(segments), surface: 'api', ...extra };
};

describe('decidePath', () => {
  const everything = client(['* /api/v4/**']);

  it('serves only /api/v4 and, without a graphql: policy, not GraphQL', () => {
    expect(decidePath(everything, req('GET', '/api/v3/projects', { surface: 'outside' }))).toMatchObject({ allow: false, reason: 'not-api' });
    expect(decidePath(everything, req('POST', '/api/graphql', { surface: 'graphql' })).allow).toBe(false);
  });

  it('reads the floor through percent-encoding and through the .json alias', () => {
    expect(decidePath(everything, req('GET', '/api/v4/%69nternal/check'))).toMatchObject({ allow: false, reason: 'internal-api' });
    const alias = req('GET', '/api/v4/internal.json', { formatAlias: ['api', 'v4', 'internal'] });
    expect(decidePath(everything, alias)).toMatchObject({ allow: false, reason: 'internal-api', detail: expect.stringMatching(/without its \.json suffix/) });
    expect(decidePath(everything, req('POST', '/api/v4/user/personal_access_tokens'))).toMatchObject({ allow: false, reason: 'token-self' });
    expect(decidePath(everything, req('GET', '/api/v4/personal_access_tokens/self/associations'))).toMatchObject({ allow: false, reason: 'token-self' });
  });

  it('names the rule whose path matched when only the method is wrong, and no-rule otherwise', () => {
    const c = client(['GET /api/v4/projects/:id']);
    expect(decidePath(c, req('DELETE', '/api/v4/projects/5'))).toEqual({ allow: false, reason: 'method-not-allowed', detail: 'DELETE not in GET /api/v4/projects/:id' });
    expect(decidePath(c, req('GET', '/api/v4/groups/5'))).toEqual({ allow: false, reason: 'no-rule', detail: 'no rule matches' });
  });

  it('requires numbers for every *_iid and for :project_id and :group_id ids or full paths', () => {
    const c = client(['GET /api/v4/projects/:project_id/merge_requests/:merge_request_iid', 'GET /api/v4/groups/:group_id']);
    expect(decidePath(c, req('GET', '/api/v4/projects/acme%2Fapp/merge_requests/12')).allow).toBe(true);
    expect(decidePath(c, req('GET', '/api/v4/projects/5/merge_requests/1e3'))).toEqual({ allow: false, reason: 'bad-identifier', detail: ':merge_request_iid must be a number' });
    expect(decidePath(c, req('GET', '/api/v4/groups/%2Facme'))).toMatchObject({ allow: false, reason: 'bad-identifier', detail: expect.stringMatching(/^:group_id/) });
    expect(decidePath(c, req('GET', '/api/v4/groups/acme%2Fteam')).allow).toBe(true);
  });

  it('returns the deciding rule with its source and the captured parameters', () => {
    const c = client(['GET /api/v4/projects/:id']);
    expect(decidePath(c, req('HEAD', '/api/v4/projects/42'))).toMatchObject({
      allow: true, label: 'GET /api/v4/projects/:id (p.yaml:4)', match: { rule: { text: 'GET /api/v4/projects/:id', source: 'p.yaml:4' }, params: { id: '42' } },
    });
  });
});
