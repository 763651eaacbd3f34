// GraphQL on POST /api/graphql (GitHub issue 4, reference item 13): real GraphQL requests over
// HTTP through the proxy to the GitLab stand-in, which answers {"data":{"echo":true}} and
// records what it received. Allowed requests must arrive meaning what was sent (the proxy
// forwards its own print of the checked document); refused ones must not
// arrive at all, must answer in GraphQL's error format and leave a deny audit line naming the
// first field or operation refused.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, print } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './support/cli.ts';
import type { RecordedRequest } from './support/gitlab-standin.ts';
import { startHarness, type AuditLine, type Harness } from './support/harness.ts';

const POLICY = `
clients:
  reader:
    graphql:
      operations: [query]
      fields: [currentUser, project, group.descendantGroups]
      introspection: false
      max_depth: 5
      max_length: 600
  writer:
    graphql:
      operations: [query, mutation]
      fields: [project, mutation.createIssue]
      introspection: true
  namer:
    graphql:
      fields: [currentUser]
      operation_names: [whoAmI, listDescendantGroups]
  scoped:
    projects: [acme/**]
    groups: [acme/**]
    graphql:
      fields: [project, group, currentUser]
  reading:
    scopes: [read_api]
  restonly:
    allow: [GET /api/v4/user]
`;

let h: Harness;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  h = await startHarness({ policies: { 'graphql.yaml': POLICY } });
  for (const c of ['reader', 'writer', 'namer', 'scoped', 'reading', 'restonly']) tokens[c] = await h.token(c);
});
afterAll(() => h.close());
beforeEach(() => h.standin.reset());

interface Result {
  status: number;
  text: string;
  /** Requests that reached GitLab's GraphQL endpoint (scope look-ups are REST GETs, not counted). */
  received: RecordedRequest[];
  audit: AuditLine;
}

interface CallOptions {
  method?: string;
  path?: string;
  contentType?: string;
}

/** One GraphQL call: `body` is sent exactly as given when a string, else as JSON. */
async function gql(client: string, body: unknown, opts: CallOptions = {}): Promise<Result> {
  const init: RequestInit = { method: opts.method ?? 'POST', headers: { Authorization: `Bearer ${tokens[client]!}` } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(h.url + (opts.path ?? '/api/graphql'), init);
  const text = await res.text();
  const reqId = res.headers.get('x-request-id');
  expect(reqId, 'every answer carries the request id').toBeTruthy();
  // Written when the response has ended; anything forwarded was recorded before GitLab answered.
  const audit = await h.waitForAuditLine((l) => l.reqId === reqId, `the audit line of ${reqId}`);
  return { status: res.status, text, received: h.standin.requests.filter((r) => r.path.endsWith('/graphql')), audit };
}

/** One entry as GitLab should get it: the document as graphql-js reads it (printed, so layout
 *  and comments do not count), variables as values, the operation name. */
function meaning(entry: Record<string, unknown>): unknown {
  const vars = typeof entry.variables === 'string' ? (JSON.parse(entry.variables) as unknown) : (entry.variables ?? {});
  return { query: print(parse(entry.query as string)), variables: vars, operationName: entry.operationName ?? null };
}

/** Forwarded: one request at GitLab meaning what was sent, re-serialized on one line by the
 *  proxy, with the real token and no query string. */
function expectForwarded(r: Result, sent: string): RecordedRequest {
  expect(r.status, r.text).toBe(200);
  expect(JSON.parse(r.text)).toEqual({ data: { echo: true } });
  expect(r.received).toHaveLength(1);
  const got = r.received[0]!;
  expect(got.method).toBe('POST');
  expect(got.url).toBe('/api/graphql');
  const gotJson = JSON.parse(got.body.toString('utf8')) as Record<string, unknown> | Record<string, unknown>[];
  const sentJson = JSON.parse(sent) as Record<string, unknown> | Record<string, unknown>[];
  const list = <T,>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
  expect(Array.isArray(gotJson)).toBe(Array.isArray(sentJson));
  expect(list(gotJson).map(meaning)).toEqual(list(sentJson).map(meaning));
  for (const e of list(gotJson)) expect(e.query as string, 'the canonical print has no line break').not.toMatch(/[\r\n]/);
  expect(got.headers['content-length']).toBe(String(got.body.length));
  expect(got.headers['content-type']).toBe('application/json');
  expect(got.headers['private-token']).toBe(h.realToken);
  expect(got.headers.authorization).toBeUndefined();
  expect(r.audit.decision).toBe('allow');
  return got;
}

/** Refused: nothing reached GitLab's GraphQL endpoint, GraphQL's error format, a deny line. */
function expectRefused(r: Result, reason: string | RegExp, status = 403): void {
  expect(r.status, r.text).toBe(status);
  expect(r.received, 'nothing reaches GitLab').toEqual([]);
  const body = JSON.parse(r.text) as { errors: { message: string }[] };
  expect(body.errors).toHaveLength(1);
  expect(r.audit.decision).toBe('deny');
  // The client reads "graphql: <what>"; the audit line has the reason code and <what>.
  const said = `graphql: ${r.audit.detail}`;
  if (typeof reason === 'string') expect(said).toBe(reason);
  else expect(said).toMatch(reason);
  expect(r.audit.reason).toMatch(/^graphql-(?:denied|malformed)$|^content-type$/);
  // The client may read more (the parser's words); the audit line names only what was refused.
  expect(body.errors[0]!.message.startsWith(said)).toBe(true);
}

const q = (query: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ query, ...extra });

