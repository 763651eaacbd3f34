// Object rules: body and query constraints, deny_fields, several rules for one endpoint, and
// `check` reporting mistakes in the new keys at their place in the file.
import { Gitlab } from '@gitbeaker/rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compilePolicy, PolicyError, type PolicyProblem } from '../src/policy/load.ts';
import { startHarness, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  glean:
    allow:
      - method: POST
        path: /api/v4/projects/:id/hooks
        body:
          url: { pattern: "^https://hooks\\\\.glean\\\\.example/" }
          push_events: [true, false]
      - method: [POST]
        path: /api/v4/projects/:id/hooks
        body:
          url: { pattern: "^https://backup\\\\.glean\\\\.example/" }
      - method: PUT
        path: /api/v4/projects/:id
        deny_fields: [visibility, namespace]
      - method: "GET,HEAD"
        path: /api/v4/projects/:id/merge_requests
        query:
          state: [opened, merged]
`;

describe('body and query constraints', () => {
  let h: Harness;
  let api: InstanceType<typeof Gitlab>;
  let token: string;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'glean.yaml': POLICY } });
    token = await h.token('glean');
    api = new Gitlab({ host: h.url, token });
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  const send = (method: string, path: string, body?: string, type = 'application/json') =>
    fetch(h.url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) }, body });
  const lastAudit = async (path: string) => {
    await h.waitForAudit(1);
    return h.audit.findLast((l) => l.path === path)!;
  };

  it('allows a hook whose url matches the pattern (a real client)', async () => {
    const hook = await api.ProjectHooks.add(3, 'https://hooks.glean.example/in/3', { pushEvents: true });
    expect(hook.url).toBe('https://hooks.glean.example/in/3');
    const got = h.standin.requests.at(-1)!;
    expect(got.method).toBe('POST');
    expect(got.path).toBe('/api/v4/projects/3/hooks');
    expect(JSON.parse(got.body.toString())).toMatchObject({ url: 'https://hooks.glean.example/in/3', push_events: true });
  });

  it('refuses a hook to anywhere else, naming the field, and forwards nothing', async () => {
    await expect(api.ProjectHooks.add(3, 'https://evil.example/x')).rejects.toThrow(/Forbidden/);
    const res = await send('POST', '/api/v4/projects/3/hooks', JSON.stringify({ url: 'https://hooks.glean.example.evil.test/' }));
    expect(res.status).toBe(403);
    expect(h.standin.requests).toEqual([]);
    const line = await lastAudit('/api/v4/projects/3/hooks');
    expect(line.decision).toBe('deny');
    // Both rules were tried; the first (most specific, then as written) failure is reported.
    expect(line).toMatchObject({ reason: 'body-constraint', detail: 'url (does not match the pattern)' });
    expect(line.rule).toMatch(/^POST \/api\/v4\/projects\/:id\/hooks \(.*glean\.yaml:5\)$/);
  });

  it('allows when any matching rule passes, and says which one did', async () => {
    const res = await send('POST', '/api/v4/projects/3/hooks', JSON.stringify({ url: 'https://backup.glean.example/x', push_events: 'yes' }));
    expect(res.status).toBe(201);
    expect(h.standin.requests.map((r) => r.path)).toEqual(['/api/v4/projects/3/hooks']);
    const line = await lastAudit('/api/v4/projects/3/hooks');
    expect(line.decision).toBe('allow');
    expect(line.rule).toMatch(/glean\.yaml:10\)$/);
  });

  it('checks form bodies and list constraints; refuses missing, repeated and array-shaped fields', async () => {
    const ok = await send('POST', '/api/v4/projects/3/hooks', 'url=https%3A%2F%2Fhooks.glean.example%2Fa&push_events=false', 'application/x-www-form-urlencoded');
    expect(ok.status).toBe(201);
    const cases: [string, string, string][] = [
      ['push_events=true', 'application/x-www-form-urlencoded', 'body-constraint: url (missing)'],
      ['url=https%3A%2F%2Fhooks.glean.example%2Fa&push_events=maybe', 'application/x-www-form-urlencoded', 'body-constraint: push_events (not an allowed value)'],
      ['url[]=https%3A%2F%2Fhooks.glean.example%2Fa&push_events=true', 'application/x-www-form-urlencoded', 'body-constraint: url (must be sent once, as a single value)'],
      [JSON.stringify({ url: ['https://hooks.glean.example/a'], push_events: true }), 'application/json', 'body-constraint: url (must be a single value)'],
      ['', 'application/json', 'body-constraint: url (missing)'],
    ];
    for (const [body, type, reason] of cases) {
      const n = h.audit.length;
      const res = await send('POST', '/api/v4/projects/3/hooks', body, type);
      expect(res.status, body).toBe(403);
      await h.waitForAudit(n + 1);
      // The second rule fails on url too, when the first failed on url; a push_events failure
      // of the first rule is reported even if the second then fails on url.
      const line = h.audit.at(-1)!;
      expect(`${line.reason}: ${line.detail}`, body).toBe(reason);
    }
    expect(h.standin.requests.map((r) => r.method)).toEqual(['POST']);
  });

  it('checks multipart bodies', async () => {
    const form = new FormData();
    form.set('url', 'https://hooks.glean.example/m');
    form.set('push_events', 'true');
    const res = await fetch(`${h.url}/api/v4/projects/3/hooks`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
    expect(res.status).toBe(201);
    const bad = new FormData();
    bad.set('url', 'https://elsewhere.example/m');
    expect((await fetch(`${h.url}/api/v4/projects/3/hooks`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: bad })).status).toBe(403);
    expect(h.standin.requests).toHaveLength(1);
  });

  it('deny_fields refuses a request carrying a named key at all (body or query)', async () => {
    const edited = await api.Projects.edit(3, { description: 'Docs' });
    expect(edited.description).toBe('Docs');
    await expect(api.Projects.edit(3, { visibility: 'public' })).rejects.toThrow(/Forbidden/);
    expect((await send('PUT', '/api/v4/projects/3?namespace=other', JSON.stringify({ description: 'x' }))).status).toBe(403);
    expect((await send('PUT', '/api/v4/projects/3', JSON.stringify({ '[visibility]': 'public' }))).status).toBe(403);
    expect(h.standin.requests.map((r) => JSON.parse(r.body.toString()) as unknown)).toEqual([{ description: 'Docs' }]);
    const line = await lastAudit('/api/v4/projects/3');
    expect(line).toMatchObject({ reason: 'deny-field', detail: 'visibility' });
  });

  it('checks decoded query values', async () => {
    const mrs = await api.MergeRequests.all({ projectId: 3, state: 'opened' });
    expect(mrs.every((m) => m.state === 'opened')).toBe(true);
    expect((await send('GET', '/api/v4/projects/3/merge_requests?state=%6Derged')).status).toBe(200);
    expect((await send('GET', '/api/v4/projects/3/merge_requests?state=closed')).status).toBe(403);
    expect((await send('GET', '/api/v4/projects/3/merge_requests')).status).toBe(403);
    expect(h.standin.requests.map((r) => r.query)).toEqual(['state=opened', 'state=%6Derged']);
    const line = await lastAudit('/api/v4/projects/3/merge_requests');
    expect(line).toMatchObject({ reason: 'query-constraint', detail: 'state (missing)' });
  });
});

describe('check reports mistakes in the new keys where they are', () => {
  const problems = (yaml: string): PolicyProblem[] => {
    try {
      compilePolicy([{ display: 'p.yaml', text: yaml }]);
    } catch (err) {
      if (err instanceof PolicyError) return [...err.problems];
      throw err;
    }
    return [];
  };

  it('a bad regex, at its pattern', () => {
    const p = problems(`clients:
  a:
    allow:
      - method: POST
        path: /api/v4/projects/:id/hooks
        body:
          url: { pattern: "^https://(" }
`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ file: 'p.yaml', line: 7, col: 27 });
    expect(p[0]!.message).toMatch(/invalid regular expression/);
  });

  it('a bad scope pattern, in a client and in a rule', () => {
    const p = problems(`clients:
  a:
    projects: ["acme/*", "acme//x", 5]
    groups: ["**"]
    allow:
      - method: GET
        path: /api/v4/projects/:id
        projects: [acme/ok, "bad path"]
`);
    expect(p.map((x) => [x.line, x.col])).toEqual([[3, 26], [4, 14], [8, 29]]);
    expect(p[0]!.message).toMatch(/projects: bad pattern "acme\/\/x"/);
    expect(p[1]!.message).toMatch(/groups: bad pattern "\*\*"/);
    expect(p[2]!.message).toMatch(/"bad path"/);
  });

  it('an unknown scope name, an unknown rule key, a bad method, a bad constraint', () => {
    const p = problems(`clients:
  a:
    scopes: [read_api, api]
    allow:
      - method: FETCH
        path: /api/v4/projects
      - method: GET
        path: /api/v4/projects
        querry: { a: 1 }
      - method: GET
        path: /api/v4/projects
        query: { a: { regex: x } }
`);
    expect(p.map((x) => [x.line, x.message])).toEqual([
      [3, expect.stringMatching(/scopes\.1: unknown scope name: use read_api, read_user, read_repository, write_repository/)],
      [5, expect.stringMatching(/unknown method "FETCH"/)],
      [9, expect.stringMatching(/unknown key "querry" in a rule/)],
      [12, expect.stringMatching(/a constraint is a value, a list of values, \{ pattern: REGEX \} or \{ under: URL \}/)],
    ]);
  });

  it('accepts a valid policy with every new key', () => {
    expect(problems(`clients:
  a:
    projects: ["acme/platform/*", "acme/**", 42]
    groups: [acme/platform]
    scopes: [read_api, read_user, read_repository, write_repository]
    allow:
      - GET /api/v4/projects
      - method: POST
        path: /api/v4/projects/:id/hooks
        body: { url: { pattern: "^https://" }, push_events: [true, false], enable_ssl_verification: true }
        query: { scope: created_by_me }
        deny_fields: [sudo, admin]
        projects: [acme/docs]
        groups: [acme]
`)).toEqual([]);
  });
});
