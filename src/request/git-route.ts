// Git over HTTP (the "smart" protocol): which requests under a repository path the proxy
// recognises at all. Everything else under a repository path (dumb HTTP, LFS, `info/refs`
// without ".git", wikis, snippets) stays outside the API and is refused like any other path.
//
// GitLab's routes (config/routes/git_http.rb; Workhorse internal/upstream/routes.go):
//   GET  <full path>.git/info/refs?service=git-upload-pack|git-receive-pack
//   POST <full path>.git/git-upload-pack    Content-Type application/x-git-upload-pack-request
//   POST <full path>.git/git-receive-pack   Content-Type application/x-git-receive-pack-request
// Workhorse matches them with `gitProjectPattern + "info/refs\z"` etc. and a Content-Type
// matcher, and unpacks a gzip request body itself (contentEncodingHandler) before handing it
// to Gitaly; Rails only sees a body-less pre-authorization request (internal/api/api.go
// newRequest, "a new request without body"),
// so the pack negotiation never goes through Rack's parameter parsing.
import { malformed, ProxyError } from '../errors.ts';
import type { Param } from './query.ts';

export type GitService = 'git-upload-pack' | 'git-receive-pack';

export interface GitRoute {
  /** `info/refs` (the ref advertisement) or the service's POST (the pack exchange). */
  kind: 'advertise' | 'rpc';
  service: GitService;
  /** The project's full path as written in the request, without ".git": "acme/docs". */
  project: string;
}

/** The header rules a git route needs before the path is fully read (see gitShape). */
export interface GitHeaderRules {
  /** Extra request headers forwarded as sent: `Git-Protocol`, and for the POSTs the
   *  `Content-Encoding` of a gzip-compressed negotiation. */
  forward: readonly string[];
  /** Whether `Content-Encoding: gzip` is accepted (git compresses request bodies between
   *  1 KiB and http.postBuffer, remote-curl.c post_rpc; Workhorse unpacks them). */
  gzip: boolean;
}

/** A repository path ending in one of the three smart-HTTP routes (".git" exactly as
 *  GitLab's route regexp writes it, case-sensitive). */
const SHAPE = /^\/(.+)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;
/** One GitLab path segment (lib/gitlab/path_regex.rb; the same set as src/scope/scope.ts).
 *  Nothing percent-encoded: git writes repository paths plainly. */
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const GIT_PROTOCOL = /^version=[0-2]$/;

/**
 * Whether `rawPath` (the request target's path, the proxy's root included) has the shape of a git
 * route under the proxy's `root`, outside `/api/`. Only decides which header rules apply;
 * the route itself is checked by `gitRoute`, and a request that fails that is refused.
 */
export function gitHeaderRules(method: string, rawPath: string, root: string): GitHeaderRules | undefined {
  if (root !== '' && !rawPath.startsWith(root + '/')) return undefined;
  const rel = rawPath.slice(root.length);
  const m = SHAPE.exec(rel);
  if (!m || rel.startsWith('/api/')) return undefined;
  const post = method === 'POST' && m[2] !== 'info/refs';
  return { forward: post ? ['git-protocol', 'content-encoding'] : ['git-protocol'], gzip: post };
}

/**
 * The git route `segments` name, or undefined when they do not have a git route's shape.
 * Throws the refusal when they do but the request is not one GitLab's git routes serve the
 * way the proxy checks them. Runs after the general path and query rules.
 */
export function gitRoute(
  method: string,
  segments: readonly string[],
  query: readonly Param[],
  mediaType: string | undefined,
  gitProtocol: string | undefined,
): GitRoute | undefined {
  const m = SHAPE.exec('/' + segments.join('/'));
  if (!m || segments[0] === 'api') return undefined;
  const tail = m[2] === 'info/refs' ? 2 : 1;
  const names = segments.slice(0, segments.length - tail);
  const repo = names.pop()!.slice(0, -'.git'.length);
  // GitLab's paths never end in ".git" (lib/gitlab/path_regex.rb), so only one segment may.
  if (names.length === 0 || ![...names, repo].every((s) => PATH_SEGMENT.test(s)) || names.some((s) => /\.git$/i.test(s))) {
    throw malformed('git-path', 'a repository path is <namespace>/<project>.git, written plainly');
  }
  // Wikis (<project>.wiki.git), designs (<project>.design.git) and snippets
  // (snippets/<id>.git) are repositories of their own in GitLab (lib/gitlab/repo_type.rb,
  // lib/gitlab/path_regex.rb repository_git_route_regex): not served.
  if (/\.(?:wiki|design|git)$/i.test(repo) || names[0]!.toLowerCase() === 'snippets') {
    throw new ProxyError('forbidden', 'git-repository-type', { message: 'only project repositories are served' });
  }
  if (gitProtocol !== undefined && !GIT_PROTOCOL.test(gitProtocol)) throw malformed('git-protocol', 'Git-Protocol must be version=0, 1 or 2');
  const project = [...names, repo].join('/');

  if (m[2] === 'info/refs') {
    if (method !== 'GET') throw new ProxyError('method-not-allowed', 'method', { message: 'info/refs is GET only' });
    // The smart protocol only: one `service`, spelled exactly. A dumb-HTTP info/refs (no
    // service) would be answered by GitLab too, with a different body.
    const service = query.length === 1 && query[0]!.raw.startsWith('service=') ? query[0]!.raw.slice('service='.length) : undefined;
    if (service !== 'git-upload-pack' && service !== 'git-receive-pack') {
      throw new ProxyError('forbidden', 'git-service', { message: 'info/refs takes exactly ?service=git-upload-pack' });
    }
    return { kind: 'advertise', service, project };
  }
  const service = m[2] as GitService;
  if (method !== 'POST') throw new ProxyError('method-not-allowed', 'method', { message: `${service} is POST only` });
  if (query.length > 0) throw new ProxyError('forbidden', 'git-service', { message: `${service} takes no query` });
  // Workhorse routes the POST to Gitaly only with this exact type (isContentType matcher);
  // any other type falls through to Rails.
  if (mediaType !== `application/x-${service}-request`) {
    throw new ProxyError('unsupported-media', 'content-type', { message: `body must be application/x-${service}-request`, closeConnection: true });
  }
  return { kind: 'rpc', service, project };
}
