// Parameters that name another project, group or namespace obey the scope like the path's
// :id: `from_project_id` on repository/compare, `target_project_id` on a new merge request,
// `to_project_id` on an issue move, `namespace` on a fork, `group_id` on a share,
// `parent_id` on a new group, import URLs. Sent in the query, as JSON, as a form or as
// multipart, spelled in any case. The list is data (src/scope/reference-params.json) checked
// here against GitLab's generated OpenAPI description (its extract src/scope/spec-extract.json,
// regenerated from a newer spec with `npx node src/scope/reference-candidates.ts SPEC --write V`).
import { describe, expect, it } from 'vitest';
import { candidateKey, referenceCandidates, specParams, type SpecParam } from '../../src/scope/reference-candidates.ts';
import { REFERENCE_ENTRIES } from '../../src/scope/references.ts';
import data from '../../src/scope/reference-params.json' with { type: 'json' };
import extract from '../../src/scope/spec-extract.json' with { type: 'json' };
import type { Harness } from '../support/harness.ts';
import { bearer, send } from './support.ts';
import { expectScopeRefused, forwardedOnce, useScopeHarness } from './scope-support.ts';

/** A piece of openapi_v3.yaml in its generated layout. */
const SPEC_SAMPLE = `paths:
  "/api/v4/projects/{id}/issues/{issue_iid}/move":
    post:
      operationId: postApiV4ProjectsIdIssuesIssueIidMove
      parameters:
      - name: id
        required: true
        in: path
      - name: issue_iid
        in: path
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                to_project_id:
                  type: integer
                nested:
                  type: object
                  properties:
                    group_id:
                      type: integer
  "/api/v4/projects/{project_id}/packages/nuget/v2/Packages\\\\(\\\\)":
    get:
      parameters:
      - name: project_id
        in: path
components:
  schemas:
    x:
      properties:
        namespace_id:
          type: integer
`;

describe('the reviewed list against GitLab\'s OpenAPI description', () => {
  const params: SpecParam[] = extract.params.map(([method, path, name, where]) => ({ method: method!, path: path!, name: name!, in: where! }));
  const reviewed = [...data.references, ...data.ignored].map((e) => candidateKey({ ...e, name: e.param }));

  it('reads the spec\'s layout: path and query parameters, top-level body properties, escapes', () => {
    expect(specParams(SPEC_SAMPLE)).toEqual([
      { method: 'POST', path: '/api/v4/projects/{id}/issues/{issue_iid}/move', name: 'id', in: 'path' },
      { method: 'POST', path: '/api/v4/projects/{id}/issues/{issue_iid}/move', name: 'issue_iid', in: 'path' },
      { method: 'POST', path: '/api/v4/projects/{id}/issues/{issue_iid}/move', name: 'to_project_id', in: 'json' },
      { method: 'POST', path: '/api/v4/projects/{id}/issues/{issue_iid}/move', name: 'nested', in: 'json' },
      { method: 'GET', path: '/api/v4/projects/{project_id}/packages/nuget/v2/Packages\\(\\)', name: 'project_id', in: 'path' },
    ]);
  });

  it('has the extract of the spec (known parameters are found)', () => {
    const keys = new Set(params.map(candidateKey));
    expect(extract.gitlab).toMatch(/^\d+\.\d+/);
    for (const k of [
      'GET /api/v4/projects/{id}/repository/compare from_project_id',
      'POST /api/v4/projects/{id}/merge_requests target_project_id',
      'POST /api/v4/projects/{id}/issues/{issue_iid}/move to_project_id',
      'POST /api/v4/projects/{id}/fork/{forked_from_id} forked_from_id',
      'POST /api/v4/groups parent_id',
    ]) expect(keys.has(k), k).toBe(true);
  });

  it('has reviewed every parameter named like a project, group or namespace (*_project_id, *_group_id, namespace*)', () => {
    const missing = referenceCandidates(params).map(candidateKey).filter((k) => !reviewed.includes(k));
    expect(missing, 'new in the spec: add each to src/scope/reference-params.json (npx node src/scope/reference-candidates.ts SPEC)').toEqual([]);
  });

  it('names only parameters the spec has, each with a kind and a reason', () => {
    const keys = new Set(params.map(candidateKey));
    for (const e of [...data.references, ...data.ignored]) expect(keys.has(candidateKey({ ...e, name: e.param })), candidateKey({ ...e, name: e.param })).toBe(true);
    for (const e of REFERENCE_ENTRIES) {
      expect(['project', 'group', 'namespace', 'url']).toContain(e.kind);
      expect(e.why.length).toBeGreaterThan(5);
    }
    expect(new Set(reviewed).size).toBe(reviewed.length);
  });
});

