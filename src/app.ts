// The request pipeline, top to bottom:
//   canonicalize -> authenticate -> authorize -> read and check the body -> forward
// The audit line is written by the server edge (server.ts) when the response ends.
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import type { TokenVerifier } from './auth/verify.ts';
import { keepRefusedIdentity } from './auth/refused-identity.ts';
import { sourceAllowed } from './auth/source-ips.ts';
import { contextOf, type RequestContext } from './context.ts';
import { errorResponse, ProxyError } from './errors.ts';
import type { Forwarder } from './forward/forward.ts';
import { LimitError } from './limits/client-limits.ts';
import { authorize } from './policy/evaluate.ts';
import type { Client, Policy } from './policy/load.ts';
import { wouldDeny } from './policy/report.ts';
import { checkBody, readBody } from './request/body.ts';
import { checkGraphqlBody, checkGraphqlRequestLine } from './graphql/check.ts';
import { GraphqlRefusal } from './graphql/errors.ts';
import { canonicalize, type CanonicalRequest } from './request/canonicalize.ts';
import { gitChallenge, serveGit } from './git/serve.ts';
import type { ScopeResolver } from './scope/scope.ts';
import { enforceStep, listHeaders } from './scope/step.ts';

export interface AppDeps {
  policy: () => Policy;
  verifier: TokenVerifier;
  forwarder: Forwarder;
  /** The proxy's own path prefix (from PUBLIC_URL), "" by default. */
  publicRoot: string;
  /** PUBLIC_URL's origin + root, or undefined to use the origin the client used. */
  publicBase: string | undefined;
  maxBodyBytes: number;
  ready: () => Promise<boolean>;
  onInternalError: (err: unknown, ctx: RequestContext) => void;
  /** Per-client limits (src/limits/client-limits.ts): throws a LimitError (429) to refuse. */
  admit?: (client: Client, ctx: RequestContext) => void;
  /** Resolves projects and groups for `projects:` / `groups:` scope (src/scope/scope.ts).
   *  Without it, a client with a scope list is refused whatever it names (scope-unresolved). */
  scope?: ScopeResolver;
}

type Env = { Bindings: HttpBindings };
const EMPTY = Buffer.alloc(0);
const ALLOW_HEADER = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => ((await deps.ready()) ? c.json({ status: 'ready' }) : c.json({ status: 'not ready' }, 503)));

  app.all('*', async (c) => {
    const { incoming, outgoing } = c.env;
    const ctx = contextOf(incoming);
    try {
      const req = canonicalize(incoming.method ?? '', incoming.url ?? '', incoming.rawHeaders, deps.publicRoot);
      ctx.queryKeys = req.query.map((p) => p.key);
      if (req.method === 'OPTIONS') return answerOptions(c, ctx);

      const client = await authenticate(req, ctx, deps);
      deps.admit?.(client, ctx);
      // Git over HTTP: scopes and projects, not rules (src/git/).
      if (req.git) {
        await serveGit(incoming, outgoing, req, req.git, client, ctx, deps);
        return RESPONSE_ALREADY_SENT;
      }
      const input = { method: req.method, segments: req.segments, formatAlias: req.formatAlias, surface: req.surface };
      const decision = authorize(client, input);
      // Report mode: a request that only lacks a rule goes through, audited as "would-deny".
      const reportOnly = wouldDeny(client, input, decision);
      // GraphQL denials answer in GraphQL's error format (src/graphql/errors.ts).
      if (!decision.allow && req.surface === 'graphql' && decision.reason.startsWith('graphql:')) throw new GraphqlRefusal('forbidden', decision.reason);
      if (!decision.allow && !reportOnly) throw new ProxyError('forbidden', decision.reason);
      if (req.surface === 'graphql') checkGraphqlRequestLine(incoming.url ?? '', req.body);
      ctx.rule = !decision.allow ? null : decision.rule ? `${decision.rule.text} (${decision.rule.source})` : decision.reason;

      const body = req.body ? await readBody(incoming, deps.maxBodyBytes, req.body.length) : EMPTY;
      ctx.bytesIn = body.length;
      if (req.surface === 'graphql') ctx.rule = `${ctx.rule ?? 'graphql'}: ${await checkGraphqlBody(client, body, deps.scope)}`;
      else checkBody(body, incoming.headers['content-type'], req);
      // Object rules' constraints and project/group scope (src/scope/enforce.ts).
      const scoped = req.surface === 'api' ? await enforceStep(client, decision, req, body, incoming.headers['content-type'], ctx, deps.scope) : undefined;

      ctx.decision = reportOnly ? 'would-deny' : 'allow';
      ctx.reason = reportOnly ? decision.reason : (scoped?.note ?? null);
      await deps.forwarder.forward(incoming, outgoing, {
        ctx,
        target: req.path + (req.forwardQuery ? `?${req.forwardQuery}` : ''),
        headers: scoped?.listFilter ? listHeaders(req.forwardHeaders) : { ...req.forwardHeaders },
        body,
        listFilter: scoped?.listFilter,
        publicBase: deps.publicBase ?? `http://${req.host ?? 'localhost'}`,
        allowsLocation: (location) => allowsLocation(client, location),
        token: client.upstreamToken?.(),
      });
      return RESPONSE_ALREADY_SENT;
    } catch (err) {
      if (ctx.client === null && !(err instanceof ProxyError && err.code === 'unauthorized')) await identifyForAudit(incoming.rawHeaders, ctx, deps);
      return refuse(c, ctx, err, deps);
    }
  });

  return app;
}

