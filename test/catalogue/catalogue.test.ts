// The route catalogue, its risk classes, the floor and rule coverage, as pure functions.
import { describe, expect, it } from 'vitest';
import { getCatalogue, CATALOGUE_SOURCE, CLASS_BITS, routeOf } from '../../src/catalogue/catalogue.ts';
import { classify, CLASS_RULES, RISK_CLASSES } from '../../src/catalogue/classes.ts';
import { nearestRoute, reachOf, routesOfRule, unknownRouteProblems } from '../../src/catalogue/coverage.ts';
import { floorRefusal, routeName } from '../../src/catalogue/floor.ts';
import { parseRule } from '../../src/policy/rule.ts';

const segs = (path: string): string[] => path.slice(1).split('/');
const rule = (text: string) => parseRule(text, 'test:1');

describe('the catalogue', () => {
  it('holds GitLab 18.9\'s REST routes and the hand-added ones, each once', () => {
    expect(CATALOGUE_SOURCE.gitlab).toBe('18.9.0-pre');
    expect(getCatalogue().routes.length).toBeGreaterThan(1850);
    const keys = getCatalogue().routes.map((r) => `${r.method} ${r.template}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const hand of ['POST /api/graphql', 'POST /*namespace/:project.git/git-receive-pack', 'POST /api/v4/internal/allowed', 'POST /oauth/token']) {
      expect(keys).toContain(hand);
    }
    expect(getCatalogue().routes.filter((r) => r.source !== undefined).every((r) => /\.rb/.test(r.source!))).toBe(true);
  });

  it('gives every route exactly one class, and every class rule is used by a route', () => {
    const used = new Set<string>();
    for (const r of getCatalogue().routes) {
      expect(RISK_CLASSES).toContain(r.class);
      const c = classify(r.method, r.template);
      expect(c.class).toBe(r.class);
      used.add(c.rule);
    }
    expect(CLASS_RULES.map(([text]) => text).filter((t) => !used.has(t))).toEqual([]);
  });

  it.each([
    ['POST', '/api/v4/projects/:id/access_tokens/self/rotate'],
    ['POST', '/api/v4/groups/:id/access_tokens'],
    ['GET', '/api/v4/projects/:id/variables'],
    ['POST', '/api/v4/user/keys'],
    ['POST', '/api/v4/users/:user_id/impersonation_tokens'],
    ['POST', '/api/v4/projects/:id/deploy_tokens'],
    ['POST', '/api/v4/projects/:id/deploy_keys'],
    ['POST', '/api/v4/runners'],
    ['POST', '/api/v4/projects/:id/triggers'],
    ['GET', '/api/v4/projects/:id/secure_files/:secure_file_id/download'],
    ['POST', '/api/v4/projects/:id/cluster_agents/:agent_id/tokens'],
    ['POST', '/api/v4/personal_access_tokens/self/rotate'],
  ])('%s %s is a credential route', (method, template) => {
    expect(classify(method, template).class).toBe('credential');
  });

  it.each([
    ['GET', '/api/v4/license', 'admin'],
    ['POST', '/api/v4/hooks', 'admin'],
    ['POST', '/api/v4/projects/:id/members', 'membership'],
    ['GET', '/api/v4/projects/:id/members/all', 'read'],
    ['DELETE', '/api/v4/projects/:id', 'destructive'],
    ['PUT', '/api/v4/projects/:id/transfer', 'destructive'],
    ['POST', '/api/v4/projects/:id/merge_requests/:merge_request_iid/approve', 'destructive'],
    ['PUT', '/api/v4/projects/:id/hooks/:hook_id', 'exfiltration'],
    ['POST', '/api/v4/projects/:id/export', 'exfiltration'],
    ['POST', '/api/v4/projects/:id/issues', 'write'],
    ['GET', '/api/v4/projects/:id/issues', 'read'],
  ])('%s %s is %s', (method, template, cls) => {
    expect(classify(method, template).class).toBe(cls);
  });
});

describe('routeOf', () => {
  it('finds the route GitLab reaches, literals before parameters', () => {
    expect(routeOf('GET', segs('/api/v4/projects/acme%2Fapp/merge_requests/3/notes'))).toMatchObject({ template: '/api/v4/projects/:id/merge_requests/:noteable_id/notes', tag: 'Notes', class: 'read' });
    expect(routeOf('POST', segs('/api/v4/projects/5/access_tokens/self/rotate'))).toMatchObject({ template: '/api/v4/projects/:id/access_tokens/self/rotate', class: 'credential' });
    expect(routeOf('GET', segs('/api/v4/projects/5/packages/cargo/config.json'))?.template).toBe('/api/v4/projects/:id/packages/cargo/config.json');
    // Mustermann matches a literal character also percent-encoded.
    expect(routeOf('GET', segs('/api/v4/projects/5/packages/cargo/config%2Ejson'))?.template).toBe('/api/v4/projects/:id/packages/cargo/config.json');
    expect(routeOf('HEAD', segs('/api/v4/projects/5'))).toMatchObject({ method: 'GET', template: '/api/v4/projects/:id' });
    expect(routeOf('GET', segs('/api/v4/projects/5/nonsense'))).toBeUndefined();
    expect(routeOf('GET', segs('/acme/platform/app.git/info/refs'))?.template).toBe('/*namespace/:project.git/info/refs');
    expect(routeOf('GET', segs('/api/v4/projects/5/packages/generic/pkg/1.0/dir/file.bin'))?.template).toBe('/api/v4/projects/:id/packages/generic/:package_name/*package_version/:file_name');
  });

  it('classesOf sees every route a request could reach', () => {
    expect(getCatalogue().classesOf('GET', segs('/api/v4/projects/5/variables')) & CLASS_BITS.credential).toBeTruthy();
    expect(getCatalogue().classesOf('GET', segs('/api/v4/projects/5/issues'))).toBe(CLASS_BITS.read);
    expect(getCatalogue().classesOf('GET', segs('/api/v4/projects/5/nonsense'))).toBe(0);
  });

  it('names the route for the audit line, also through a .json reading', () => {
    expect(routeName('GET', segs('/api/v4/projects/5'))).toBe('GET /api/v4/projects/:id (Projects)');
    expect(routeName('GET', segs('/api/v4/projects/5/merge_requests.json'), segs('/api/v4/projects/5/merge_requests'))).toBe('GET /api/v4/projects/:id/merge_requests (Merge requests)');
    expect(routeName('GET', segs('/api/v4/nonsense'))).toBeNull();
  });
});

describe('floor', () => {
  it('refuses credential routes whatever the client, admin routes without admin: true', () => {
    const floor = (method: string, segments: string[], client: { admin?: boolean }): string | undefined => {
      const r = floorRefusal(method, segments, client);
      return r && `${r.reason}: ${r.detail}`;
    };
    expect(floor('POST', segs('/api/v4/projects/5/access_tokens/self/rotate'), { admin: true })).toBe(
      'credential-route: POST /api/v4/projects/:id/access_tokens/self/rotate creates or reveals a credential (project and group access tokens: creating or rotating returns a secret)');
    expect(floor('GET', segs('/api/v4/license'), {})).toMatch(/^admin-route: GET \/api\/v4\/license is instance administration .*admin: true$/);
    expect(floor('GET', segs('/api/v4/license'), { admin: true })).toBeUndefined();
    expect(floor('HEAD', segs('/api/v4/projects/5/variables'), {})).toMatch(/^credential-route: GET /);
    expect(floor('GET', segs('/api/v4/projects/5'), {})).toBeUndefined();
    // Found by an outside review: a schedule's details carry its variables' values.
    expect(floor('GET', segs('/api/v4/projects/5/pipeline_schedules/3'), {})).toMatch(/^credential-route: GET \/api\/v4\/projects\/:id\/pipeline_schedules\/:pipeline_schedule_id /);
    expect(floor('GET', segs('/api/v4/projects/5/pipeline_schedules'), {})).toBeUndefined();
    expect(floor('GET', segs('/api/v4/nonsense'), {})).toBeUndefined();
  });
});

describe('rule coverage', () => {
  it('lists the routes a rule covers', () => {
    const covered = routesOfRule(rule('GET /api/v4/projects/:id/**')).map((r) => `${r.method} ${r.template}`);
    expect(covered).toContain('GET /api/v4/projects/:id');
    expect(covered).toContain('GET /api/v4/projects/:id/variables');
    expect(covered).toContain('HEAD /api/v4/projects/:id/repository/files/:file_path');
    expect(covered).not.toContain('POST /api/v4/projects/:id/issues');
    // :id stands for a number or an encoded path, never for a route word such as "user".
    expect(covered.some((t) => t.startsWith('GET /api/v4/projects/user/'))).toBe(false);
    expect(routesOfRule(rule('GET /api/v4/groups/acme/projects')).map((r) => r.template)).toEqual(['/api/v4/groups/:id/projects']);
    expect(routesOfRule(rule('GET /api/v4/projects/:id/merge_requests.json')).map((r) => r.template)).toEqual(['/api/v4/projects/:id/merge_requests']);
  });

  it('flags a rule that matches no route, with the nearest real one', () => {
    const typo = rule('GET /api/v4/projects/:id/wiki');
    expect(nearestRoute(typo)).toMatchObject({ method: 'GET', template: '/api/v4/projects/:id/wikis' });
    expect(unknownRouteProblems([typo, rule('GET /api/v4/projects/:id/wikis')]).map((p) => p.message)).toEqual([
      '"GET /api/v4/projects/:id/wiki" matches no GitLab route in GitLab 18.9.0-pre; nearest: GET /api/v4/projects/:id/wikis',
    ]);
  });

  it('sums a client\'s reach by class, the floor classes apart', () => {
    const broad = reachOf([rule('* /api/v4/**')], false);
    const by = Object.fromEntries(broad.map((k) => [k.class, k]));
    expect(by.credential!.routes).toEqual([]);
    expect(by.credential!.refused.length).toBeGreaterThan(100);
    expect(by.admin!.routes).toEqual([]);
    expect(by.admin!.refused.length).toBeGreaterThan(100);
    expect(by.destructive!.routes.length).toBeGreaterThan(100);
    expect(reachOf([rule('* /api/v4/**')], true).find((k) => k.class === 'admin')!.routes.length).toBe(by.admin!.refused.length);
  });
});
