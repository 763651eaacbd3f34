// The second half of authorization, after the path and method found their rules
// (src/policy/evaluate.ts) and the body was read: object rules' constraints, the client's and
// the rule's project/group scope, and which list answers must be filtered. Async because
// scope asks GitLab who a project or group is (src/scope/scope.ts).
import { bodyFields, constraintFailure, targetFailure, type ConstraintInput, type Failure } from '../policy/constraints.ts';
import type { Client, Match, Method, Rule } from '../types.ts';
import type { Param } from '../request/query.ts';
import { matchesScope, targetOf, type ScopeKind, type ScopePattern, type ScopeResolver, type ScopeTarget } from './scope.ts';

export interface EnforceInput {
  method: Method;
  segments: readonly string[];
  query: readonly Param[];
  body: Buffer;
  contentType: string | undefined;
  mediaType: string | undefined;
}

export type Verdict =
  | {
      allow: true;
      /** The rule that allowed it (the first whose constraints pass), if any. */
      rule: Rule | undefined;
      /** What scope decided, for the audit line's detail; undefined when scope played no part. */
      note: string | undefined;
      /** Keeps an item of a list answer (GET /projects, /groups...); undefined: no filtering. */
      listFilter: ((item: unknown) => boolean) | undefined;
    }
  | { allow: false; reason: Failure['reason']; detail: string; rule: Rule | undefined };

/** A project or group the request names: `ref` is a numeric id or a decoded full path. */
export interface NamedTarget {
  kind: ScopeKind;
  ref: string;
}

const NUMERIC = /^[1-9][0-9]{0,15}$/;

const decodeOnce = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
};

/**
 * The projects and groups a request names: the segment after /projects/ or /groups/ (where
 * GitLab's API reads :id, lib/api/helpers.rb find_project!/find_group!), whatever rule
 * matched (a `**` or `*` rule names no parameter), and the rule's :project_id / :group_id.
 */
export function namedTargets(segments: readonly string[], params: Record<string, string>): NamedTarget[] {
  const out: NamedTarget[] = [];
  const add = (kind: ScopeKind, raw: string | undefined): void => {
    if (raw === undefined) return;
    const ref = decodeOnce(raw) ?? raw;
    if (!out.some((t) => t.kind === kind && t.ref === ref)) out.push({ kind, ref });
  };
  const area = decodeOnce(segments[2] ?? '');
  if (area === 'projects') add('project', segments[3]);
  if (area === 'groups') add('group', segments[3]);
  for (const [name, value] of Object.entries(params)) {
    if (name === 'project_id') add('project', value);
    if (name === 'group_id') add('group', value);
  }
  return out;
}

/**
 * GET endpoints whose answer is a JSON array of projects or groups, filtered item by item
 * for a scoped client (docs "Projects API" list projects, "Groups API" list groups,
 * subgroups, descendant groups, group projects, shared projects/groups, "Users API" user
 * projects, starred and contributed projects, "Forks" list forks).
 */
export function listKind(method: Method, segments: readonly string[]): ScopeKind | undefined {
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const s = segments.slice(2).map((x) => decodeOnce(x) ?? x);
  const [a, , c, d] = s;
  if (s.length === 1 && a === 'projects') return 'project';
  if (s.length === 1 && a === 'groups') return 'group';
  if (a === 'groups' && s.length === 3 && c === 'projects') return 'project';
  if (a === 'groups' && s.length === 3 && (c === 'subgroups' || c === 'descendant_groups')) return 'group';
  if (a === 'groups' && s.length === 4 && c === 'projects' && d === 'shared') return 'project';
  if (a === 'groups' && s.length === 4 && c === 'groups' && d === 'shared') return 'group';
  if (a === 'users' && s.length === 3 && (c === 'projects' || c === 'starred_projects' || c === 'contributed_projects')) return 'project';
  if (a === 'projects' && s.length === 3 && c === 'forks') return 'project';
  return undefined;
}

/** Decides what the path allowed (`match`, undefined for report mode's forwards and rules
 *  the proxy grants itself) once the body is known. */
