// GraphQL parser differentials (issue 10 item 1): GitLab reads a query text with graphql-ruby
// after its GraphqlController rewrote line breaks it takes to be inside strings; the proxy reads
// it with graphql-js. Where the two disagree (a "#" comment ended by a lone "\r", a quote in a
// comment, a string ending in a backslash, block strings with quotes), a client allowed only
// queries could get GitLab to run a mutation. The proxy forwards its own one-line print of the
// document it checked, and refuses texts GitLab would read otherwise.
//
// Every test reads what the GitLab stand-in received with an oracle written from GitLab's and
// graphql-ruby's sources (test/support/graphql-ruby-oracle.ts). The property test generates
// documents with comments, string escapes, block strings, "\r"/"\n" mixes, hidden operations
// and unused fragments. FUZZ_RUNS (npm run fuzz) raises the number of cases.
import fc from 'fast-check';
import { fuzzSeed } from '../support/fuzz-seed.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type AuditLine, type Harness } from '../support/harness.ts';
import { executedOperation, gitlabReading, jsReading, type Reading } from '../support/graphql-ruby-oracle.ts';

const RUNS = process.env.FUZZ_RUNS ? Math.ceil(Number(process.env.FUZZ_RUNS) / 5) : 300;
const ALLOWED_ROOTS = new Set(['currentUser', 'project', '__typename']);
const POLICY = `
clients:
  vendor:
    graphql:
      operations: [query]
      fields: [currentUser, project]
  scoped:
    projects: ["acme/**"]
    graphql:
      operations: [query]
      fields: [currentUser, project]
`;

let h: Harness;
let jwt: string;
let scopedJwt: string;
beforeAll(async () => {
  h = await startHarness({ policies: { 'vendor.yaml': POLICY } });
  jwt = await h.token('vendor');
  scopedJwt = await h.token('scoped');
});
afterAll(() => h.close());
beforeEach(() => h.standin.reset());

interface Outcome {
  status: number;
  /** The bodies GitLab's /api/graphql received (the proxy forwards before it answers). */
  received: unknown[];
  audit: AuditLine;
}

async function post(body: string, scoped = false): Promise<Outcome> {
  const res = await fetch(`${h.url}/api/graphql`, { method: 'POST', headers: { Authorization: `Bearer ${scoped ? scopedJwt : jwt}`, 'Content-Type': 'application/json' }, body });
  await res.arrayBuffer();
  const reqId = res.headers.get('x-request-id');
  // The line is written when the response has ended: wait for that event, not a time.
  const audit = await h.waitForAuditLine((l) => l.reqId === reqId, `the audit line of ${reqId}`);
  const received = h.standin.requests.filter((r) => r.path === '/api/graphql').map((r) => JSON.parse(r.body.toString('utf8')) as unknown);
  return { status: res.status, received, audit };
}

type Entry = { query: string; operationName?: string | null; variables?: unknown };
const entries = (body: unknown): Entry[] => (Array.isArray(body) ? body : [body]) as Entry[];

/**
 * The security property for one request: either nothing reached GitLab, or GitLab, reading
 * what it received, runs only what the client's policy allows, reads it exactly as the proxy
 * read the client's text, and the client's raw text would not have meant anything else to GitLab.
 */
function checkOutcome(sentBody: unknown, out: Outcome, scoped = false): 'forwarded' | 'refused' {
  if (out.received.length === 0) {
    expect(out.status).toBeGreaterThanOrEqual(400);
    expect(out.status).toBeLessThan(500);
    expect(out.audit.decision).toBe('deny');
    return 'refused';
  }
  expect(out.received).toHaveLength(1);
  expect(out.audit.decision).toBe('allow');
  const batch = Array.isArray(sentBody);
  const got = entries(out.received[0]);
  const sent = entries(sentBody);
  expect(Array.isArray(out.received[0])).toBe(batch);
  expect(got).toHaveLength(sent.length);
  got.forEach((g, i) => {
    const s = sent[i]!;
    const gitlab = gitlabReading(g.query, { batch });
    expect(gitlab, `GitLab can read what it received: ${JSON.stringify(g.query)}`).toBeDefined();
    for (const op of gitlab!.operations) {
      expect(op.type, `GitLab would run only queries: ${JSON.stringify(g.query)}`).toBe('query');
      for (const f of op.rootFields) expect(ALLOWED_ROOTS.has(f), `root field ${f} reaches GitLab`).toBe(true);
      // projects: ["acme/**"]: every project GitLab would look up is in it.
      if (scoped) for (const m of op.text.matchAll(/fullPath:"((?:[^"\\]|\\.)*)"/g)) expect(JSON.parse(`"${m[1]!}"`)).toMatch(/^acme\/[^/]+(\/[^/]+)*$/);
    }
    const proxy = jsReading(s.query);
    expect(gitlab, 'GitLab reads what the proxy checked').toEqual(proxy);
    expect(g.operationName ?? null).toBe(s.operationName ?? null);
    if (s.operationName) expect(executedOperation(gitlab!, s.operationName)).toBeDefined();
    // The client's own text, had GitLab read it (with either generation of its newline
    // escaping), would have meant the same (or nothing).
    for (const rules of ['2.5', '2.6'] as const) {
      const raw = gitlabReading(s.query, { batch, rules });
      if (raw !== undefined) expect(raw, `GitLab (graphql-ruby ${rules}) would read the raw text otherwise: ${JSON.stringify(s.query)}`).toEqual(proxy);
    }
  });
  return 'forwarded';
}

