// A client's `projects:`, `groups:` and `scopes:` keys, compiled onto the Client after its
// rules (and its preset's) are in place.
import type { Client } from '../types.ts';
import { Matcher } from './matcher.ts';
import { parseScopePattern, ScopePatternError } from './scope-pattern.ts';
import type { ScopePattern } from '../types.ts';
import { scopeRules, TOKEN_SCOPES, type TokenScope } from './token-scopes.ts';

/**
 * Sets client.projects, client.groups and client.scopes from the client's document (checked
 * or not, so every problem shows at once) and adds the rules `scopes:` stands for. False
 * when a key has a problem; `problem` says where.
 */
export function applyClientScope(
  client: Client | undefined,
  raw: unknown,
  problem: (path: readonly PropertyKey[], message: string) => void,
  scopesSource: () => string,
): boolean {
  const spec = (raw !== null && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  let ok = true;
  const lists: { projects?: Client['projects']; groups?: Client['groups'] } = {};
  // Wrong types (not a list, an entry neither a string nor a whole number) are the schema's
  // to report (src/policy/schema.ts); the syntax of each path is reported here.
  for (const key of ['projects', 'groups'] as const) {
    const value = spec[key];
    if (value === undefined) continue;
    if (!Array.isArray(value)) {
      ok = false;
      continue;
    }
    const patterns: ScopePattern[] = [];
    value.forEach((entry: unknown, i) => {
      if (typeof entry !== 'string' && !(typeof entry === 'number' && Number.isSafeInteger(entry) && entry >= 1)) {
        ok = false;
        return;
      }
      try {
        patterns.push(parseScopePattern(entry));
      } catch (err) {
        if (!(err instanceof ScopePatternError)) throw err;
        problem([key, i], `${key}: ${err.message}`);
        ok = false;
      }
    });
    lists[key] = patterns;
  }
  const scopes = new Set<TokenScope>();
  if (Array.isArray(spec.scopes)) {
    spec.scopes.forEach((s) => {
      if (typeof s !== 'string' || !(TOKEN_SCOPES as readonly string[]).includes(s)) {
        // The schema reports it, at the same place (src/policy/schema.ts).
        ok = false;
      } else {
        scopes.add(s as TokenScope);
      }
    });
  }
  if (!client || !ok) return ok;
  client.projects = lists.projects;
  client.groups = lists.groups;
  client.scopes = scopes;
  const added = scopes.size > 0 ? scopeRules(scopes, scopesSource()) : [];
  if (added.length > 0) {
    client.rules = [...client.rules, ...added];
    client.matcher = new Matcher(client.rules);
  }
  return true;
}
