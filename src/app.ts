// The request path, top to bottom:
//   canonicalize -> authenticate -> admit -> decide -> forward (or answer the refusal)
// Each step is one call; what each found goes on the request's context, from which the
// server edge (server.ts) writes the audit line when the response ends. Hono only routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { identifyForAudit } from './auth/identify.ts';
import type { Identity, TokenVerifier } from './auth/verify.ts';
import { keepRefusedIdentity } from './auth/refused-identity.ts';
import { sourceAllowed } from './auth/source-ips.ts';
import { getCatalogue } from './catalogue/catalogue.ts';
import { contextOf, type RequestContext } from './context.ts';
import { decide } from './decision/decide.ts';
import { answer, ProxyError, refusal, type Refusal } from './errors.ts';
import type { Forwarder } from './forward/forward.ts';
import { gitChallenge } from './git/challenge.ts';
import { readBody } from './request/body.ts';
import type { BodyBudget } from './request/body-budget.ts';
import { canonicalize, type CanonicalRequest } from './request/canonicalize.ts';
import type { ScopeResolver } from './scope/scope.ts';
import type { Client, Decision, Policy } from './types.ts';

export interface AppDeps {
  policy: () => Policy;
  verifier: TokenVerifier;
  forwarder: Forwarder;
  /** The proxy's own path prefix (from PUBLIC_URL), "" by default. */
  publicRoot: string;
  /** PUBLIC_URL's origin + root, or undefined to use the origin the client used. */
  publicBase: string | undefined;
  maxBodyBytes: number;
  /** MAX_BUFFERED_BODY_BYTES: request body bytes all requests may hold at once. */
  bodyBudget?: BodyBudget;
  ready: () => Promise<boolean>;
  onInternalError: (err: unknown, ctx: RequestContext) => void;
  /** Per-client limits (src/limits/): throws a 429 refusal. A promise only when the limits
   *  are shared through Redis and the client has one. */
  admit?: (client: Client, ctx: RequestContext) => void | Promise<void>;
  /** Resolves projects and groups for `projects:` / `groups:` scope (src/scope/scope.ts). */
  scope?: ScopeResolver;
  /** The OAuth provider's endpoints (src/oauth/routes.ts), when OAuth is configured. */
  oauth?: Hono<Env>;
}

type Env = { Bindings: HttpBindings };
const ALLOW_HEADER = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();
  getCatalogue(); // GitLab's route table, built once now rather than on the first request
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => ((await deps.ready()) ? c.json({ status: 'ready' }) : c.json({ status: 'not ready' }, 503)));
  if (deps.oauth) app.route(deps.publicRoot || '/', deps.oauth);
  app.all('*', (c) => handle(c.env.incoming, c.env.outgoing, deps));
  return app;
}

async function handle(incoming: IncomingMessage, outgoing: ServerResponse, deps: AppDeps): Promise<Response> {
  const ctx = contextOf(incoming);
  try {
    const request = canonicalize(incoming.method ?? '', incoming.url ?? '', incoming.rawHeaders, deps.publicRoot);
    ctx.queryKeys = request.query.map((p) => p.key);
    ctx.userAgent = request.forwardHeaders['user-agent'] ?? null;
    // Answered for anyone, before authentication, as GitLab does (decide() says the same).
    if (request.method === 'OPTIONS') return answerOptions(ctx);

    // authenticate() and decide() answer at once when they can (a cached token, a request
    // without a body): a promise is awaited only when one was needed.
    const authenticating = authenticate(request, ctx, deps);
    const client = authenticating instanceof Promise ? await authenticating : authenticating;
    const admitting = deps.admit?.(client, ctx);
    if (admitting) await admitting;
    const deciding = decide({
      request,
      client,
      readBody: () => readBody(incoming, deps.maxBodyBytes, request.body?.length, deps.bodyBudget && { budget: deps.bodyBudget, res: outgoing }),
      resolver: deps.scope,
    });
    const decision = deciding instanceof Promise ? await deciding : deciding;
    record(ctx, decision);
    if (decision.refusal) return refuse(incoming, ctx, decision.refusal, deps);

    const publicBase = deps.publicBase ?? `http://${request.host ?? 'localhost'}`;
    await deps.forwarder.forward(incoming, outgoing, {
      ...decision.forward!,
      ctx,
      publicBase,
      // GitLab serves a renamed project's old path itself: no redirect is followed on git routes.
      allowsLocation: request.git ? async () => false : (location) => allowsLocation(client, location, deps),
      token: client.upstreamToken?.(),
    });
    return RESPONSE_ALREADY_SENT;
  } catch (err) {
    if (err instanceof ProxyError) {
      // A request refused before the decision (canonicalization, authentication, limits) is
      // still attributed to its client when it carries a valid token: who tried matters.
      if (ctx.client === null && err.code !== 'unauthorized') await identifyForAudit(incoming.rawHeaders, ctx, deps.verifier, deps.policy());
      return refuse(incoming, ctx, err.refusal, deps);
    }
    deps.onInternalError(err, ctx);
    return refuse(incoming, ctx, refusal('internal-error'), deps);
  }
}