describe('payloads that split the two readings', () => {
  const MUTATION = 'mutation { destroyBoard(input: {}) { errors } }';

  /** Asserts the oracle sees the attack in the raw text: GitLab would run a mutation. */
  const gitlabRunsMutation = (query: string, batch = false): void => {
    const r: Reading | undefined = gitlabReading(query, { batch });
    expect(r?.operations.map((o) => o.type)).toEqual(['mutation']);
    expect(jsReading(query)?.operations.map((o) => o.type)).toEqual(['query']);
  };

  it('a comment ended by a lone "\\r": graphql-js reads on, graphql-ruby comments to the next "\\n"', async () => {
    const query = `#\r{ currentUser { username(x: """\n${MUTATION} #""") } }`;
    gitlabRunsMutation(query);
    const out = await post(JSON.stringify({ query }));
    expect(checkOutcome({ query }, out)).toBe('refused');
    expect(`graphql: ${out.audit.detail}`).toMatch(/^graphql: ambiguous-text: a carriage return without a line feed/);
  });

  it('the same in a batch entry, which GitLab does not preprocess', async () => {
    const query = `#\r{ currentUser { username(x: """\n${MUTATION} #""") } }`;
    gitlabRunsMutation(query, true);
    const body = [{ query }];
    expect(checkOutcome(body, await post(JSON.stringify(body)))).toBe('refused');
  });

  it('a quote in a comment: GitLab escapes the next line break, so its comment runs on', async () => {
    const query = `# "\n{ currentUser { username(x: """ # "\n${MUTATION} #""") } }`;
    gitlabRunsMutation(query);
    const out = await post(JSON.stringify({ query }));
    expect(checkOutcome({ query }, out)).toBe('refused');
    expect(`graphql: ${out.audit.detail}`).toMatch(/^graphql: ambiguous-text: GitLab would rewrite a line break/);
  });

  it('a string ending in an escaped backslash: GitLab believes it still open', async () => {
    const query = '{ currentUser { username(x: "a\\\\")\n name } }';
    expect(gitlabReading(query, { batch: false })).toBeUndefined();
    const out = await post(JSON.stringify({ query }));
    expect(checkOutcome({ query }, out)).toBe('refused');
    expect(`graphql: ${out.audit.detail}`).toMatch(/^graphql: ambiguous-text: GitLab would rewrite a line break/);
  });

  it('block strings: graphql-ruby does not unescape \\""" (and ends some elsewhere)', async () => {
    const query = '{ currentUser { username(x: """a\\"""b""") name } }';
    const [gitlab, proxy] = [gitlabReading(query, { batch: true }), jsReading(query)];
    expect(gitlab).toBeDefined();
    expect(gitlab).not.toEqual(proxy);
    const out = await post(JSON.stringify([{ query }]));
    expect(checkOutcome([{ query }], out)).toBe('refused');
    expect(`graphql: ${out.audit.detail}`).toMatch(/^graphql: ambiguous-text: a block string with a quote/);
  });

  it('a byte-order mark, which graphql-js ignores and graphql-ruby does not', async () => {
    const query = '\uFEFF{ currentUser { username } }';
    expect(gitlabReading(query, { batch: false })).toBeUndefined();
    const out = await post(JSON.stringify({ query }));
    expect(checkOutcome({ query }, out)).toBe('refused');
    expect(`graphql: ${out.audit.detail}`).toBe('graphql: ambiguous-text: a byte-order mark outside a string');
  });
});

