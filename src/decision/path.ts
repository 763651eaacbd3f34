// The first half of a decision, on the request line alone: the floor no rule can lift, then
// the client's rules, for the path as GitLab may read it. Pure and synchronous, so a request
// refused here is answered before its body is read.
import { authorizeGraphql } from '../graphql/check.ts';
import type { CanonicalRequest } from '../request/canonicalize.ts';
import type { Client, Match, Method, Reason } from '../types.ts';

export type PathDecision =
  | { allow: true; match: Match | undefined; label: string }
  | { allow: false; reason: Reason; detail: string | undefined };

type PathInput = Pick<CanonicalRequest, 'segments' | 'formatAlias' | 'surface'> & { method: Method };

const deny = (reason: Reason, detail?: string): PathDecision => ({ allow: false, reason, detail });

/** Placeholders that name a project or group: GitLab reads them as a numeric id or an
 *  encoded full path (lib/api/helpers.rb find_project / find_group). */
const ID_PARAMS = new Set(['id', 'project_id', 'group_id']);
const NUMERIC_ID = /^[1-9][0-9]{0,18}$/;
const ENCODED_FULL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:%2[Ff][A-Za-z0-9_][A-Za-z0-9_.-]*)+$/;

export function decidePath(client: Client, req: PathInput): PathDecision {
  if (req.surface === 'graphql') {
    // POST /api/graphql: the client's graphql: policy, checked on the body (src/graphql/).
    const gql = authorizeGraphql(client, req.method);
    return gql.allow ? { allow: true, match: undefined, label: gql.label } : deny(gql.reason, gql.detail);
  }
  if (req.surface !== 'api') return deny('not-api', 'only /api/v4 is served');
  // Grape may read "x.json" as "x": a fixed denial of either reading stands.
  const aliasFixed = req.formatAlias ? floor(client, req.method, req.formatAlias) : undefined;
  if (aliasFixed && !aliasFixed.allow) return deny(aliasFixed.reason, `${aliasFixed.detail} (read without its .json suffix)`);
  const fixed = floor(client, req.method, req.segments);
  if (fixed) return fixed;
  const primary = matchRule(client, req.method, req.segments);
  if (!primary.allow || !req.formatAlias) return primary;
  // Grape may read "x.json" as "x": allow only if that reading is allowed too.
  const alias = matchRule(client, req.method, req.formatAlias);
  return alias.allow ? primary : deny(alias.reason, `${alias.detail} (read without its .json suffix)`);
}

/** Decisions no rule can change. */
function floor(client: Client, method: Method, segments: readonly string[]): PathDecision | undefined {
  // Decoded, as GitLab's router would read them (canonicalization already refuses encoded
  // letters; this holds even if that rule is ever relaxed).
  const area = decode(segments[2]);
  if (area === 'internal') return deny('internal-api', '/api/v4/internal is never forwarded');
  if (area === 'personal_access_tokens') {
    // The real token's own endpoints: POST .../self/rotate and POST .../:id/rotate return a
    // new secret for it, DELETE .../self and DELETE .../:id revoke it, and the listing names
    // every token of the proxy's user (lib/api/personal_access_tokens/self_rotation.rb,
    // self_information.rb; docs "Personal access tokens API"). Only reading `self`, when the
    // client is granted it, ever passes.
    const readSelf = decode(segments[3]) === 'self' && segments.length === 4 && (method === 'GET' || method === 'HEAD');
    if (readSelf && client.allowTokenSelfRead) return { allow: true, match: undefined, label: 'allow_token_self_read' };
    return deny('token-self', 'the proxy token\'s own endpoints are not forwarded');
  }
  if (area === 'user' && decode(segments[3]) === 'personal_access_tokens') {
    // POST /user/personal_access_tokens creates a new token for the proxy's user (docs:
    // "Create a personal access token with limited scopes for the currently authenticated user").
    return deny('token-self', 'the proxy user\'s tokens are not managed through the proxy');
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

function matchRule(client: Client, method: Method, segments: readonly string[]): PathDecision {
  const match = client.matcher.match(method, segments);
  if (!match) {
    const other = client.matcher.pathMatches(segments)[0];
    return other ? deny('method-not-allowed', `${method} not in ${other.text}`) : deny('no-rule', 'no rule matches');
  }
  for (const name in match.params) {
    const value = match.params[name]!;
    if (ID_PARAMS.has(name) && !NUMERIC_ID.test(value) && !ENCODED_FULL_PATH.test(value)) {
      // "0005", "5+" and friends: GitLab may read another project than the one named.
      return deny('bad-identifier', `:${name} must be a numeric id or an encoded full path`);
    }
    if ((name === 'iid' || name.endsWith('_iid')) && !NUMERIC_ID.test(value)) {
      return deny('bad-identifier', `:${name} must be a number`);
    }
  }
  return { allow: true, match, label: `${match.rule.text} (${match.rule.source})` };
}
