// GraphQL scope at every depth (issue 10 item 2): a client with projects:/groups: may read
// what reveals no project or group ({ currentUser { username } }) and the projects and groups of
// its scope, named by full path, at any depth; it may not reach any other project or group
// through a list, a nested field, a fragment, an alias, a variable, a skipped selection or a
// global id. Every test asserts on what GitLab's /api/graphql (the stand-in) received, read
// the way GitLab reads it (test/support/graphql-ruby-oracle.ts).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type AuditLine, type Harness } from '../support/harness.ts';
import { gitlabReading } from '../support/graphql-ruby-oracle.ts';

const POLICY = `
clients:
  vendor:
    projects: ["acme/**"]
    groups: ["acme/**"]
    graphql:
      operations: [query, mutation]
      fields: [currentUser, project, group, namespace, projects, groups, issue, metadata, mutation.createIssue]
  projonly:
    projects: [acme/docs]
    graphql:
      fields: [currentUser, project, group, namespace]
`;

let h: Harness;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  h = await startHarness({ policies: { 'vendor.yaml': POLICY } });
  for (const c of ['vendor', 'projonly']) tokens[c] = await h.token(c);
});
afterAll(() => h.close());
beforeEach(() => h.standin.reset());

interface Outcome { status: number; text: string; received: string[]; audit: AuditLine }