export async function enforce(
  client: Client,
  match: Match | undefined,
  input: EnforceInput,
  resolver: ScopeResolver | undefined,
): Promise<Verdict> {
  // Candidates: the rule the path found, or, when that one has constraints, every rule that
  // matches the path and method, most specific first; the first that passes decides.
  const primary = match?.rule;
  let candidates: Match[] = [];
  if (match) {
    candidates = match.rule.constraints ? client.matcher.matchAll(input.method, input.segments) : [match];
    if (candidates.length === 0) candidates = [match];
  }
  let body: ReturnType<typeof bodyFields> | null = null;
  const cInput: ConstraintInput = {
    query: input.query,
    body: () => (body === null ? (body = bodyFields(input.body, input.contentType, input.mediaType)) : body),
  };
  const resolved = new Map<string, ScopeTarget | null>();
  const resolve = async (t: NamedTarget): Promise<ScopeTarget | null> => {
    const key = `${t.kind}:${t.ref}`;
    if (!resolved.has(key)) resolved.set(key, resolver ? await resolver.resolve(t.kind, t.ref) : null);
    return resolved.get(key)!;
  };
  const scopeProblem = async (targets: readonly NamedTarget[], lists: { projects?: readonly ScopePattern[] | undefined; groups?: readonly ScopePattern[] | undefined }, whose: string): Promise<Failure | undefined> => {
    for (const t of targets) {
      const list = t.kind === 'project' ? lists.projects : lists.groups;
      if (!list) continue;
      const target = NUMERIC.test(t.ref) || t.ref.includes('/') || t.kind === 'group' ? await resolve(t) : null;
      if (!target) return { reason: 'scope-unresolved', detail: `${t.kind} ${t.ref} cannot be resolved` };
      if (!matchesScope(list, target)) return { reason: 'scope', detail: `${t.kind} ${target.fullPath} not in ${whose}${t.kind === 'project' ? 'projects' : 'groups'}` };
    }
    return undefined;
  };

  let winner: Match | undefined;
  let firstFailure: { failure: Failure; rule: Rule } | undefined;
  for (const m of candidates) {
    let failure = constraintFailure(m.rule, cInput);
    if (!failure && m.rule.constraints) failure = await scopeProblem(namedTargets(input.segments, m.params), m.rule.constraints, 'the rule\'s ');
    // target: the object's current state, read from GitLab before forwarding.
    if (!failure && m.rule.constraints?.target.size) failure = targetFailure(m.rule, resolver ? await resolver.current('/' + input.segments.join('/')) : undefined);
    if (!failure) {
      winner = m;
      break;
    }
    firstFailure ??= { failure, rule: m.rule };
  }
  if (primary && !winner) return { allow: false, ...firstFailure!.failure, rule: firstFailure!.rule };

  // The client's own lists hold whatever rule (or report mode) let the request through.
  const targets = namedTargets(input.segments, winner?.params ?? {});
  const clientProblem = await scopeProblem(targets, client, '');
  if (clientProblem) return { allow: false, ...clientProblem, rule: winner?.rule };

  let note: string | undefined;
  const scoped = targets.filter((t) => (t.kind === 'project' ? client.projects : client.groups) || (t.kind === 'project' ? winner?.rule.constraints?.projects : winner?.rule.constraints?.groups));
  if (scoped.length > 0) {
    note = scoped.map((t) => `${t.kind} ${resolved.get(`${t.kind}:${t.ref}`)?.fullPath ?? t.ref}`).join(', ') + ' in scope';
  }
  const kind = listKind(input.method, input.segments);
  let listFilter: ((item: unknown) => boolean) | undefined;
  if (kind) {
    const lists = [kind === 'project' ? client.projects : client.groups, kind === 'project' ? winner?.rule.constraints?.projects : winner?.rule.constraints?.groups]
      .filter((l): l is readonly ScopePattern[] => l !== undefined);
    if (lists.length > 0) {
      listFilter = (item) => {
        const target = targetOf(kind, item);
        return target !== null && lists.every((l) => matchesScope(l, target));
      };
      note = `${note ? `${note}; ` : ''}${kind} list filtered to ${kind === 'project' ? 'projects' : 'groups'}`;
    }
  }
  return { allow: true, rule: winner?.rule ?? primary, note, listFilter };
}

/** Whether anything here can apply to this client at all (most clients: no, and the
 *  decision skips the async step). */
export function needsEnforcement(client: Client, match: Match | undefined): boolean {
  // A most specific rule without constraints passes on its own: other rules need not be tried.
  return client.projects !== undefined || client.groups !== undefined || match?.rule.constraints !== undefined;
}
