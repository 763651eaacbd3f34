// The pipeline tail of a git route (src/git/route.ts), after canonicalize and authenticate:
// authorize by scope and project (src/git/authorize.ts), read the pack negotiation (bounded
// by MAX_BODY_BYTES, forwarded as received, gzip included), and forward it with the real
// token as a Basic credential. GitLab's answer, the pack, is streamed, never buffered.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from '../app.ts';
import type { RequestContext } from '../context.ts';
import { ProxyError } from '../errors.ts';
import type { Client } from '../types.ts';
import { readBody } from '../request/body.ts';
import type { CanonicalRequest } from '../request/canonicalize.ts';
import { authorizeGit } from './authorize.ts';
import { gitHeaderRules, type GitRoute } from '../request/git-route.ts';

const EMPTY = Buffer.alloc(0);

export async function serveGit(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  req: CanonicalRequest,
  git: GitRoute,
  client: Client,
  ctx: RequestContext,
  deps: Pick<AppDeps, 'scope' | 'maxBodyBytes' | 'forwarder' | 'publicBase'>,
): Promise<void> {
  const decision = await authorizeGit(client, git, deps.scope);
  if (!decision.allow) throw new ProxyError('forbidden', decision.reason);
  ctx.rule = decision.reason;

  // Not parsed: GitLab hands this body to Gitaly through Workhorse and Rails never reads
  // parameters from it (see src/git/route.ts). Its type was checked by gitRoute.
  const body = req.body ? await readBody(incoming, deps.maxBodyBytes, req.body.length) : EMPTY;
  ctx.bytesIn = body.length;

  ctx.decision = 'allow';
  ctx.reason = null;
  await deps.forwarder.forward(incoming, outgoing, {
    ctx,
    target: req.path + (req.forwardQuery ? `?${req.forwardQuery}` : ''),
    headers: { ...req.forwardHeaders },
    body,
    publicBase: deps.publicBase ?? `http://${req.host ?? 'localhost'}`,
    // GitLab serves a renamed project's old path itself; no redirect is followed or shown.
    allowsLocation: () => false,
    token: client.upstreamToken?.(),
    basicAuth: true,
  });
}

/**
 * The challenge a 401 on a git route carries. git (libcurl with CURLAUTH_ANY, http.c) sends
 * the credentials of `http://user:<jwt>@host/...` only after a 401 names an auth scheme, as
 * GitLab's own answer does (Repositories::GitHttpClientController: "Basic realm=\"GitLab\"").
 */
export function gitChallenge(incoming: IncomingMessage, root: string): string | undefined {
  const path = (incoming.url ?? '').split('?', 1)[0]!;
  return gitHeaderRules(incoming.method ?? '', path, root) ? 'Basic realm="GitLab"' : undefined;
}