async function gql(query: string, opts: { client?: string; variables?: Record<string, unknown> } = {}): Promise<Outcome> {
  const res = await fetch(`${h.url}/api/graphql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokens[opts.client ?? 'vendor']!}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ query, ...(opts.variables ? { variables: opts.variables } : {}) }),
  });
  const text = await res.text();
  const reqId = res.headers.get('x-request-id');
  // The line is written when the response has ended: wait for that event, not a time.
  const audit = await h.waitForAuditLine((l) => l.reqId === reqId, `the audit line of ${reqId}`);
  // The proxy forwards before it answers: what GitLab got is recorded by now. Scope look-ups
  // are REST GETs under /api/v4 and are not counted.
  const received = h.standin.requests.filter((r) => r.path === '/api/graphql').map((r) => (JSON.parse(r.body.toString('utf8')) as { query: string }).query);
  return { status: res.status, text, received, audit };
}

const IN_SCOPE = /^acme(\/|$)/;

/** Forwarded, and GitLab, reading what it received, names only projects and groups in scope. */
function expectForwarded(out: Outcome): void {
  expect(out.status, out.text).toBe(200);
  expect(out.received).toHaveLength(1);
  const reading = gitlabReading(out.received[0]!, { batch: false });
  expect(reading).toBeDefined();
  for (const op of reading!.operations) {
    for (const m of op.text.matchAll(/fullPath:"([^"]*)"/g)) expect(m[1]).toMatch(IN_SCOPE);
  }
}

function expectRefused(out: Outcome, reason: string | RegExp): void {
  expect(out.received, 'nothing reaches GitLab').toEqual([]);
  expect(out.status, out.text).toBe(403);
  expect(out.audit.decision).toBe('deny');
  // The audit line: reason graphql-denied, detail what was refused (the client reads "graphql: <detail>").
  expect(out.audit.reason).toBe('graphql-denied');
  const said = `graphql: ${out.audit.detail}`;
  if (typeof reason === 'string') expect(said).toBe(reason);
  else expect(said).toMatch(reason);
}

describe('what reveals no project or group, and the scope itself, pass', () => {
  it('{ currentUser { username } } and other fields of the user', async () => {
    expectForwarded(await gql('{ currentUser { username name id webUrl status { message } } }'));
    h.standin.reset();
    expectForwarded(await gql('{ metadata { version } __typename }'));
  });

  it('an in-scope project at depth: issues, merge requests, their authors and assignees', async () => {
    expectForwarded(await gql(`{ project(fullPath: "acme/docs") {
      fullPath issues(first: 5, state: opened) { count nodes { iid title author { username } assignees { nodes { username } } } pageInfo { hasNextPage endCursor } }
      mergeRequests { edges { node { iid sourceBranch author { name } } } }
      ... on Project { repository { rootRef } }
    } }`));
  });

  it('in-scope groups and namespaces, by literal, alias, variable and fragment', async () => {
    expectForwarded(await gql('query($g: ID!) { a: group(fullPath: "acme") { name } b: group(fullPath: $g) { ...G } namespace(fullPath: "acme/platform") { fullName } } fragment G on Group { fullPath }', { variables: { g: 'acme/platform' } }));
  });
});

describe('every other way to a project or group is refused', () => {
  const NOT_IN_TABLE = /^graphql: field .* cannot be scope-checked \(not in the scope table\)$/;

  it.each([
    ['the projects list', '{ projects { nodes { fullPath } } }', /^graphql: field projects cannot be scope-checked/],
    ['projects by ids', '{ projects(ids: ["gid://gitlab/Project/4"]) { nodes { fullPath } } }', /^graphql: field projects cannot be scope-checked/],
    ['the groups list', '{ groups { nodes { fullPath } } }', /^graphql: field groups cannot be scope-checked/],
    ['an issue by global id, whose project is elsewhere', '{ issue(id: "gid://gitlab/Issue/1") { title } }', /^graphql: field issue cannot be scope-checked/],
    ['the user\'s group memberships', '{ currentUser { groupMemberships { nodes { group { fullPath } } } } }', NOT_IN_TABLE],
    ['the user\'s projects', '{ currentUser { username starredProjects { nodes { fullPath } } } }', NOT_IN_TABLE],
    ['the user\'s own namespace', '{ currentUser { namespace { fullPath } } }', NOT_IN_TABLE],
    ['a group\'s projects', '{ group(fullPath: "acme") { projects(includeSubgroups: true) { nodes { fullPath } } } }', NOT_IN_TABLE],
    ['a group\'s parent', '{ group(fullPath: "acme/platform") { parent { fullPath } } }', NOT_IN_TABLE],
    ['a project\'s group, through an inline fragment', '{ project(fullPath: "acme/docs") { ... on Project { group { fullPath } } } }', NOT_IN_TABLE],
    ['an issue moved to another project', '{ project(fullPath: "acme/docs") { issues { nodes { movedTo { webUrl } } } } }', NOT_IN_TABLE],
    ['a merge request from a fork', '{ project(fullPath: "acme/docs") { mergeRequests { nodes { sourceProject { fullPath } } } } }', NOT_IN_TABLE],
    ['a fragment on another type', '{ project(fullPath: "acme/docs") { ... on Group { id } } }', 'graphql: fragment on Group at project cannot be scope-checked'],
    ['an argument naming another project below the root', '{ project(fullPath: "acme/docs") { issues(projectPath: "other/secret") { count } } }', /^graphql: argument projectPath of project\.issues may name another project or group$/],
  ])('%s', async (_what, query, reason) => {
    expectRefused(await gql(query), reason);
  });

  it.each([
    ['a literal', '{ project(fullPath: "other/secret") { id } }', undefined],
    ['an alias beside an allowed one', '{ ok: project(fullPath: "acme/docs") { id } p: project(fullPath: "other/secret") { id } }', undefined],
    ['a variable', 'query($p: ID!) { project(fullPath: $p) { id } }', { p: 'other/secret' }],
    ['a variable default', 'query($p: ID! = "other/secret") { project(fullPath: $p) { id } }', undefined],
    ['a fragment', 'query { ...Q } fragment Q on Query { project(fullPath: "other/secret") { id } }', undefined],
    ['a skipped selection (treated as present)', '{ project(fullPath: "acme/docs") { id } x: project(fullPath: "other/secret") @skip(if: true) { id } }', undefined],
    ['an included selection in an inline fragment', '{ ... @include(if: false) { project(fullPath: "other/secret") { id } } }', undefined],
  ])('an out-of-scope project through %s', async (_what, query, variables) => {
    expectRefused(await gql(query, variables ? { variables } : {}), 'graphql: project other/secret out of scope');
  });

  it('out-of-scope groups and namespaces', async () => {
    expectRefused(await gql('{ group(fullPath: "other") { id } }'), 'graphql: group other out of scope');
    expectRefused(await gql('{ namespace(fullPath: "other") { id } }'), 'graphql: namespace other out of scope');
  });

  it('with only projects:, no group or namespace passes (its subtree lists unnamed projects)', async () => {
    expectForwarded(await gql('{ currentUser { username } project(fullPath: "acme/docs") { id } }', { client: 'projonly' }));
    h.standin.reset();
    expectRefused(await gql('{ group(fullPath: "acme") { id } }', { client: 'projonly' }), 'graphql: group acme out of scope');
    expectRefused(await gql('{ namespace(fullPath: "acme") { id } }', { client: 'projonly' }), 'graphql: namespace acme out of scope');
    expectRefused(await gql('{ project(fullPath: "acme/platform/api") { id } }', { client: 'projonly' }), 'graphql: project acme/platform/api out of scope');
  });

  it('mutations, which the table does not type', async () => {
    expectRefused(await gql('mutation { createIssue(input: {projectPath: "acme/docs", title: "x"}) { errors } }'), /^graphql: operation mutation cannot be scope-checked/);
  });

  it('a numeric or odd full path, which GitLab would look up otherwise than the scope resolver', async () => {
    expectRefused(await gql('{ project(fullPath: "4") { id } }'), 'graphql: project "4" is not a full path');
    expectRefused(await gql('query($p: ID!) { project(fullPath: $p) { id } }', { variables: { p: 4 } }), 'graphql: project: fullPath must be a string');
  });
});
