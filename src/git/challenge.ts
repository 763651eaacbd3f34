// The challenge a 401 on a git route carries. git (libcurl with CURLAUTH_ANY, http.c) sends
// the credentials of `http://user:<jwt>@host/...` only after a 401 names an auth scheme, as
// GitLab's own answer does (Repositories::GitHttpClientController: "Basic realm=\"GitLab\"").
import type { IncomingMessage } from 'node:http';
import { gitHeaderRules } from '../request/git-route.ts';

export function gitChallenge(incoming: IncomingMessage, root: string): string | undefined {
  const path = (incoming.url ?? '').split('?', 1)[0]!;
  return gitHeaderRules(incoming.method ?? '', path, root) ? 'Basic realm="GitLab"' : undefined;
}
