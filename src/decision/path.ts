// The first half of a decision, on the request line alone: the floor no rule can lift, then
// the client's rules, for the path as GitLab may read it. Pure and synchronous, so a request
// refused here is answered before its body is read.
import { floorRefusal } from '../catalogue/floor.ts';
import { formatReading } from '../catalogue/format.ts';
import { authorizeGraphql } from '../graphql/check.ts';
import type { CanonicalRequest } from '../request/canonicalize.ts';
import type { Client, Match, Method, Reason, Rule } from '../types.ts';

export type PathDecision =
  | { allow: true; match: Match | undefined; label: string }
  | { allow: false; reason: Reason; detail: string | undefined };

type PathInput = Pick<CanonicalRequest, 'segments' | 'formatAlias' | 'readings' | 'surface'> & { method: Method };

const NO_READINGS: readonly (readonly string[])[] = [];
const deny = (reason: Reason, detail?: string): PathDecision => ({ allow: false, reason, detail });
const ALIAS = ' (read without its .json suffix)';

/** Placeholders that name a project or group: GitLab reads them as a numeric id or an
 *  encoded full path (lib/api/helpers.rb find_project / find_group). */
const ID_PARAMS = new Set(['id', 'project_id', 'group_id']);
const NUMERIC_ID = /^[1-9][0-9]{0,18}$/;
/** A full path once decoded (Mustermann unescapes captures, so "my%2Dapp" is "my-app"). */
const FULL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*)+$/;
/** A top-level group's path: find_group reads any non-numeric id as a full path
 *  (lib/api/helpers.rb find_group: `id.to_s =~ INTEGER_ID_REGEX` else find_by_full_path). */
const TOP_LEVEL_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function decidePath(client: Client, req: PathInput): PathDecision {
  if (req.surface === 'graphql') {
    // POST /api/graphql: the client's graphql: policy, checked on the body (src/graphql/).
    const gql = authorizeGraphql(client, req.method);
    return gql.allow ? { allow: true, match: undefined, label: gql.label } : deny(gql.reason, gql.detail);
  }
  if (req.surface !== 'api') return deny('not-api', 'only /api/v4 is served');
  // Grape may read "x.json" as "x", and with its "(.:format)" suffix also "x.xml" or
  // "x%2Etxt" (src/request/route.ts): a fixed denial of any reading stands.
  const others = otherReadings(req);
  const aliases = req.formatAlias ? [req.formatAlias, ...others] : others;
  for (const alias of aliases) {
    const aliasFixed = floor(client, req.method, alias);
    if (aliasFixed && !aliasFixed.allow) return deny(aliasFixed.reason, `${aliasFixed.detail}${alias === req.formatAlias ? ALIAS : ' (read without its format suffix)'}`);
  }
  const fixed = floor(client, req.method, req.segments);
  if (fixed) return fixed;
  // Readings other than ".json" (which the route catalogue arbitrates below) must all be
  // allowed too: the proxy does not know which of them a route takes.
  for (const alias of others) {
    const decision = matchRule(client, req.method, alias, false);
    if (!decision.allow) return deny(decision.reason, `${decision.detail} (read without its format suffix)`);
  }
  if (!req.formatAlias) return matchRule(client, req.method, req.segments, false);
  // Grape may read "x.json" as "x". Where GitLab's routes allow only one reading
  // (".../notes.json" is ".../notes"; ".../cargo/config.json" is its own route), that one
  // decides; where both name a route, both must be allowed (src/catalogue/format.ts).
  const reading = formatReading(req.method, req.segments, req.formatAlias);
  if (reading === 'alias') return matchRule(client, req.method, req.formatAlias, false);
  const primary = matchRule(client, req.method, req.segments, true);
  if (!primary.allow || reading === 'written') return primary;
  const alias = matchRule(client, req.method, req.formatAlias, false);
  return alias.allow ? primary : deny(alias.reason, `${alias.detail}${ALIAS}`);
}

/** The readings besides the path as written and its ".json" alias. */
function otherReadings(req: PathInput): readonly (readonly string[])[] {
  // The usual case: the path as written is the only reading.
  if (req.readings.length === 1 && req.readings[0] === req.segments) return NO_READINGS;
  const json = req.formatAlias?.join('/');
  return req.readings.filter((r) => r !== req.segments && r.join('/') !== json);
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
  // Credential routes, and admin routes without `admin: true` (src/catalogue/floor.ts).
  const refusal = floorRefusal(method, segments, client);
  return refusal === undefined ? undefined : deny(refusal.reason, refusal.detail);
}

function decode(segment: string | undefined): string | undefined {
  if (segment === undefined || !segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** `formatSuffix`: the last segment ends in ".json", which GitLab may read as the format:
 *  a parameter holding it is checked without the suffix ("5.json" is project 5). */
function matchRule(client: Client, method: Method, segments: readonly string[], formatSuffix: boolean): PathDecision {
  const match = client.matcher.match(method, segments);
  if (!match) {
    const other = client.matcher.pathMatches(segments)[0];
    return other ? deny('method-not-allowed', `${method} not in ${other.text}`) : deny('no-rule', 'no rule matches');
  }
  const last = segments[segments.length - 1];
  for (const name in match.params) {
    const raw = match.params[name]!;
    const value = formatSuffix && raw === last ? raw.replace(/(?:\.|%2[Ee])json$/, '') : raw;
    if (ID_PARAMS.has(name) && !NUMERIC_ID.test(value) && !isFullPath(value) && !(isGroupParam(match.rule, name) && isTopLevelPath(value))) {
      // "0005", "5+" and friends: GitLab may read another project than the one named.
      return deny('bad-identifier', `:${name} must be a numeric id or an encoded full path`);
    }
    if ((name === 'iid' || name.endsWith('_iid')) && !NUMERIC_ID.test(value)) {
      return deny('bad-identifier', `:${name} must be a number`);
    }
  }
  return { allow: true, match, label: `${match.rule.text} (${match.rule.source})` };
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