describe('allowed requests arrive as the proxy\'s print of what it checked', () => {
  it('a query on listed fields, with odd spacing and key order kept', async () => {
    const sent = '{ "variables" : {"p":"acme/docs"},\n "query":"query Q($p: ID!) { currentUser { username } project(fullPath: $p) { id name } }" }';
    const r = await gql('reader', sent);
    expectForwarded(r, sent);
    expect(r.audit.rule).toMatch(/^graphql-policy: query currentUser,project$/);
  });

  it('a dotted entry allows its path and everything below it', async () => {
    const sent = q('{ group(fullPath: "acme") { descendantGroups { nodes { fullPath name } } __typename } }');
    expectForwarded(await gql('reader', sent), sent);
  });

  it('variables as a JSON string (lib/gitlab/graphql/variables.rb)', async () => {
    const sent = q('query($p: ID!) { project(fullPath: $p) { id } }', { variables: '{"p":"acme/docs"}' });
    expectForwarded(await gql('reader', sent), sent);
  });

  it('fragments and inline fragments inside allowed fields', async () => {
    const sent = q('query { currentUser { ...U ... on UserCore { name } } } fragment U on UserCore { username }');
    expectForwarded(await gql('reader', sent), sent);
  });

  it('several operations with operationName naming one, every one allowed', async () => {
    const sent = q('query A { currentUser { username } } query B { project(fullPath: "acme/docs") { id } }', { operationName: 'B' });
    expectForwarded(await gql('reader', sent), sent);
  });

  it('a batch whose every entry passes', async () => {
    const sent = JSON.stringify([{ query: '{ currentUser { username } }' }, { query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: 'acme/docs' } }]);
    expectForwarded(await gql('reader', sent), sent);
  });

  it('a listed mutation, and introspection when allowed', async () => {
    const m = q('mutation { createIssue(input: {projectPath: "acme/docs", title: "x"}) { issue { iid } errors } }');
    expectForwarded(await gql('writer', m), m);
    h.standin.reset();
    const i = q('{ __schema { queryType { name } } t: __type(name: "Project") { fields { name } } }');
    expectForwarded(await gql('writer', i), i);
  });

  it('a listed operation name', async () => {
    const sent = q('query whoAmI { currentUser { username } }');
    expectForwarded(await gql('namer', sent), sent);
  });

  it('scopes: [read_api]: queries on any field', async () => {
    const sent = q('{ projects { nodes { fullPath } } __schema { queryType { name } } }');
    expectForwarded(await gql('reading', sent), sent);
  });
});