function authenticate(req: CanonicalRequest, ctx: RequestContext, deps: AppDeps): Client | Promise<Client> {
  if (!req.credential) throw new ProxyError('unauthorized', 'no-token');
  const policy = deps.policy();
  let verified;
  try {
    verified = deps.verifier.verify(req.credential.token, policy);
  } catch (err) {
    keepRefusedIdentity(err, ctx, policy);
    throw err;
  }
  if (!(verified instanceof Promise)) return admitIdentity(verified, ctx);
  return verified.then((identity) => admitIdentity(identity, ctx), (err: unknown) => {
    keepRefusedIdentity(err, ctx, policy);
    throw err;
  });
}

function admitIdentity(identity: Identity, ctx: RequestContext): Client {
  ctx.client = identity.client.name;
  ctx.jti = identity.jti ?? null;
  if (!sourceAllowed(identity.client, ctx.ip)) throw new ProxyError('unauthorized', 'source-ip-not-allowed');
  return identity.client;
}

/** What the audit line says of the decision. */
function record(ctx: RequestContext, decision: Decision): void {
  ctx.decision = decision.verdict;
  ctx.reason = decision.reason;
  ctx.detail = decision.detail ?? null;
  ctx.rule = decision.ruleLabel;
  ctx.route = decision.route?.name ?? null;
  ctx.bytesIn = decision.bytesIn;
}

/** May this client follow a redirect to `location` (a path relative to the proxy's base)?
 *  Decided as a GET of that path would be. */
async function allowsLocation(client: Client, location: string, deps: AppDeps): Promise<boolean> {
  let request: CanonicalRequest;
  try {
    request = canonicalize('GET', location, [], '');
  } catch {
    return false;
  }
  const decision = await decide({ request, client, readBody: async () => Buffer.alloc(0), resolver: deps.scope });
  return decision.verdict === 'allow' || decision.verdict === 'would-deny';
}

function answerOptions(ctx: RequestContext): Response {
  ctx.decision = 'local';
  ctx.reason = 'options';
  return new Response(null, { status: 204, headers: { allow: ALLOW_HEADER, 'x-request-id': ctx.reqId } });
}

function refuse(incoming: IncomingMessage, ctx: RequestContext, r: Refusal, deps: AppDeps): Response {
  ctx.decision = 'deny';
  ctx.reason = r.reason;
  ctx.detail = r.detail ?? r.message ?? null;
  const { status, headers, body } = answer(r, {
    reqId: ctx.reqId,
    challenge: gitChallenge(incoming, deps.publicRoot),
    // A body we did not read whole must not be parsed as the start of the next request.
    bodyUnread: !incoming.complete,
  });
  ctx.bytesOut = Buffer.byteLength(body);
  return new Response(body, { status, headers });
}