async function authenticate(req: CanonicalRequest, ctx: RequestContext, deps: AppDeps): Promise<Client> {
  if (!req.credential) throw new ProxyError('unauthorized', 'no-token');
  const identity = await deps.verifier.verify(req.credential.token, deps.policy()).catch((err: unknown) => {
    keepRefusedIdentity(err, ctx, deps.policy());
    throw err;
  });
  ctx.client = identity.client.name;
  ctx.jti = identity.jti ?? null;
  if (!sourceAllowed(identity.client, ctx.ip)) throw new ProxyError('unauthorized', 'source-ip-not-allowed');
  return identity.client;
}

/**
 * A request refused before authentication (sudo, a bad path) is still attributed to its
 * client in the audit log when it carries a valid token in a header: the security team wants
 * to know who tried. Best effort; it never changes the answer.
 */
async function identifyForAudit(rawHeaders: readonly string[], ctx: RequestContext, deps: AppDeps): Promise<void> {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!.trim();
    const token = name === 'private-token' ? value
      : name === 'authorization' && /^bearer /i.test(value) ? value.slice(7).trim()
        : name === 'authorization' && /^basic /i.test(value) ? basicPassword(value.slice(6).trim())
          : undefined;
    if (token === undefined) continue;
    try {
      const identity = await deps.verifier.verify(token, deps.policy());
      ctx.client = identity.client.name;
      ctx.jti = identity.jti ?? null;
    } catch {
      // Not a valid token: the line stays anonymous.
    }
    return;
  }
}

function basicPassword(b64: string): string | undefined {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

function answerOptions(c: Context<Env>, ctx: RequestContext): Response {
  // Grape answers OPTIONS for every route itself (Grape README, "Allowed Methods"); the
  // proxy does the same instead of forwarding, without revealing the client's policy.
  ctx.decision = 'local';
  ctx.reason = 'options';
  c.header('Allow', ALLOW_HEADER);
  return c.body(null, 204);
}

/** May this client follow a redirect to `location` (a path relative to the proxy's base)? */
function allowsLocation(client: Client, location: string): boolean {
  const q = location.indexOf('?');
  const path = q === -1 ? location : location.slice(0, q);
  try {
    const req = canonicalize('GET', path, [], '');
    const input = { method: 'GET' as const, segments: req.segments, formatAlias: req.formatAlias, surface: req.surface };
    const decision = authorize(client, input);
    return decision.allow || wouldDeny(client, input, decision);
  } catch {
    return false;
  }
}

function refuse(c: Context<Env>, ctx: RequestContext, err: unknown, deps: AppDeps): Response {
  const incoming = c.env.incoming;
  let refusal: ProxyError;
  if (err instanceof ProxyError) {
    refusal = err;
  } else {
    deps.onInternalError(err, ctx);
    refusal = new ProxyError('internal', 'internal-error');
  }
  ctx.decision = 'deny';
  ctx.reason = refusal.reason;
  const { status, body } = refusal instanceof GraphqlRefusal ? refusal.response() : errorResponse(refusal);
  ctx.bytesOut = Buffer.byteLength(body);
  // A body we did not read whole, or whose framing we distrust, must not be parsed as the
  // start of the next request on this connection.
  if (refusal.closeConnection || !incoming.complete) c.header('Connection', 'close');
  c.header('X-Request-Id', ctx.reqId);
  const challenge = refusal.code === 'unauthorized' ? gitChallenge(incoming, deps.publicRoot) : undefined;
  if (challenge) c.header('WWW-Authenticate', challenge);
  if (refusal instanceof LimitError) c.header('Retry-After', String(refusal.retryAfterSeconds));
  return c.body(body, status as 400, { 'Content-Type': 'application/json' });
}