describe('refused', () => {
  it('a mutation when only queries are allowed', async () => {
    expectRefused(await gql('reader', q('mutation { createIssue(input: {projectPath: "acme/docs", title: "x"}) { errors } }')), 'graphql: operation mutation not allowed');
    expectRefused(await gql('reading', q('mutation { createIssue(input: {projectPath: "acme/docs", title: "x"}) { errors } }')), 'graphql: operation mutation not allowed');
  });

  it('an unlisted mutation', async () => {
    expectRefused(await gql('writer', q('mutation { destroyIssue: createIssue(input: {}) { errors } issueDelete: destroyBoard(input: {}) { errors } }')), 'graphql: field mutation.destroyBoard not allowed');
  });

  it('an unlisted root field, and an unlisted child of a dotted entry', async () => {
    expectRefused(await gql('reader', q('{ currentUser { username } projects { nodes { id } } }')), 'graphql: field projects not allowed');
    expectRefused(await gql('reader', q('{ group(fullPath: "acme") { projects { nodes { id } } } }')), 'graphql: field group.projects not allowed');
    expectRefused(await gql('reader', q('{ group(fullPath: "acme") { id } }')), 'graphql: field group.id not allowed');
  });

  it('a field hidden behind an alias', async () => {
    expectRefused(await gql('reader', q('{ currentUser: projects { nodes { id } } }')), 'graphql: field projects not allowed');
    expectRefused(await gql('reader', q('{ group(fullPath: "acme") { descendantGroups: projects { nodes { id } } } }')), 'graphql: field group.projects not allowed');
  });

  it('a field hidden behind a fragment or an inline fragment', async () => {
    expectRefused(await gql('reader', q('query { ...Q } fragment Q on Query { projects { nodes { id } } }')), 'graphql: field projects not allowed');
    expectRefused(await gql('reader', q('{ ... on Query { ... @include(if: false) { projects { nodes { id } } } } }')), 'graphql: field projects not allowed');
    expectRefused(await gql('reader', q('{ group(fullPath: "acme") { ...G } } fragment G on Group { projects { nodes { id } } }')), 'graphql: field group.projects not allowed');
  });

  it('fragment cycles and unknown fragments', async () => {
    expectRefused(await gql('reader', q('{ currentUser { ...A } } fragment A on UserCore { ...B } fragment B on UserCore { ...A }')), 'graphql: fragment A spreads itself', 400);
    expectRefused(await gql('reader', q('{ currentUser { ...Missing } }')), 'graphql: unknown fragment Missing', 400);
  });

  it('a fragment bomb', async () => {
    let doc = '{ currentUser { ...F12 } } fragment F0 on UserCore { username }';
    for (let i = 1; i <= 12; i++) doc += ` fragment F${i} on UserCore { ...F${i - 1} ...F${i - 1} ...F${i - 1} }`;
    expectRefused(await gql('writer', q(doc.replace('currentUser', 'project'))), /^graphql: query too complex/);
  });

  it('introspection unless allowed; __typename is always fine', async () => {
    expectRefused(await gql('reader', q('{ __schema { types { name } } }')), 'graphql: field __schema not allowed');
    expectRefused(await gql('reader', q('{ t: __type(name: "Project") { name } }')), 'graphql: field __type not allowed');
    expectRefused(await gql('reader', q('{ currentUser { __schema { types { name } } } }')), 'graphql: field currentUser.__schema not allowed');
    const ok = q('{ __typename currentUser { __typename } }');
    expectForwarded(await gql('reader', ok), ok);
  });

  it('a subscription', async () => {
    expectRefused(await gql('reading', q('subscription { issuableAssigneesUpdated(issuableId: "gid://gitlab/Issue/1") { __typename } }')), 'graphql: operation subscription not allowed');
  });

  it('GET and HEAD', async () => {
    const url = `/api/graphql?query=${encodeURIComponent('{ currentUser { username } }')}`;
    expectRefused(await gql('reader', undefined, { method: 'GET', path: url }), /^graphql: GET not allowed/);
    const head = await fetch(`${h.url}${url}`, { method: 'HEAD', headers: { Authorization: `Bearer ${tokens.reader!}` } });
    expect(head.status).toBe(403);
    expect(h.standin.requests).toEqual([]);
  });

  it('a query string, which Rails lets win over the body', async () => {
    const r = await gql('writer', q('{ project(fullPath: "acme/docs") { id } }'), { path: `/api/graphql?query=${encodeURIComponent('mutation { destroyBoard(input: {}) { errors } }')}` });
    expectRefused(r, 'graphql: query string not allowed', 400);
    expectRefused(await gql('reader', q('{ currentUser { username } }'), { path: '/api/graphql?' }), 'graphql: query string not allowed', 400);
  });

  it('a batch with one bad entry, an empty batch, string variables in a batch', async () => {
    expectRefused(await gql('reader', JSON.stringify([{ query: '{ currentUser { username } }' }, { query: 'mutation { createIssue(input: {}) { errors } }' }])), 'graphql: operation mutation not allowed');
    expectRefused(await gql('reader', '[]'), 'graphql: empty batch', 400);
    // GitLab permits only a hash there and drops a string: the defaults would run unchecked.
    expectRefused(await gql('reader', JSON.stringify([{ query: 'query($p: ID! = "other/secret") { project(fullPath: $p) { id } }', variables: '{"p":"acme/docs"}' }])),
      'graphql: batch entry 0: variables must be an object', 400);
  });

  it('several operations without operationName, or with one another operation fails', async () => {
    expectRefused(await gql('reader', q('query A { currentUser { username } } query B { currentUser { name } }')), 'graphql: several operations need an operationName', 400);
    expectRefused(await gql('reader', q('query A { currentUser { username } } query B { projects { nodes { id } } }', { operationName: 'A' })), 'graphql: field projects not allowed');
    expectRefused(await gql('reader', q('query A { currentUser { username } }', { operationName: 'B' })), 'graphql: no operation named B', 400);
    expectRefused(await gql('reader', q('{ currentUser { username } } query B { currentUser { name } }', { operationName: 'B' })), 'graphql: an anonymous operation must be the only one', 400);
  });

  it('operation names not listed', async () => {
    expectRefused(await gql('namer', q('{ currentUser { username } }')), 'graphql: anonymous operation not allowed (operation_names is set)');
    expectRefused(await gql('namer', q('query sneaky { currentUser { username } }')), 'graphql: operation name sneaky not allowed');
  });

  it('too deep and too long', async () => {
    // project(1) a(2) b(3) c(4) d(5) e(6): max_depth 5.
    expectRefused(await gql('reader', q('{ project(fullPath: "acme/docs") { a { b { c { d { e } } } } } }')), 'graphql: query deeper than max_depth 5 at project.a.b.c.d.e');
    const ok = q('{ project(fullPath: "acme/docs") { a { b { c { d } } } } }');
    expectForwarded(await gql('reader', ok), ok);
    h.standin.reset();
    expectRefused(await gql('reader', q(`{ currentUser { username } }${' '.repeat(600)}`)), 'graphql: query longer than max_length 600 (628 characters)');
    expectRefused(await gql('reader', JSON.stringify(Array.from({ length: 25 }, () => ({ query: '{ currentUser { username } }' })))), /^graphql: query longer than max_length 600/);
  });

  it('variables strings with duplicate keys, or that are not an object', async () => {
    expectRefused(await gql('reader', q('query($p: ID!) { project(fullPath: $p) { id } }', { variables: '{"p":"acme/docs","p":"other/secret"}' })), 'graphql: variables: duplicate-key', 400);
    expectRefused(await gql('reader', q('query($p: ID!) { project(fullPath: $p) { id } }', { variables: '"{\\"p\\":\\"acme/docs\\"}"' })), 'graphql: variables must be a JSON object', 400);
    expectRefused(await gql('reader', q('{ currentUser { username } }', { variables: [1] })), 'graphql: variables must be an object or a JSON string', 400);
    expectRefused(await gql('reader', '{"query":"{ currentUser { username } }","query":"{ projects { nodes { id } } }"}'), 'graphql: duplicate-key', 400);
  });

  it('keys GitLab reads otherwise, syntax errors, other documents', async () => {
    expectRefused(await gql('reader', q('{ currentUser { username } }', { _json: [{ query: 'mutation { x }' }] })), 'graphql: key "_json" not allowed', 400);
    expectRefused(await gql('reader', q('{ currentUser { username } }', { private_token: 'x' })), 'graphql: key "private_token" not allowed', 400);
    const syntax = await gql('reader', q('{ currentUser { username } } secretValue42'));
    expectRefused(syntax, 'graphql: syntax-error', 400);
    // The parser's message quotes the query: it reaches the client, never the audit line.
    expect(JSON.parse(syntax.text).errors[0].message).toMatch(/^graphql: syntax-error: Syntax Error.*secretValue42/);
    expect(JSON.stringify(syntax.audit)).not.toContain('secretValue42');
    expectRefused(await gql('reader', q('type Evil { a: Int } { currentUser { username } }')), 'graphql: only operations and fragments may be sent', 400);
    expectRefused(await gql('reader', '{"query":"{ currentUser { username } }", "operationName": 5}'), 'graphql: operationName must be a string', 400);
  });

  it('bodies that are not JSON: multipart (apollo upload), form, none', async () => {
    const boundary = 'x1y2';
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${q('{ currentUser { username } }')}\r\n--${boundary}--\r\n`;
    expectRefused(await gql('reader', multipart, { contentType: `multipart/form-data; boundary=${boundary}` }), 'graphql: content-type must be application/json', 415);
    expectRefused(await gql('reader', 'query=%7B+currentUser+%7B+username+%7D+%7D', { contentType: 'application/x-www-form-urlencoded' }), 'graphql: content-type must be application/json', 415);
    expectRefused(await gql('reader', undefined), 'graphql: a JSON body is required', 400);
  });
});

describe('project and group scope', () => {
  const lookups = (): string[] => h.standin.requests.filter((r) => !r.path.endsWith('/graphql')).map((r) => r.url);

  it('allows in-scope projects and groups, by literal, variable or default', async () => {
    const sent = q('query($g: ID!, $p: ID! = "acme/platform/api") { a: project(fullPath: "acme/docs") { id } b: project(fullPath: $p) { id } group(fullPath: $g) { id } }', { variables: { g: 'acme/platform' } });
    expectForwarded(await gql('scoped', sent), sent);
  });

  it('refuses an out-of-scope project however it is named', async () => {
    expectRefused(await gql('scoped', q('{ project(fullPath: "other/secret") { id } }')), 'graphql: project other/secret out of scope');
    expect(lookups(), 'the scope was resolved through GitLab').toContain('/api/v4/projects/other%2Fsecret');
    expectRefused(await gql('scoped', q('{ ok: project(fullPath: "acme/docs") { id } bad: project(fullPath: "other/secret") { id } }')), 'graphql: project other/secret out of scope');
    expectRefused(await gql('scoped', q('query($p: ID!) { project(fullPath: $p) { id } }', { variables: { p: 'other/secret' } })), 'graphql: project other/secret out of scope');
    expectRefused(await gql('scoped', q('query($p: ID!) { project(fullPath: $p) { id } }', { variables: '{"p":"other/secret"}' })), 'graphql: project other/secret out of scope');
    expectRefused(await gql('scoped', q('query($p: ID! = "other/secret") { project(fullPath: $p) { id } }')), 'graphql: project other/secret out of scope');
    expectRefused(await gql('scoped', q('query { ...P } fragment P on Query { project(fullPath: "other/secret") { id } }')), 'graphql: project other/secret out of scope');
    expectRefused(await gql('scoped', q('{ group(fullPath: "other") { id } }')), 'graphql: group other out of scope');
    expectRefused(await gql('scoped', q('{ project(fullPath: "4") { id } }')), 'graphql: project "4" is not a full path');
    expectRefused(await gql('scoped', q('query($p: ID!) { project(fullPath: $p) { id } }', { variables: { p: 4 } })), 'graphql: project: fullPath must be a string');
  });

  it('allows fields that reveal no project, refuses root fields that reach projects without naming them (more in security/graphql-scope.test.ts)', async () => {
    const ok = q('{ currentUser { username } }');
    expectForwarded(await gql('scoped', ok), ok);
    h.standin.reset();
    expectRefused(await gql('scoped', q('{ currentUser { groupMemberships { nodes { id } } } }')), 'graphql: field currentUser.groupMemberships cannot be scope-checked (not in the scope table)');
  });
});

describe('clients without GraphQL and other endpoints', () => {
  it('a client without graphql: is refused as before, in GitLab\'s REST format', async () => {
    const r = await gql('restonly', q('{ currentUser { username } }'));
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text)).toEqual({ message: expect.stringMatching(/^403 Forbidden/) });
    expect(r.received).toEqual([]);
    expect(r.audit.reason).toMatch(/^not-api/);
  });

  it.each(['/api/glql', '/api/graphql.json', '/api/GraphQL', '/api/graphql/x'])('%s stays refused', async (path) => {
    const r = await gql('reading', q('{ currentUser { username } }'), { path });
    expect(r.status).toBe(403);
    expect(h.standin.requests).toEqual([]);
    expect(r.audit.reason).toMatch(/^not-api/);
  });
});

describe('explain and check', () => {
  const run = (args: string[]) => runCli(args);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gsp-graphql-'));
    writeFileSync(join(dir, 'graphql.yaml'), POLICY);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('explain POST /api/graphql says a body is needed, and checks --graphql-query', async () => {
    // Without a body, as served: GitLab's GraphQL endpoint needs one.
    const bare = await run(['explain', '--policies', dir, '--client', 'reader', 'POST', '/api/graphql']);
    expect(bare.stdout).toMatch(/^deny\tgraphql-malformed: a JSON body is required \(400\)/);
    expect(bare.code).toBe(1);
    const ok = await run(['explain', '--policies', dir, '--client', 'reader', '--graphql-query', '{ currentUser { username } }', 'POST', '/api/graphql']);
    expect(ok.stdout).toBe('allow\tgraphql-policy: query currentUser\n');
    expect(ok.code).toBe(0);
    const bad = await run(['explain', '--policies', dir, '--client', 'reader', '--graphql-query', 'mutation { createIssue(input: {}) { errors } }', 'POST', '/api/graphql']);
    expect(bad.stdout).toMatch(/^deny\tgraphql-denied: operation mutation not allowed/);
    expect(bad.code).toBe(1);
    expect((await run(['explain', '--policies', dir, '--client', 'reader', 'GET', '/api/graphql'])).stdout).toMatch(/^deny\tgraphql-denied: GET not allowed/);
    expect((await run(['explain', '--policies', dir, '--client', 'restonly', 'POST', '/api/graphql'])).stdout).toMatch(/^deny\tnot-api/);
  });

  it('check reports a mutation field without the mutation operation, and unknown keys', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'gsp-graphql-'));
    try {
      writeFileSync(join(bad, 'a.yaml'), 'clients:\n  x:\n    graphql:\n      fields: [mutation.createIssue, "bad field"]\n      depth: 3\n');
      const r = await run(['check', '--policies', bad]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/a\.yaml:\d+:\d+ .*graphql\.fields\.1/);
      expect(r.stdout).toMatch(/unknown key "depth"/);
      writeFileSync(join(bad, 'a.yaml'), 'clients:\n  x:\n    graphql:\n      fields: [mutation.createIssue]\n');
      expect((await run(['check', '--policies', bad])).stdout).toMatch(/a\.yaml:4:\d+ graphql\.fields: "mutation\.createIssue" names a mutation but operations does not include mutation/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
