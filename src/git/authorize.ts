// Authorization of a git route (src/git/route.ts). Rules (`allow:`) do not apply to git
// routes: fetching needs `scopes: [read_repository]`, pushing `scopes: [write_repository]`,
// each named explicitly, and the repository's project must be in the client's `projects:`
// scope (src/scope/scope.ts), resolved through GitLab so that a path in another case or a
// renamed project's old path is judged by the project it names now.
import type { Client, Reason, TokenScope } from '../types.ts';
import { inScope, type ScopeResolver } from '../scope/scope.ts';
import type { GitRoute } from '../request/git-route.ts';

export type GitDecision = { allow: true; label: string } | { allow: false; reason: Reason; detail: string };

const deny = (reason: Reason, detail: string): GitDecision => ({ allow: false, reason, detail });

export async function authorizeGit(client: Client, route: GitRoute, resolver: ScopeResolver | undefined): Promise<GitDecision> {
  // The ref advertisement for receive-pack is the first step of a push: it needs the push
  // scope too, so a read-only client learns nothing from it (GitLab checks push access on
  // info/refs?service=git-receive-pack as well: Repositories::GitHttpController#info_refs).
  const needed: TokenScope = route.service === 'git-receive-pack' ? 'write_repository' : 'read_repository';
  // A client without either scope is refused as for any path outside the API.
  if (!client.scopes.has('read_repository') && !client.scopes.has('write_repository')) return deny('not-api', 'git over HTTP needs scopes: [read_repository]');
  if (!client.scopes.has(needed)) return deny('git-scope', `${route.service} needs scopes: [${needed}]`);
  // Fail closed: a scope alone names no repository, so without `projects:` no repository is
  // served (API rules name their projects themselves; a git route has no rule).
  if (client.projects === undefined) return deny('git-project', 'git routes need a projects: list');
  if (resolver === undefined) return deny('scope-unresolved', 'no project resolver');
  if (!(await inScope(client, 'project', route.project, resolver))) return deny('git-project', 'the repository\'s project is not in projects:');
  return { allow: true, label: `scopes: ${needed}` };
}
