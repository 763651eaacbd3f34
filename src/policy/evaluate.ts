// Authorization: a pure function from a client and a canonical request to a decision with
// the rule or reason behind it. Deny by default. No HTTP framework here.
import { floor } from '../catalogue/floor.ts';
import { formatReading } from '../catalogue/format.ts';
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
/** A full path once decoded (Mustermann unescapes captures, so "my%2Dapp" is "my-app"). */
const FULL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*)+$/;
/** A top-level group's path: find_group reads any non-numeric id as a full path
 *  (lib/api/helpers.rb find_group: `id.to_s =~ INTEGER_ID_REGEX` else find_by_full_path). */
const TOP_LEVEL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

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
  if (!req.formatAlias) return matchRule(client, req.method, req.segments, false);
  // Grape may read "x.json" as "x". Where GitLab's routes allow only one reading
  // (".../notes.json" is ".../notes"; ".../cargo/config.json" is its own route), that one
  // decides; where both name a route, both must be allowed (src/catalogue/format.ts).
  const reading = formatReading(req.method, req.segments, req.formatAlias);
  if (reading === 'alias') return matchRule(client, req.method, req.formatAlias, false);
  const primary = matchRule(client, req.method, req.segments, true);
  if (!primary.allow || reading === 'written') return primary;
  const alias = matchRule(client, req.method, req.formatAlias, false);
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
  // Credential routes, and admin routes without `admin: true` (src/catalogue/floor.ts).
  const refusal = floor(method, segments, client);
  return refusal === undefined ? undefined : deny(refusal);
}

function decode(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `formatSuffix`: the last segment ends in ".json", which GitLab may read as the format:
 *  a parameter holding it is checked without the suffix ("5.json" is project 5). */
function matchRule(client: Client, method: Method, segments: readonly string[], formatSuffix: boolean): Decision {
  const match = client.matcher.match(method, segments);
  if (!match) {
    const other = client.matcher.pathMatches(segments)[0];
    return deny(other ? `method-not-allowed: ${method} not in ${other.text}` : 'no-rule: no rule matches');
  }
  const last = segments[segments.length - 1];
  for (const [name, raw] of Object.entries(match.params)) {
    const value = formatSuffix && raw === last ? raw.replace(/(?:\.|%2[Ee])json$/, '') : raw;
    if (ID_PARAMS.has(name) && !NUMERIC_ID.test(value) && !isFullPath(value) && !(isGroupParam(match.rule, name) && isTopLevelPath(value))) {
      // "0005", "5+" and friends: GitLab may read another project than the one named.
      return deny(`bad-identifier: :${name} must be a numeric id or an encoded full path`);
    }
    if ((name === 'iid' || name.endsWith('_iid')) && !NUMERIC_ID.test(value)) {
      return deny(`bad-identifier: :${name} must be a number`);
    }
  }
  return { allow: true, rule: match.rule, reason: 'rule', params: match.params };
}

/** An encoded full path ("acme%2Fmy%2Eapp"): a "/" only as %2F, and once decoded, path
 *  segments GitLab allows (lib/gitlab/path_regex.rb). */
function isFullPath(raw: string): boolean {
  if (raw.includes('/') || !/%2[Ff]/.test(raw)) return false;
  return FULL_PATH.test(decode(raw) ?? raw);
}

/** A top-level group by its bare path ("acme"), never all digits (that is an id). */
function isTopLevelPath(raw: string): boolean {
  const decoded = decode(raw) ?? raw;
  return TOP_LEVEL_PATH.test(decoded) && !/^[0-9]+$/.test(decoded);
}

/** `:group_id`, or `:id` right after a literal "groups" segment. */
function isGroupParam(rule: Rule, name: string): boolean {
  if (name === 'group_id') return true;
  if (name !== 'id') return false;
  const i = rule.segments.findIndex((s) => s.kind === 'param' && s.name === 'id');
  const before = rule.segments[i - 1];
  return before?.kind === 'literal' && before.value === 'groups';
}
