// `scopes:` shorthands mirroring GitLab's token scopes (docs "Personal access token scopes",
// doc/user/profile/personal_access_tokens.md). read_api and read_user become ordinary rules
// (so the matcher, explain, the audit line and report mode treat them like any other);
// read_repository and write_repository are only validated here: git over HTTP reads
// `client.scopes` itself.
import { parseRule } from './rule.ts';
import type { Rule, TokenScope } from '../types.ts';

export type { TokenScope };

export const TOKEN_SCOPES = ['read_api', 'read_user', 'read_repository', 'write_repository'] as const satisfies readonly TokenScope[];

/**
 * The REST rules a scope stands for. GET admits HEAD (src/policy/rule.ts).
 * - read_api: every read of the API (GitLab: "Grants read access to the API, including all
 *   groups and projects"; lib/api/api.rb allows read_api for GET and HEAD). The fixed
 *   denials of src/decision/path.ts (internal, the token's own endpoints) still apply.
 * - read_user: "/user" and the read-only endpoints of the Users API (lib/api/users.rb:
 *   `allow_access_with_scope :read_user, if: -> (request) { request.get? || request.head? }`).
 *   Endpoints under /users/:id that live in other API classes (projects, events,
 *   contributed_projects, memberships...) need read_api in GitLab too (gitlab#34774), so
 *   they are not here.
 */
const SCOPE_RULES: Record<TokenScope, readonly string[]> = {
  read_api: ['GET /api/v4/**'],
  read_user: [
    'GET /api/v4/user',
    'GET /api/v4/user/**',
    'GET /api/v4/users',
    'GET /api/v4/users/:user_id',
    'GET /api/v4/users/:user_id/status',
    'GET /api/v4/users/:user_id/keys',
    'GET /api/v4/users/:user_id/keys/:key_id',
    'GET /api/v4/users/:user_id/gpg_keys',
    'GET /api/v4/users/:user_id/gpg_keys/:key_id',
    'GET /api/v4/users/:user_id/followers',
    'GET /api/v4/users/:user_id/following',
  ],
  read_repository: [],
  write_repository: [],
};

/** The rules of `scopes:`, named "scopes: read_api (GET /api/v4/**)" in audit lines. */
export function scopeRules(scopes: Iterable<TokenScope>, source: string): Rule[] {
  const rules: Rule[] = [];
  for (const scope of scopes) {
    for (const text of SCOPE_RULES[scope]) rules.push({ ...parseRule(text, source), text: `scopes: ${scope} (${text})` });
  }
  return rules;
}