describe('what GitLab receives is the proxy\'s print of what it checked', () => {
  it('comments, line breaks and block strings are gone; variables and operationName are the checked values', async () => {
    const query = '# who am I\r\nquery Q($p: ID! = "acme/docs") {\n  currentUser { username(x: """\n    two\n    lines\n  """) } # trailing\n  project(fullPath: $p) { id }\n}';
    const body = { query, operationName: 'Q', variables: '{"p":"acme/docs"}' };
    const out = await post(JSON.stringify(body));
    expect(checkOutcome(body, out)).toBe('forwarded');
    const got = out.received[0] as Entry;
    expect(got.query).not.toMatch(/[#\r\n]|"""/);
    expect(got.query).toContain('"two\\nlines"');
    expect(got.variables, 'variables arrive as the object that was checked').toEqual({ p: 'acme/docs' });
  });

  it('numbers that JavaScript cannot carry exactly are refused, not changed', async () => {
    const body = '{"query":"query($n: Int) { currentUser { username(n: $n) } }","variables":{"n":9007199254740993}}';
    const out = await post(body);
    expect(checkOutcome(JSON.parse(body), out)).toBe('refused');
    expect(out.audit.detail).toMatch(/cannot be forwarded exactly/);
  });
});

// ------------------------------------------------------------------ the property
const MUTATION = 'mutation M { destroyBoard(input: {}) { errors } }';
const COMMENT_TEXT = ['', ' c', ' "', ' """', ' \\', ' "x"', ' }', ` ${MUTATION}`, ' { projects { nodes { id } } }'];
const LINE_ENDS = ['\n', '\r', '\r\n'];
const RAW_PAYLOADS = ['projects { nodes { id } }', `} ${MUTATION} query N {`, '"', '"""'];
const sep$ = fc
  .array(
    fc.oneof(
      { weight: 80, arbitrary: fc.constantFrom(' ', '\n', '\r\n', '\t', ',') },
      { weight: 2, arbitrary: fc.constantFrom('\r', '\uFEFF') },
      { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...COMMENT_TEXT), fc.constantFrom(...LINE_ENDS)).map(([t, e]) => `#${t}${e}`) },
      { weight: 2, arbitrary: fc.constantFrom(...RAW_PAYLOADS) },
    ),
    { minLength: 1, maxLength: 2 },
  )
  .map((p) => p.join(''));
const STRING_PARTS = ['acme/docs', 'acme/docs', 'other/secret', 'x', 'x', ' ', ' ', '\\"', '\\\\', '\\n', '\\u0041', '\\u{41}', '\\uD83D\\uDE00', '#', ' ', '\n', '"', '\\', '\\/'];
const BLOCK_PARTS = ['a', 'a', ' ', ' ', '  b', '\n', '\n', '"', '""', '\\"""', '\\', '\n', '\r\n', '\r', '\t', '#', MUTATION];
const string$ = fc.oneof(
  fc.array(fc.constantFrom(...STRING_PARTS), { maxLength: 4 }).map((p) => `"${p.join('')}"`),
  fc.array(fc.constantFrom(...BLOCK_PARTS), { maxLength: 5 }).map((p) => `"""${p.join('')}"""`),
);
const doc$ = fc
  .record({
    head: fc.constantFrom('', 'query Q', 'query'),
    items: fc.array(fc.tuple(fc.constantFrom(0, 1, 2, 3), string$), { minLength: 1, maxLength: 3 }),
    seps: fc.array(sep$, { minLength: 12, maxLength: 12 }),
    tail: fc.constantFrom('', '', 'fragment F on Query { projects { nodes { id } } }', MUTATION, '# "', '#\r'),
    operationName: fc.constantFrom(undefined, undefined, 'Q', 'M'),
    batch: fc.nat(4).map((n) => n === 0),
    scoped: fc.boolean(),
  })
  .map(({ head, items, seps, tail, operationName, batch, scoped }) => {
    let k = 0;
    const s = (): string => seps[k++ % seps.length]!;
    const item = ([kind, str]: [number, string]): string =>
      [
        `currentUser${s()}{${s()}username${s()}}`,
        `project(fullPath:${s()}${str})${s()}{${s()}id${s()}}`,
        `currentUser${s()}{${s()}username(x:${s()}${str})${s()}}`,
        '__typename',
      ][kind]!;
    const query = `${head}${s()}{${s()}${items.map(item).join(s())}${s()}}${s()}${tail}`;
    const entry = { query, ...(operationName ? { operationName } : {}) };
    return { body: batch ? [entry] : entry, scoped };
  });

it(`never lets GitLab run or read other than what the proxy checked (${RUNS} generated documents)`, async () => {
  let forwardedCount = 0;
  let refusedCount = 0;
  const reasons = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(doc$, async ({ body, scoped }) => {
      h.standin.reset();
      const out = await post(JSON.stringify(body), scoped);
      const result = checkOutcome(body, out, scoped);
      if (result === 'forwarded') forwardedCount++;
      else {
        refusedCount++;
        const reason = String(out.audit.detail ?? out.audit.reason).slice(0, 40);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }),
    { numRuns: RUNS, ...fuzzSeed() },
  );
  console.info(`graphql fuzz: ${forwardedCount} forwarded, ${refusedCount} refused: ${JSON.stringify(Object.fromEntries(reasons))}`);
  // A run that forwards nothing or refuses nothing proves nothing.
  expect(forwardedCount).toBeGreaterThan(RUNS / 10);
  expect(refusedCount).toBeGreaterThan(RUNS / 10);
}, Math.max(60_000, RUNS * 50));
