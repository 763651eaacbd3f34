// Property: `explain` says what `serve` does. Generated requests (methods, paths with ids,
// encoded paths, .json suffixes and floor routes, queries, JSON and form bodies, GraphQL
// documents) from generated clients (plain rules, object rules with constraints, project and
// group scope, report mode, GraphQL policies) are sent through a running proxy and described
// to `explain` (in-process, resolving through the same GitLab stand-in with --gitlab); the
// verdict and reason `explain` prints must be the ones the proxy wrote to its audit line.
// DECIDE_RUNS sets the number of requests (npm run fuzz runs more).
import { request } from 'node:http';
import fc from 'fast-check';
import { fuzzSeed } from './support/fuzz-seed.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { explain } from '../src/commands/explain.ts';
import { loadPolicyDir } from '../src/policy/load.ts';
import type { Policy } from '../src/types.ts';
import { startHarness, type Harness } from './support/harness.ts';

const RUNS = Number(process.env.DECIDE_RUNS ?? process.env.FUZZ_RUNS ?? 1000);

const POLICY = `
clients:
  plain:
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
      - POST /api/v4/projects/:id/statuses/:sha
      - GET /api/v4/groups/:id/projects
      - GET /api/v4/projects/:id/repository/**
  constrained:
    allow:
      - method: POST
        path: /api/v4/projects/:id/hooks
        body: { url: { pattern: "^https://hooks\\\\.example/" } }
        deny_fields: [token]
      - GET /api/v4/projects/:id/hooks
      - method: GET
        path: /api/v4/projects/:id/issues
        query: { state: [opened, closed] }
  scoped:
    projects: ["acme/platform/*", "acme/docs"]
    groups: ["acme/platform"]
    graphql: { operations: [query], fields: [currentUser, project, group] }
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
      - GET /api/v4/groups/:id/projects
      - GET /api/v4/projects/:id/repository/**
  reporter:
    mode: report
    allow:
      - GET /api/v4/projects/:id
  grapher:
    graphql: { operations: [query, mutation], fields: [currentUser, project, mutation.createNote] }
    allow:
      - GET /api/v4/user
`;

let h: Harness;
let policy: Policy;
const tokens = new Map<string, string>();

beforeAll(async () => {
  h = await startHarness({ policies: { 'p.yaml': POLICY } });
  policy = loadPolicyDir(h.policyDir);
  for (const name of policy.clients.keys()) tokens.set(name, await h.token(name));
});
afterAll(() => h.close());

// ------------------------------------------------------------------ generators
const projectRef = fc.constantFrom('1', '2', '3', '4', '77', '0005', 'acme%2Fdocs', 'acme%2Fplatform%2Fapi', 'other%2Fsecret', 'acme%2Fold-docs', 'ACME%2FDocs', 'acme%2F..%2Fx');
const groupRef = fc.constantFrom('100', '101', '102', 'acme', 'acme%2Fplatform', 'other');
const tail = fc.constantFrom('', '.json', '%2Ejson');
const restPath = fc.oneof(
  fc.tuple(tail).map(([t]) => `/api/v4/projects${t}`),
  fc.tuple(projectRef, tail).map(([p, t]) => `/api/v4/projects/${p}${t}`),
  fc.tuple(projectRef, fc.constantFrom('3', '12', 'x', '007'), tail).map(([p, iid, t]) => `/api/v4/projects/${p}/merge_requests/${iid}/notes${t}`),
  fc.tuple(projectRef, fc.constantFrom('abc123', 'deadbeef')).map(([p, s]) => `/api/v4/projects/${p}/statuses/${s}`),
  fc.tuple(groupRef, tail).map(([g, t]) => `/api/v4/groups/${g}/projects${t}`),
  fc.tuple(projectRef, fc.constantFrom('tree', 'files/README%2Emd', 'files/a.json', 'commits')).map(([p, r]) => `/api/v4/projects/${p}/repository/${r}`),
  fc.tuple(projectRef, fc.constantFrom('hooks', 'hooks/1', 'issues', 'members', 'variables')).map(([p, r]) => `/api/v4/projects/${p}/${r}`),
  fc.constantFrom('/api/v4/user', '/api/v4/version', '/api/v4/personal_access_tokens/self', '/api/v4/personal_access_tokens/self.json',
    '/api/v4/internal/check', '/api/v3/projects', '/api/v4/projects//1', '/api/v4/projects/%2e%2e', '/api/v4/user/personal_access_tokens', '/-/metrics'),
);
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom('?page=2', '?state=opened', '?state=all', '?state=opened&state=closed', '?per_page=100&page=3', '?sudo=root', '?format=xml', '?_method=DELETE', '?search=a%20b'),
);
const jsonBody = fc.oneof(
  fc.constant({ body: 'hello' }),
  fc.constant({ body: 'LGTM', internal: false }),
  fc.constant({ url: 'https://hooks.example/x', push_events: true }),
  fc.constant({ url: 'https://evil.example/x' }),
  fc.constant({ url: 'https://hooks.example/x', token: 's' }),
  fc.constant({ state: 'success', sha: 'abc' }),
  fc.constant({ sudo: 'root' }),
);
const graphqlDoc = fc.constantFrom(
  '{ currentUser { username } }',
  'query { project(fullPath: "acme/docs") { name } }',
  'query { project(fullPath: "other/secret") { name } }',
  'query { group(fullPath: "acme/platform") { name } }',
  'query { projects { nodes { fullPath } } }',
  'mutation { createNote(input: {noteableId: "gid://gitlab/Issue/1", body: "x"}) { note { id } } }',
  'mutation { destroyNote(input: {id: "gid://gitlab/Note/1"}) { errors } }',
  '{ __typename }',
  'query A { currentUser { username } } query B { project(fullPath: "acme/docs") { id } }',
);

