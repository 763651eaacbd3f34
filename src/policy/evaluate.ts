// Authorization: a pure function from a client and a canonical request to a decision with
// the rule or reason behind it. Deny by default. No HTTP framework here.
import type { Client } from './load.ts';
import type { Method, Rule } from './rule.ts';

export interface AuthorizeInput {
  method: Method;
  segments: readonly string[];
  formatAlias: readonly string[] | undefined;
  surface: 'api' | 'outside';
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
  const fixed = fixedDecision(client, req);
  if (fixed) return fixed;
  const primary = matchRule(client, req.method, req.segments);
  if (!primary.allow || !req.formatAlias) return primary;
  // Grape may read "x.json" as "x": allow only if that reading is allowed too.
  const alias = matchRule(client, req.method, req.formatAlias);
  return alias.allow ? primary : deny(`format-suffix: ${alias.reason}`);
}

/** Decisions no rule can change. */
function fixedDecision(client: Client, req: AuthorizeInput): Decision | undefined {
  if (req.surface !== 'api') return deny('not-api: only /api/v4 is served');
  // Decoded, as GitLab's router would read them (canonicalization already refuses encoded
  // letters; this holds even if that rule is ever relaxed).
  const area = decode(req.segments[2]);
  if (area === 'internal') return deny('internal-api: /api/v4/internal is never forwarded');
  if (area === 'personal_access_tokens' && decode(req.segments[3]) === 'self') {
    // POST .../self/rotate returns a new secret for the real token; DELETE .../self revokes
    // it (lib/api/personal_access_tokens/self_rotation.rb, self_information.rb).
    const readSelf = req.segments.length === 4 && (req.method === 'GET' || req.method === 'HEAD');
    if (readSelf && client.allowTokenSelfRead) {
      return { allow: true, rule: undefined, reason: 'allow_token_self_read', params: {} };
    }
    return deny('token-self: the proxy token\'s own endpoints are not forwarded');
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
