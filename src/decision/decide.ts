// The one decision. Every command asks it: `serve` for each request, `explain`, `check`'s
// policy tests, report mode, `learn --diff`, and the check of a redirect GitLab answers with.
// It takes the canonical request and the authenticated client, and returns the whole verdict:
// allow, deny or would-deny, the reason from the closed list, the deciding rule, and exactly
// what to forward. No HTTP framework here: the body is read through `readBody` and projects
// and groups are looked up through `resolver`, both injected.
import { ProxyError, refusal } from '../errors.ts';
import { authorizeGit } from '../git/authorize.ts';
import { checkGraphqlBody, checkGraphqlRequestLine } from '../graphql/check.ts';
import { checkBody } from '../request/body.ts';
import type { CanonicalRequest } from '../request/canonicalize.ts';
import { enforce, needsEnforcement } from '../scope/enforce.ts';
import type { ScopeResolver } from '../scope/scope.ts';
import { getCatalogue } from '../catalogue/catalogue.ts';
import { describeRoute } from '../catalogue/floor.ts';
import type { Client, Decision, ForwardPlan, Match, Method, Reason, Refusal, RouteRef, Rule } from '../types.ts';
import { decidePath } from './path.ts';
import { reportMayForward, wouldDeny } from './report.ts';

export interface DecisionInput {
  request: CanonicalRequest;
  client: Client;
  /** Reads the request body (bounded; it may refuse) once the request line has passed. */
  readBody: () => Promise<Buffer>;
  /** Resolves projects and groups for `projects:` / `groups:` scope; without one, a scoped
   *  client is refused whatever it names (scope-unresolved). */
  resolver: ScopeResolver | undefined;
}

const EMPTY = Buffer.alloc(0);

/** The decision; a promise only when it needs the body, a scope lookup or a git check (a
 *  request line without a body is decided at once: no promise per request on the hot path). */
export function decide(input: DecisionInput): Decision | Promise<Decision> {
  const trace: Trace = { route: null, rule: undefined, ruleLabel: null, bytesIn: 0 };
  try {
    const decided = decideOrThrow(input, trace);
    return decided instanceof Promise ? decided.catch((err: unknown) => refusedBy(err, trace)) : decided;
  } catch (err) {
    return refusedBy(err, trace);
  }
}

/** A step refused: the refusal is the decision. Anything else is a bug (500). */
function refusedBy(err: unknown, trace: Trace): Decision {
  if (!(err instanceof ProxyError)) throw err;
  return denied(err.refusal, trace);
}

/** Report mode: what enforce mode would have refused the request for. */
interface Reported {
  reason: Reason;
  detail: string | undefined;
}

/** What a refusal thrown mid-way still records: the route, the rule found so far and the
 *  bytes read. */
interface Trace {
  route: RouteRef | null;
  rule: Rule | undefined;
  ruleLabel: string | null;
  bytesIn: number;
}

function decideOrThrow(input: DecisionInput, trace: Trace): Decision | Promise<Decision> {
  const { request: req, client } = input;
  // Grape answers OPTIONS for every route itself (Grape README, "Allowed Methods"); the
  // proxy does the same instead of forwarding, without revealing the client's policy.
  if (req.method === 'OPTIONS') return { ...outcome(trace), verdict: 'local', reason: 'options' };
  if (req.git) return decideGit(input, trace, req.git);

  const method = req.method as Method;
  if (req.surface === 'api') trace.route = routeRef(method, req.segments, req.formatAlias);
  const path = decidePath(client, { method, segments: req.segments, formatAlias: req.formatAlias, readings: req.readings, surface: req.surface });
  const graphql = req.surface === 'graphql';
  let reported: Reported | undefined;
  if (path.allow) {
    trace.rule = path.match?.rule;
    trace.ruleLabel = path.label;
  } else if (wouldDeny(client, { method, segments: req.segments, formatAlias: req.formatAlias, readings: req.readings, surface: req.surface }, path)) {
    // Report mode: forwarded and audited as would-deny if every other check passes and it
    // cannot destroy or grant (checked last, so a request refused anyway says why).
    reported = { reason: path.reason, detail: path.detail };
  } else {
    // GraphQL's own refusals answer in GraphQL's error format (src/graphql/errors.ts).
    const format = graphql && path.reason.startsWith('graphql-') ? 'graphql' : 'rest';
    return denied(refusal(path.reason, { detail: path.detail, format, ...(format === 'graphql' ? { message: `graphql: ${path.detail}` } : {}) }), trace);
  }

  if (graphql) checkGraphqlRequestLine(req.hasQuery, req.body);
  const match = path.allow ? path.match : undefined;
  const scoped = !graphql && needsEnforcement(client, match, method, req.readings);
  if (req.body || graphql || scoped) return decideContent(input, trace, match, scoped, reported);
  return allowed(input, trace, reported, { forwardBody: EMPTY, note: undefined, listFilter: undefined });
}

/** What the request line allowed, checked against the body, GraphQL document and scope. */
interface Content {
  forwardBody: Buffer;
  note: string | undefined;
  listFilter: ForwardPlan['listFilter'];
}