const POLICY = `
clients:
  vendor:
    projects: ["acme/**"]
    groups: ["acme/platform"]
    allow:
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/repository/compare
      - POST /api/v4/projects/:id/merge_requests
      - POST /api/v4/projects/:id/issues/:issue_iid/move
      - POST /api/v4/projects/:id/fork
      - POST /api/v4/projects/:id/share
      - PUT /api/v4/projects/:id/transfer
      - POST /api/v4/projects
      - POST /api/v4/groups
      - POST /api/v4/projects/:id/issues/**
  narrow:
    allow:
      - method: POST
        path: /api/v4/projects/:id/issues/:issue_iid/move
        projects: [acme/docs]
  projects-only:
    projects: ["acme/**"]
    allow:
      - POST /api/v4/projects/:id/fork
`;

let h: Harness;
let jwt: string;
useScopeHarness(POLICY, (harness, token) => {
  h = harness;
  jwt = token;
});

type Body = { type: 'json' | 'form' | 'multipart'; fields: Record<string, unknown> };
function encode(body: Body): { headers: [string, string][]; body: string } {
  if (body.type === 'json') return { headers: [['Content-Type', 'application/json']], body: JSON.stringify(body.fields) };
  if (body.type === 'form') {
    return { headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: Object.entries(body.fields).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&') };
  }
  const b = 'refb0undary';
  const parts = Object.entries(body.fields).map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${String(v)}\r\n`).join('');
  return { headers: [['Content-Type', `multipart/form-data; boundary=${b}`]], body: `${parts}--${b}--\r\n` };
}
const post = (path: string, body: Body, token = jwt, method = 'POST') => {
  const enc = encode(body);
  return send(h.url, { method, path, headers: [bearer(token), ...enc.headers], body: enc.body });
};

const MR = { source_branch: 'feature', target_branch: 'main', title: 'x' };

describe('a reference outside the scope is refused, in every place GitLab reads it', () => {
  it('from_project_id on repository/compare (query)', async () => {
    await expectScopeRefused(h, await send(h.url, { path: '/api/v4/projects/1/repository/compare?from=a&to=b&from_project_id=4', headers: [bearer(jwt)] }), 'scope: project other/secret (from_project_id) not in projects', 403);
  });

  for (const type of ['json', 'form', 'multipart'] as const) {
    it(`target_project_id on merge request creation (${type})`, async () => {
      await expectScopeRefused(h, await post('/api/v4/projects/1/merge_requests', { type, fields: { ...MR, target_project_id: 4 } }), 'scope: project other/secret (target_project_id) not in projects', 403);
    });
  }

  it('target_project_id in the query of a POST, and in another case', async () => {
    await expectScopeRefused(h, await post('/api/v4/projects/1/merge_requests?target_project_id=4', { type: 'json', fields: MR }), /^scope: project other\/secret/, 403);
    await expectScopeRefused(h, await post('/api/v4/projects/1/merge_requests', { type: 'json', fields: { ...MR, TARGET_PROJECT_ID: 4 } }), /^scope: project other\/secret/, 403);
  });

  it('values GitLab would coerce to another id than the one written are unresolvable', async () => {
    for (const value of ['0004', ' 4', '4 ', 4.5, true, null, { id: 4 }]) {
      h.standin.reset();
      await expectScopeRefused(h, await post('/api/v4/projects/1/merge_requests', { type: 'json', fields: { ...MR, target_project_id: value } }), /^scope-unresolved: project .* \(target_project_id\) cannot be resolved$/, 403);
    }
    // Beyond 2^53 JavaScript reads another number than Ruby's Integer does.
    h.standin.reset();
    const raw = '{"source_branch":"f","target_branch":"main","title":"x","target_project_id":9007199254740993}';
    const sent = await send(h.url, { method: 'POST', path: '/api/v4/projects/1/merge_requests', headers: [bearer(jwt), ['Content-Type', 'application/json']], body: raw });
    await expectScopeRefused(h, sent, /^scope-unresolved: project \(number\) \(target_project_id\)/, 403);
  });

  it('to_project_id on an issue move, also through a format alias under a ** rule', async () => {
    await expectScopeRefused(h, await post('/api/v4/projects/1/issues/1/move', { type: 'json', fields: { to_project_id: 4 } }), 'scope: project other/secret (to_project_id) not in projects', 403);
    h.standin.reset();
    await expectScopeRefused(h, await post('/api/v4/projects/1/issues/1/move.json', { type: 'form', fields: { to_project_id: 4 } }), /^scope: project other\/secret \(to_project_id\)/, 403);
  });

  it('namespace on a fork, group_id on a share, namespace on a transfer, parent_id on a new group', async () => {
    await expectScopeRefused(h, await post('/api/v4/projects/1/fork', { type: 'json', fields: { namespace: 'other' } }), 'scope: namespace other (namespace) not in groups', 403);
    h.standin.reset();
    await expectScopeRefused(h, await post('/api/v4/projects/1/fork', { type: 'json', fields: { namespace_id: 102 } }), 'scope: namespace other (namespace_id) not in groups', 403);
    h.standin.reset();
    await expectScopeRefused(h, await post('/api/v4/projects/1/share', { type: 'form', fields: { group_id: 102, group_access: 30 } }), 'scope: group other (group_id) not in groups', 403);
    h.standin.reset();
    await expectScopeRefused(h, await post('/api/v4/projects/1/transfer', { type: 'json', fields: { namespace: 'acme' } }, jwt, 'PUT'), 'scope: namespace acme (namespace) not in groups', 403);
    h.standin.reset();
    await expectScopeRefused(h, await post('/api/v4/groups', { type: 'multipart', fields: { name: 'n', path: 'n', parent_id: 100 } }), 'scope: group acme (parent_id) not in groups', 403);
  });

  it('an import URL cannot be checked against the scope', async () => {
    await expectScopeRefused(h, await post('/api/v4/projects', { type: 'form', fields: { name: 'x', import_url: `${h.standin.url}/other/secret.git` } }), /^scope-unresolved: import_url names a URL/, 403);
  });

  it('a namespace needs a groups: list', async () => {
    const sent = await post('/api/v4/projects/1/fork', { type: 'json', fields: { namespace_path: 'acme' } }, await h.token('projects-only'));
    await expectScopeRefused(h, sent, 'scope: namespace acme (namespace_path) needs groups list to name it', 403);
  });

  it('a rule\'s own projects: list holds its references too', async () => {
    const sent = await post('/api/v4/projects/3/issues/1/move', { type: 'json', fields: { to_project_id: 1 } }, await h.token('narrow'));
    await expectScopeRefused(h, sent, 'scope: project acme/platform/api (to_project_id) not in the rule\'s projects', 403);
  });
});

describe('a reference inside the scope is forwarded as sent', () => {
  it('compare from an in-scope project', async () => {
    const sent = await send(h.url, { path: '/api/v4/projects/1/repository/compare?from=a&to=b&from_project_id=2', headers: [bearer(jwt)] });
    const rec = await forwardedOnce(h, sent);
    expect(rec.url).toBe('/api/v4/projects/1/repository/compare?from=a&to=b&from_project_id=2');
    expect(h.audit.find((l) => l.reqId === sent.reqId)).toMatchObject({ reason: 'scope-checked', detail: expect.stringMatching(/project acme\/platform\/web \(from_project_id\)/) });
  });

  it('an issue moved and a merge request opened within the scope, a fork into an in-scope group', async () => {
    let rec = await forwardedOnce(h, await post('/api/v4/projects/1/issues/1/move', { type: 'json', fields: { to_project_id: 3 } }));
    expect(JSON.parse(rec.body.toString())).toEqual({ to_project_id: 3 });
    h.standin.reset();
    rec = await forwardedOnce(h, await post('/api/v4/projects/1/merge_requests', { type: 'multipart', fields: { ...MR, target_project_id: 'acme/docs' } }));
    expect(rec.body.toString()).toContain('acme/docs');
    h.standin.reset();
    rec = await forwardedOnce(h, await post('/api/v4/projects/1/fork', { type: 'json', fields: { namespace_path: 'acme/platform' } }));
    expect(rec.path).toBe('/api/v4/projects/1/fork');
  });
});
