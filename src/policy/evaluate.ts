// Authorization: a pure function from a client and a canonical request to a decision with
// the rule or reason behind it. Deny by default. No HTTP framework here.
import { authorizeGraphql } from '../graphql/check.ts';
import type { Client } from '../types.ts';
import type { Method, Rule } from './rule.ts';

export interface AuthorizeInput {
  method: Method;
  segments: readonly string[];
  formatAlias: readonly string[] | undefined;
  surface: 'api' | 'graphql' | 'outside';
}

export type Decision =
  | { allow: true; rule: Rule | undefined; reason: string; params: Record<string, string> }
  | { allow: false; reason: string };

const deny = (reason: string): Decision => ({ allow: false, reason });

/** Placeholders that name a project or group: GitLab reads them as a numeric id or an
 *  encoded full path (lib/api/helpers.rb find_project / find_group). */
const ID_PARAMS = new Set(['id', 'project_id', 'group_id']);
const NUMERIC_ID = /^[1-9][0-9]{0,18}$/;
const ENCODED_FULL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:%2[Ff][A-Za-z0-9_][A-Za-z0-9_.-]*)+$/;

export function authorize(client: Client, req: AuthorizeInput): Decision {
  if (req.surface === 'graphql') {
    // POST /api/graphql: the client's graphql: policy, checked on the body (src/graphql/).
    const gql = authorizeGraphql(client, req.method);
    return gql.allow ? { allow: true, rule: undefined, reason: gql.reason, params: {} } : deny(gql.reason);
  }
  if (req.surface !== 'api') return deny('not-api: only /api/v4 is served');
  // Grape may read "x.json" as "x": a fixed denial of either reading stands.
  const aliasFixed = req.formatAlias ? fixedDecision(client, req.method, req.formatAlias) : undefined;
  if (aliasFixed && !aliasFixed.allow) return deny(`format-suffix: ${aliasFixed.reason}`);
  const fixed = fixedDecision(client, req.method, req.segments);
  if (fixed) return fixed;
  const primary = matchRule(client, req.method, req.segments);
  if (!primary.allow || !req.formatAlias) return primary;
  // Grape may read "x.json" as "x": allow only if that reading is allowed too.
  const alias = matchRule(client, req.method, req.formatAlias);
  return alias.allow ? primary : deny(`format-suffix: ${alias.reason}`);
}

/** Decisions no rule can change. */
function fixedDecision(client: Client, method: Method, segments: readonly string[]): Decision | undefined {
  // Decoded, as GitLab's router would read them (canonicalization already refuses encoded
  // letters; this holds even if that rule is ever relaxed).
  const area = decode(segments[2]);
  if (area === 'internal') return deny('internal-api: /api/v4/internal is never forwarded');
  if (area === 'personal_access_tokens') {
    // The real token's own endpoints: POST .../self/rotate and POST .../:id/rotate return a
    // new secret for it, DELETE .../self and DELETE .../:id revoke it, and the listing names
    // every token of the proxy's user (lib/api/personal_access_tokens/self_rotation.rb,
    // self_information.rb; docs "Personal access tokens API"). Only reading `self`, when the
    // client is granted it, ever passes.
    const readSelf = decode(segments[3]) === 'self' && segments.length === 4 && (method === 'GET' || method === 'HEAD');
    if (readSelf && client.allowTokenSelfRead) {
      return { allow: true, rule: undefined, reason: 'allow_token_self_read', params: {} };
    }
    return deny('token-self: the proxy token\'s own endpoints are not forwarded');
  }
  if (area === 'user' && decode(segments[3]) === 'personal_access_tokens') {
    // POST /user/personal_access_tokens creates a new token for the proxy's user (docs:
    // "Create a personal access token with limited scopes for the currently authenticated user").
    return deny('token-self: the proxy user\'s tokens are not managed through the proxy');
  }
  return undefined;
}

function decode(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function matchRule(client: Client, method: Method, segments: readonly string[]): Decision {
  const match = client.matcher.match(method, segments);
  if (!match) {
    const other = client.matcher.pathMatches(segments)[0];
    return deny(other ? `method-not-allowed: ${method} not in ${other.text}` : 'no-rule: no rule matches');
  }
  for (const [name, value] of Object.entries(match.params)) {
    if (ID_PARAMS.has(name) && !NUMERIC_ID.test(value) && !ENCODED_FULL_PATH.test(value)) {
      // "0005", "5+" and friends: GitLab may read another project than the one named.
      return deny(`bad-identifier: :${name} must be a numeric id or an encoded full path`);
    }
    if ((name === 'iid' || name.endsWith('_iid')) && !NUMERIC_ID.test(value)) {
      return deny(`bad-identifier: :${name} must be a number`);
    }
  }
  return { allow: true, rule: match.rule, reason: 'rule', params: match.params };
}