/** `scoped`: needsEnforcement() said the client's constraints or scope must be checked. */
async function decideContent(input: DecisionInput, trace: Trace, match: Match | undefined, scoped: boolean, reported: Reported | undefined): Promise<Decision> {
  const { request: req, client } = input;
  const method = req.method as Method;
  const graphql = req.surface === 'graphql';
  const body = req.body ? await input.readBody() : EMPTY;
  trace.bytesIn = body.length;

  let forwardBody = body;
  let note: string | undefined;
  let listFilter: ForwardPlan['listFilter'];
  if (graphql) {
    const checked = await checkGraphqlBody(client, body, input.resolver);
    forwardBody = checked.forwardBody;
    trace.ruleLabel = `${trace.ruleLabel ?? 'graphql'}: ${checked.summary}`;
  } else {
    checkBody(body, req.contentType, req);
    // Object rules' constraints and project/group scope (src/scope/enforce.ts).
    if (scoped) {
      const verdict = await enforce(client, match, {
        method, readings: req.readings, query: req.query, body, contentType: req.contentType, mediaType: req.body?.mediaType,
      }, input.resolver);
      if (verdict.rule) {
        trace.rule = verdict.rule;
        trace.ruleLabel = `${verdict.rule.text} (${verdict.rule.source})`;
      }
      if (!verdict.allow) throw new ProxyError('forbidden', verdict.reason, { detail: verdict.detail });
      note = verdict.note;
      listFilter = verdict.listFilter;
    }
  }
  return allowed(input, trace, reported, { forwardBody, note, listFilter });
}

/** The request passed every check (or would have been refused, in report mode): its plan. */
function allowed(input: DecisionInput, trace: Trace, reported: Reported | undefined, { forwardBody, note, listFilter }: Content): Decision {
  const req = input.request;
  const method = req.method as Method;
  if (reported && !reportMayForward(method, req.segments, req.formatAlias, req.readings)) {
    const what = trace.route ? `${trace.route.name} is ${trace.route.class}` : 'GitLab has no such route';
    throw new ProxyError('forbidden', 'report-mode-write', { detail: `enforce mode: ${reported.reason} (${reported.detail ?? ''}); ${what}: report mode forwards reads and plain writes only` });
  }
  // outcome()'s fields, in its order, written out: one object per request instead of two.
  return {
    verdict: reported ? 'would-deny' : 'allow',
    route: trace.route,
    reason: reported ? reported.reason : note ? 'scope-checked' : null,
    detail: reported ? reported.detail : note,
    rule: trace.rule,
    ruleLabel: reported ? null : trace.ruleLabel,
    refusal: undefined,
    forward: {
      target: req.path + (req.forwardQuery ? `?${req.forwardQuery}` : ''),
      // A filtered list answer must come uncompressed: Accept-Encoding is not sent.
      headers: listFilter ? withoutAcceptEncoding(req.forwardHeaders) : req.forwardHeaders,
      body: forwardBody,
      listFilter,
      basicAuth: false,
    },
    bytesIn: trace.bytesIn,
  };
}

/** Git over HTTP: scopes and projects, not rules (src/git/authorize.ts). The pack
 *  negotiation is forwarded as received: Rails never reads parameters from it. */
async function decideGit(input: DecisionInput, trace: Trace, git: NonNullable<CanonicalRequest['git']>): Promise<Decision> {
  const decision = await authorizeGit(input.client, git, input.resolver);
  if (!decision.allow) return denied(refusal(decision.reason, { detail: decision.detail }), trace);
  trace.ruleLabel = decision.label;
  const req = input.request;
  const body = req.body ? await input.readBody() : EMPTY;
  trace.bytesIn = body.length;
  return {
    ...outcome(trace),
    verdict: 'allow',
    forward: { target: req.path + (req.forwardQuery ? `?${req.forwardQuery}` : ''), headers: req.forwardHeaders, body, listFilter: undefined, basicAuth: true },
  };
}

function outcome(trace: Trace): Decision {
  return {
    verdict: 'allow', route: trace.route, reason: null, detail: undefined, rule: trace.rule, ruleLabel: trace.ruleLabel,
    refusal: undefined, forward: undefined, bytesIn: trace.bytesIn,
  };
}

/** A refusal made before any rule was looked at (canonicalization, for a described request). */
export const refused = (r: Refusal): Decision => denied(r, { route: null, rule: undefined, ruleLabel: null, bytesIn: 0 });

function denied(r: Refusal, trace: Trace): Decision {
  // A refusal by the policy keeps the rule it concerned (a failed constraint, a scope);
  // every other refusal names none.
  const keepRule = r.code === 'forbidden' && trace.rule !== undefined;
  return {
    ...outcome(trace), verdict: 'deny', reason: r.reason, detail: r.detail ?? r.message, refusal: r,
    rule: keepRule ? trace.rule : undefined, ruleLabel: keepRule ? trace.ruleLabel : null,
  };
}

/** The GitLab route reached: the path as written, else its .json-less reading. */
function routeRef(method: Method, segments: readonly string[], formatAlias: readonly string[] | undefined): RouteRef | null {
  const catalogue = getCatalogue();
  const route = catalogue.routeOf(method, segments) ?? (formatAlias ? catalogue.routeOf(method, formatAlias) : undefined);
  if (!route) return null;
  let ref = ROUTE_REFS.get(route);
  if (!ref) ROUTE_REFS.set(route, (ref = { name: describeRoute(route), class: route.class, why: route.reason }));
  return ref;
}

/** One RouteRef per catalogue route, built once: the audit line names it on every request. */
const ROUTE_REFS = new WeakMap<object, RouteRef>();

function withoutAcceptEncoding(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) if (name.toLowerCase() !== 'accept-encoding') out[name] = headers[name]!;
  return out;
}
