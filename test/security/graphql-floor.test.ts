// The GraphQL floor: fields that return or create credentials are refused for every client,
// as REST's credential routes are (src/graphql/document.ts CREDENTIAL_FIELD). Found by an
// outside review: scopes: [read_api] allowed any query field, and GitLab's GraphQL exposes CI/CD
// variable values (Project/Group/Query.ciVariables, CiVariable.value) that REST's floor refuses.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ policies: { 'v.yaml': 'clients:\n  reader:\n    scopes: [read_api]\n  writer:\n    graphql: { operations: [query, mutation], fields: [project, mutation.personalAccessTokenCreate, mutation.runnerCreate] }\n' } });
});
afterAll(async () => h?.close());

async function gql(client: string, query: string): Promise<{ status: number; received: string[]; reason: string | null; detail: string | undefined }> {
  const before = h.standin.requests.length;
  const auditBefore = h.audit.length;
  const res = await fetch(h.url + '/api/graphql', {
    method: 'POST',
    headers: { authorization: `Bearer ${await h.token(client)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  await res.arrayBuffer();
  await h.waitForAudit(auditBefore + 1);
  const line = h.audit[auditBefore]!;
  return { status: res.status, received: h.standin.requests.slice(before).map((r) => `${r.method} ${r.url}`), reason: line.reason, detail: line.detail };
}

it('REST: the floor refuses the variables listing', async () => {
  const before = h.standin.requests.length;
  const res = await fetch(h.url + '/api/v4/projects/1/variables', { headers: { authorization: `Bearer ${await h.token('reader')}` } });
  await res.arrayBuffer();
  expect(res.status).toBe(403);
  expect(h.standin.requests.length).toBe(before);
});

it.each([
  ['reader', '{ project(fullPath: "acme/docs") { ciVariables { nodes { key value } } } }'],
  ['reader', '{ group(fullPath: "acme") { ciVariables { nodes { key value } } } }'],
  ['reader', '{ ciVariables { nodes { key value } } }'],
  ['reader', '{ project(fullPath: "acme/docs") { pipelineSchedules { nodes { variables { nodes { value } } } } } }'],
  ['reader', 'query { project(fullPath: "acme/docs") { ...F } } fragment F on Project { ciVariables { nodes { value } } }'],
  ['writer', 'mutation { personalAccessTokenCreate(input: {name: "x", scopes: ["api"]}) { token } }'],
  ['writer', 'mutation { runnerCreate(input: {runnerType: INSTANCE_TYPE}) { runner { ephemeralAuthenticationToken } } }'],
])('GraphQL: %s may not send %s', async (client, query) => {
  const r = await gql(client, query);
  expect(r).toMatchObject({ status: 403, received: [], reason: 'graphql-denied' });
  expect(r.detail).toMatch(/names a credential \(the GraphQL floor/);
});

it('GraphQL: what names no credential still passes', async () => {
  const r = await gql('reader', '{ project(fullPath: "acme/docs") { name } }');
  expect(r).toMatchObject({ status: 200, received: ['POST /api/graphql'] });
});