interface Case { client: string; method: string; target: string; contentType?: string; body?: string }

const restCase: fc.Arbitrary<Case> = fc.record({
  client: fc.constantFrom('plain', 'constrained', 'scoped', 'reporter', 'grapher'),
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
  path: restPath,
  query,
  body: fc.option(fc.oneof(
    jsonBody.map((b) => ({ contentType: 'application/json', body: JSON.stringify(b) })),
    fc.constantFrom({ contentType: 'application/x-www-form-urlencoded', body: 'body=hi' }, { contentType: 'application/x-www-form-urlencoded', body: 'url=https%3A%2F%2Fhooks.example%2Fy' }),
  ), { nil: undefined }),
}).map(({ client, method, path, query: q, body }) => ({
  client, method, target: path + q,
  ...(body && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' ? body : {}),
}));

const graphqlCase: fc.Arbitrary<Case> = fc.record({
  client: fc.constantFrom('scoped', 'grapher', 'plain'),
  doc: graphqlDoc,
  method: fc.constantFrom('POST', 'POST', 'GET'),
}).map(({ client, doc, method }) => ({
  client, method, target: '/api/graphql', ...(method === 'POST' ? { contentType: 'application/json', body: JSON.stringify({ query: doc }) } : {}),
}));

// ------------------------------------------------------------------ the two answers
function serve(c: Case): Promise<void> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'private-token': tokens.get(c.client)! };
    if (c.body !== undefined) {
      headers['content-type'] = c.contentType!;
      headers['content-length'] = String(Buffer.byteLength(c.body));
    }
    const req = request({ host: '127.0.0.1', port, method: c.method, path: c.target, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(c.body);
  });
}

async function explained(c: Case): Promise<string> {
  const lines: string[] = [];
  await explain({
    client: policy.clients.get(c.client)!, method: c.method, target: c.target, headers: [],
    contentType: c.contentType, graphqlQuery: undefined, body: c.body === undefined ? undefined : Buffer.from(c.body),
    gitlab: true, env: { GITLAB_URL: h.standin.url, GITLAB_TOKEN: h.realToken }, out: (l) => lines.push(l),
  });
  return lines[0]!;
}

it(`explain and serve agree on ${RUNS} generated requests`, async () => {
  await fc.assert(fc.asyncProperty(fc.oneof({ arbitrary: restCase, weight: 4 }, { arbitrary: graphqlCase, weight: 1 }), async (c) => {
    const before = h.audit.length;
    await serve(c);
    await h.waitForAudit(before + 1);
    const line = h.audit[before]!;
    const said = await explained(c);
    const [verdict, why] = said.split('\t') as [string, string];
    // On a refusal, the reason explain names first is the one in the audit line.
    const reason = verdict === 'allow' ? undefined : why.split(/[: ]/, 1)[0];
    expect({ case: c, verdict, reason }).toEqual({ case: c, verdict: line.decision, reason: verdict === 'allow' ? undefined : line.reason });
  }), { numRuns: RUNS, ...fuzzSeed() });
}, 120_000);
